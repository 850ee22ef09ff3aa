"""How fast is the native vector env, where does a step's time go, and how many sub-envs fit?

Parts (``--parts``, comma separated; each configuration runs in its own process, so that its peak
memory is its own and one that does not fit is reported, not fatal):

- ``env``: the native vector env of ``--env`` (``gymnasium.make_vec(id, num_envs=N,
  vectorization_mode="vector_entry_point")``, ``--threads`` torch threads, ``--device``) at each N in
  ``--n``: a reset, one untimed step (the first step trains without replay), then ``--steps`` timed
  steps with ``--action`` (``equal``: the equal mix on a mix level, on a cell level sub-env i steps
  cell (t + i) mod cells; ``cycle``: one cell per sub-env and step, as a one-hot mix on a mix level).
  Per N: env steps/s and training tokens/s (wall), each step's wall time split into *device* time
  (the population's training, scoring and decoding passes, until their results are on the host:
  ``PopulationVectorEnv.last_timing``) and *host* time (the rest: Python, data generation and
  verification, batch planning, reports), the host time per sub-env step, peak memory (CPU: the
  process's peak resident memory; CUDA: ``torch.cuda.max_memory_allocated``) and the memory the env
  estimated before allocating, and the model FLOP utilisation (MFU): training FLOPs (real tokens x
  nanoGPT's 6N + 12LHT, T = max_positions; padding and evaluation not counted) per wall second over
  the device's measured float32 matmul peak at the same thread count (``--matmul-size``). An N whose
  estimated memory does not fit is listed with the env's refusal message (the memory needed and the
  largest N that fits).
- ``single``: the single env (``gymnasium.make``) with ``--single-threads`` torch threads on the same
  config and actions: env steps/s, the baseline the population is compared with.
- ``minimal``: minimal compute (``--minimal-kwargs``: 8 examples a step, 1 validation and test item
  per cell) at N = 1 and N = ``--minimal-n``: the step's wall, host and device time per sub-env and
  the marginal cost of a sub-env, (wall(N) - wall(1)) / (N - 1): the host overhead the step pays
  per sub-env when compute is negligible.
- ``data``: examples/s of one env step's training examples for P students: ``arith-v1``'s scalar
  generator through the procedural engine against ``arith-v2``'s vectorised ``generate_many``;
- ``student``: one CPU thread, the tiny (transformers Llama), plain and population students: CPU ms
  per optimiser step per student, training tokens per CPU second and MFU.
- ``compile``: does ``torch.compile`` pay for the training step? The plain student's model (mini-batch
  of ``batch_size`` rows) and the population's (``--compile-p`` members), one optimiser step each
  (forward, answer loss, backward, ``torch.optim.AdamW(foreach=True)``; the population's own update
  is the same foreach arithmetic) over a cycle of four row lengths, as a step's mini-batches vary:
  eager against ``torch.compile`` (inductor) and, on CUDA, ``mode="reduce-overhead"`` (inductor with
  CUDA graphs). Per mode: the warm-up seconds (the first step of each length, compilation included),
  the steady-state wall ms per step, training tokens/s and the steps after which compiling pays back
  its warm-up (warm-up minus eager's, over the per-step saving). Each mode in its own process.

Run (the numbers and machine in benchmarks/README.md; a loaded machine inflates every wall time,
so each row records the load average):
    python benchmarks/vector.py --parts env,minimal --n 1,16,64 --out benchmarks/results/vector/cpu.json
    python benchmarks/vector.py --parts env,single --n 16 --threads 2 --single-threads 1
    python benchmarks/vector.py --parts env --device cuda --n 1,64,256,1024,4096 --out gpu.json   # a GPU
    python benchmarks/vector.py --parts compile --threads 1                  # torch.compile on CPU
    python benchmarks/vector.py --parts compile --device cuda --compile-p 1024   # + CUDA graphs, a GPU
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from _args import emit_json, parse_dataclass_args  # benchmarks/_args.py, beside this script
from _peak import cuda_matmul_flops  # benchmarks/_peak.py


@dataclass
class Args:
    parts: str = "env,single,minimal"
    """Which parts to run: env, single, minimal, data, student (comma separated)."""
    env: str = "distillgym/ArithMix-v2"
    """Env id (it needs a vector entry point)."""
    n: str = "1,16,64"
    """Numbers of sub-envs for the env part."""
    device: str = "cpu"
    """Device of the population and the students: cpu or cuda."""
    threads: int = 1
    """torch threads of the env and minimal parts."""
    single_threads: int = 1
    """torch threads of the single env."""
    steps: int = 2
    """Timed vector steps per N (after a reset and one untimed step)."""
    action: str = "equal"
    """equal (the equal mix, or a cycle of cells on a cell level) or cycle (one cell per sub-env and step)."""
    env_kwargs: str = ""
    """JSON object of extra gym.make keyword arguments (e.g. '{"examples_per_step": 512}')."""
    reports: bool = False
    """Build the sub-envs' text reports (default off, as the learned-teacher trainer runs)."""
    minimal_n: int = 64
    """N of the minimal part (compared with N = 1)."""
    minimal_kwargs: str = '{"examples_per_step": 8, "budget": 800, "n_val_per_cell": 1, "n_test_per_cell": 1}'
    """The minimal-compute config of the minimal part (JSON)."""
    data_p: str = "1,16,256"
    """Numbers of students for the data part."""
    student_p: str = "1,4,16"
    """Population sizes for the student part."""
    student_reps: int = 5
    """Interleaved timed repetitions per student (one train call of 512 examples each)."""
    compile_models: str = "plain,population"
    """Models of the compile part (comma separated: plain, population)."""
    compile_p: int = 16
    """Members of the population model in the compile part."""
    compile_reps: int = 40
    """Timed optimiser steps per model and mode in the compile part (after the warm-up cycle)."""
    compile_warm_cache: bool = False
    """Let the compile part's processes use inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR or its default);
    by default each compiling process gets a fresh, empty cache, so its warm-up is a first compilation."""
    compile_modes: str = ""
    """Modes of the compile part (comma separated: eager, default, reduce-overhead, max-autotune, ...);
    empty: eager and default, plus reduce-overhead (CUDA graphs) on CUDA."""
    matmul_size: int = 1024
    """Side of the reference float32 matmul (CPU; 8192 on CUDA)."""
    worker: str = ""
    """(internal) run one configuration, given as JSON, and print its result as JSON."""
    json: bool = False
    """Print the results as JSON instead of tables."""
    out: str = ""
    """Also write the JSON results to this file."""


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def matmul_flops(n: int, reps: int = 5) -> float:
    """Best FLOP per CPU second of an n x n float32 matmul (2 n^3 FLOPs) on 1 torch thread: CPU
    time (``process_time``), so that other processes on a shared machine slow it less."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.process_time()
        a @ b
        best = min(best, time.process_time() - t0)
    return 2 * n**3 / best


def device_peak(device: str, threads: int, n: int) -> dict[str, float]:
    """The device's measured float32 matmul FLOP/s: on CUDA the best of 10 8192^2 products (CUDA
    events; also bf16), on CPU 1 thread's FLOP per CPU second times ``threads``."""
    import torch

    if device.startswith("cuda"):
        out = cuda_matmul_flops(device)
        return {"peak_flops": out["float32"], "bf16_flops": out["bfloat16"], "tf32": float(torch.backends.cuda.matmul.allow_tf32)}
    one = matmul_flops(n)
    return {"peak_flops": one * threads, "one_thread_flops": one}


def _actions(t: int, n: int, space: Any, how: str) -> np.ndarray:
    import gymnasium as gym

    if isinstance(space, gym.spaces.MultiDiscrete):
        S, D = int(space.nvec[0]), int(space.nvec[1])
        return np.array([[((t + i) % (S * D)) // D, (t + i) % D] for i in range(n)], dtype=np.int64)
    shape = space.shape
    if how == "equal":
        return np.ones((n, *shape), np.float32)
    cells = shape[0] * shape[1]
    out = -np.ones((n, *shape), np.float32)
    for i in range(n):
        c = (t + i) % cells
        out[i, c // shape[1], c % shape[1]] = 1.0
    return out


def _peak_memory(device: str) -> float:
    """Peak memory of this process so far, bytes (CUDA: allocated by torch; CPU: resident set)."""
    if device.startswith("cuda"):
        import torch

        return float(torch.cuda.max_memory_allocated())
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ---------------------------------------------------------------------------- one configuration
def run_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """One configuration in this process: ``kind`` "vector" (N sub-envs) or "single"."""
    import gymnasium as gym
    import torch

    import distillgym  # noqa: F401
    from distillgym.errors import ConfigError

    torch.set_num_threads(int(cfg["threads"]))
    if cfg["kind"] == "compile":
        return run_compile(cfg)
    kw = {**cfg["env_kwargs"], "device": cfg["device"]}
    out: dict[str, Any] = {**cfg, "load_average_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    try:
        if cfg["kind"] == "vector":
            env = gym.make_vec(cfg["env"], num_envs=cfg["n"], vectorization_mode="vector_entry_point",
                               reports=cfg["reports"], **kw)
            venv = env.unwrapped
            out["memory_estimate"] = {k: v for k, v in venv.memory.items() if k != "device"}
            space = venv.single_action_space
            fpt = venv.population.flops_per_token()
        else:
            env = gym.make(cfg["env"], **kw)
            space = env.action_space
            fpt = env.unwrapped.student.flops_per_token()
    except ConfigError as err:
        out["refused"] = str(err)
        return out
    n = cfg["n"] if cfg["kind"] == "vector" else 1
    out["build_seconds"] = time.perf_counter() - t0
    if cfg["device"].startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def act(t: int) -> np.ndarray:
        a = _actions(t, n, space, cfg["action"])
        return a if cfg["kind"] == "vector" else a[0]

    t0 = time.perf_counter()
    env.reset(seed=list(range(n)) if cfg["kind"] == "vector" else 0)
    out["reset_seconds"] = time.perf_counter() - t0
    env.step(act(0))  # untimed: the first step trains without replay
    walls, cpus, hosts, devices, host_cpu, device_cpu, tokens, steps = [], [], [], [], [], [], 0, 0
    for t in range(1, cfg["steps"] + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        _, _, term, trunc, info = env.step(act(t))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if cfg["kind"] == "vector":
            timing = venv.last_timing
            hosts.append(timing["host"])
            devices.append(timing["device"])
            host_cpu.append(timing["host_cpu"])
            device_cpu.append(timing["device_cpu"])
            tokens += int(np.sum(info["costs"]["tokens"])) if "costs" in info else 0
        else:
            tokens += int(info["costs"]["tokens"])
        steps += n
        if np.any(term) or np.any(trunc):
            break
    wall = sum(walls)
    out.update(
        timed_steps=len(walls), step_seconds=walls, step_cpu_seconds=cpus, seconds=wall, env_steps_per_s=steps / wall,
        env_steps_per_cpu_s=steps / max(sum(cpus), 1e-9),
        train_tokens_per_s=tokens / wall, train_flops_per_s=tokens * fpt / wall, flops_per_token=fpt,
        peak_memory=_peak_memory(cfg["device"]), load_average_end=os.getloadavg()[0],
    )
    if hosts:
        out.update(host_seconds=hosts, device_seconds=devices, host_cpu_seconds=host_cpu, device_cpu_seconds=device_cpu,
                   host_ms_per_env_step=1000 * sum(hosts) / steps, host_cpu_ms_per_env_step=1000 * sum(host_cpu) / steps,
                   device_seconds_per_step=sum(devices) / len(devices))
    return out


COMPILE_LENGTHS = (20, 17, 14, 11)
"""Row lengths of the compile part's mini-batches, in turn (arith-v2's rows are 6 to 20 positions)."""


def run_compile(cfg: dict[str, Any]) -> dict[str, Any]:
    """The compile part's measurement of one model and mode, in this process."""
    import torch
    import torch.nn.functional as F

    from distillgym.students.char_lm import StudentConfig
    from distillgym.students.population import PopulationLM
    from distillgym.students.torch_student import PlainConfig, PlainLM, init_weights, make_targets

    dev, P, mode = cfg["device"], int(cfg["p"]), cfg["mode"]
    scfg = StudentConfig(device=dev)
    pcfg = PlainConfig.from_student(scfg, 24)
    B = scfg.batch_size
    if cfg["model"] == "plain":
        model = PlainLM(pcfg).to(dev)
        model.load_state_dict(init_weights(pcfg, 0), strict=True)
        shape: tuple[int, ...] = (B,)
    else:
        model = PopulationLM(pcfg, P).to(dev)
        for p in range(P):
            model.set_member(p, init_weights(pcfg, p))
        shape = (P, B)
    opt = torch.optim.AdamW(model.parameters(), lr=scfg.lr, weight_decay=scfg.weight_decay, foreach=True)
    fn = model if mode == "eager" else torch.compile(model, mode=None if mode == "default" else mode)
    g = torch.Generator().manual_seed(0)
    batches = []
    for T in COMPILE_LENGTHS:
        x = torch.randint(3, pcfg.vocab_size, shape + (T,), generator=g)
        plen = torch.randint(3, T - 2, shape, generator=g)
        x, plen, length = x.to(dev), plen.to(dev), torch.full(shape, T, device=dev)
        batches.append((x, make_targets(x.view(-1, T), plen.view(-1), length.view(-1)).view(x.shape)))
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)

    def step(k: int) -> None:
        x, targets = batches[k % len(batches)]
        logits = fn(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    out: dict[str, Any] = {**cfg, "batch_size": B, "lengths": list(COMPILE_LENGTHS)}
    t0 = time.perf_counter()
    try:
        for k in range(len(batches)):
            step(k)
        sync()
    except Exception as err:  # a backend that cannot compile here (no compiler, no CUDA graphs) is reported
        out["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return out
    out["warmup_seconds"] = time.perf_counter() - t0
    times = []
    for k in range(int(cfg["reps"])):
        t0 = time.perf_counter()
        step(k)
        sync()
        times.append(time.perf_counter() - t0)
    ms = 1000 * statistics.median(times)
    rows = int(np.prod(shape))
    out.update(ms_per_step=ms, tokens_per_s=rows * statistics.mean(COMPILE_LENGTHS) / (ms / 1000),
               peak_memory=_peak_memory(dev))
    return out


def bench_compile(args: Args) -> list[dict[str, Any]]:
    modes = [m.strip() for m in args.compile_modes.split(",") if m.strip()] or (
        ["eager", "default"] + (["reduce-overhead"] if args.device.startswith("cuda") else []))
    rows = []
    models = [m.strip() for m in args.compile_models.split(",") if m.strip()]
    if not models or set(models) - {"plain", "population"}:
        raise SystemExit(f"--compile-models takes plain and/or population, got {args.compile_models!r}")
    for model in models:
        eager = None
        for mode in modes:
            cfg = dict(kind="compile", model=model, p=1 if model == "plain" else args.compile_p, mode=mode,
                       device=args.device, threads=args.threads, reps=args.compile_reps,
                       cache="warm" if args.compile_warm_cache else "cold")
            with tempfile.TemporaryDirectory(prefix="inductor-") as fresh:
                row = spawn(cfg, None if args.compile_warm_cache else {"TORCHINDUCTOR_CACHE_DIR": fresh})
            if mode == "eager" and "ms_per_step" in row:
                eager = row
            if eager is not None and mode != "eager" and "ms_per_step" in row:
                saving = eager["ms_per_step"] - row["ms_per_step"]
                row["speedup"] = eager["ms_per_step"] / row["ms_per_step"]
                row["break_even_steps"] = ((row["warmup_seconds"] - eager["warmup_seconds"]) * 1000 / saving
                                           if saving > 0 else None)
            print(f"[compile] {model} {mode}: " + (f"{row['ms_per_step']:.1f} ms/step, warm-up {row['warmup_seconds']:.1f} s"
                                                   if "ms_per_step" in row else str(row.get("error"))),
                  file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def spawn(cfg: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """``run_config(cfg)`` in a fresh process (its own peak memory; a crash is reported), with ``env``
    added to its environment."""
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {**cfg, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]}
    return json.loads(lines[-1])


def bench_env(args: Args, peak: float) -> list[dict[str, Any]]:
    rows = []
    extra = json.loads(args.env_kwargs) if args.env_kwargs else {}
    for n in _ints(args.n):
        cfg = dict(kind="vector", env=args.env, n=n, device=args.device, threads=args.threads, steps=args.steps,
                   action=args.action, reports=args.reports, env_kwargs=extra)
        row = spawn(cfg)
        if "seconds" in row:
            row["mfu"] = row["train_flops_per_s"] / peak
        print(f"[env] N={n}: " + (f"{row['env_steps_per_s']:.2f} env steps/s, host {row['host_ms_per_env_step']:.2f} "
                                  f"ms per sub-env step" if "seconds" in row else row.get("refused") or row.get("error")),
              file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def bench_single(args: Args, peak_one: float) -> dict[str, Any]:
    extra = json.loads(args.env_kwargs) if args.env_kwargs else {}
    row = spawn(dict(kind="single", env=args.env, n=1, device=args.device, threads=args.single_threads,
                     steps=args.steps, action=args.action, reports=True, env_kwargs=extra))
    if "seconds" in row:
        row["mfu"] = row["train_flops_per_s"] / (peak_one * args.single_threads)
        print(f"[single] {row['env_steps_per_s']:.3f} env steps/s ({args.single_threads} thread(s))",
              file=sys.stderr, flush=True)
    return row


def bench_minimal(args: Args) -> dict[str, Any]:
    kw = json.loads(args.minimal_kwargs)
    steps = max(args.steps, 5)
    rows = {}
    for n in (1, args.minimal_n):
        rows[n] = spawn(dict(kind="vector", env=args.env, n=n, device=args.device, threads=args.threads, steps=steps,
                             action=args.action, reports=args.reports, env_kwargs=kw))
    one, many = rows[1], rows[args.minimal_n]
    out: dict[str, Any] = {"kwargs": kw, "rows": [one, many]}
    if "seconds" in one and "seconds" in many:
        w1 = statistics.median(one["step_seconds"])
        wn = statistics.median(many["step_seconds"])
        c1 = statistics.median(one["step_cpu_seconds"])
        cn = statistics.median(many["step_cpu_seconds"])
        out.update(step_seconds_1=w1, step_seconds_n=wn, marginal_ms_per_sub_env=1000 * (wn - w1) / (args.minimal_n - 1),
                   host_ms_per_sub_env_n=1000 * statistics.median(many["host_seconds"]) / args.minimal_n,
                   device_ms_per_sub_env_n=1000 * statistics.median(many["device_seconds"]) / args.minimal_n,
                   step_cpu_seconds_1=c1, step_cpu_seconds_n=cn,
                   marginal_cpu_ms_per_sub_env=1000 * (cn - c1) / (args.minimal_n - 1),
                   host_cpu_ms_per_sub_env_n=1000 * statistics.median(many["host_cpu_seconds"]) / args.minimal_n,
                   device_cpu_ms_per_sub_env_n=1000 * statistics.median(many["device_cpu_seconds"]) / args.minimal_n)
        print(f"[minimal] N=1 {1000 * w1:.0f} ms, N={args.minimal_n} {1000 * wn:.0f} ms per step: "
              f"{out['marginal_ms_per_sub_env']:.2f} ms per extra sub-env, host {out['host_ms_per_sub_env_n']:.2f} ms "
              "per sub-env", file=sys.stderr, flush=True)
    return out


# ---------------------------------------------------------------------------- data
def bench_data(args: Args) -> list[dict[str, Any]]:
    from distillgym.engines import make_engine
    from distillgym.seeding import STREAM_TRAIN, rng_for
    from distillgym.students.tokenizer import CharTokenizer
    from distillgym.students.torch_student import encode
    from distillgym.tasks import make_suite
    from distillgym.types import PlanItem

    v1, v2 = make_suite("arith-v1"), make_suite("arith-v2")
    scalar, vector = make_engine("procedural", v1), make_engine("vectorized", v2)
    tok = CharTokenizer(v2.alphabet)
    n = 2048
    rows = []
    for P in _ints(args.data_p):
        plans = [[PlanItem(*v2.cells[p % len(v2.cells)], n)] for p in range(P)]
        out: dict[str, Any] = {"students": P, "examples": P * n}
        reps = max(1, min(P, 16))  # the scalar path is timed on up to 16 students and scaled
        t0 = time.perf_counter()
        for p in range(reps):
            scalar.generate(plans[p], rng_for(p, STREAM_TRAIN, 1))
        out["scalar_seconds"] = (time.perf_counter() - t0) * P / reps
        t0 = time.perf_counter()
        batches = vector.generate_many([(plans[p], rng_for(p, STREAM_TRAIN, 1)) for p in range(P)])
        out["vector_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for ex, _ in batches:
            encode(tok, ex, max_positions=32)
        out["encode_seconds"] = time.perf_counter() - t0
        out["scalar_examples_per_s"] = P * n / out["scalar_seconds"]
        out["vector_examples_per_s"] = P * n / out["vector_seconds"]
        out["vector_with_tokens_examples_per_s"] = P * n / (out["vector_seconds"] + out["encode_seconds"])
        print(f"[data] P={P}: scalar {out['scalar_examples_per_s']:,.0f}/s, vectorised "
              f"{out['vector_examples_per_s']:,.0f}/s", file=sys.stderr, flush=True)
        rows.append(out)
    return rows


# ---------------------------------------------------------------------------- student
def bench_student(args: Args, peak: float) -> list[dict[str, Any]]:
    import torch

    from distillgym.seeding import rng_for
    from distillgym.students.char_lm import StudentConfig
    from distillgym.students.hf_student import TinyStudent
    from distillgym.students.population import PopulationStudent
    from distillgym.students.torch_student import PlainStudent
    from distillgym.tasks import make_suite

    suite = make_suite("arith-v2")
    cfg = StudentConfig(device="cpu")
    cells = suite.cells
    data = [suite.generate_arrays(*cells[(5 * p) % len(cells)], rng_for(p, 1), 512, split="train") for p in range(64)]
    students: dict[str, tuple[Any, int]] = {
        "tiny (HF Llama)": (TinyStudent(cfg, suite.alphabet), 1),
        "plain": (PlainStudent(cfg, suite.alphabet), 1),
    }
    for P in _ints(args.student_p):
        students[f"population P={P}"] = (PopulationStudent(cfg, suite.alphabet, P, list(range(P))), P)

    def train(st: Any, P: int, rep: int) -> tuple[int, int]:
        if P == 1 and not isinstance(st, PopulationStudent):
            s = st.train(list(data[rep % len(data)]) if isinstance(st, TinyStudent) else data[rep % len(data)],
                         rng_for(rep, 2))
            return s.optimizer_steps, s.tokens
        stats = st.train([data[(rep + p) % len(data)] for p in range(P)], [rng_for(rep, 2, p) for p in range(P)])
        return sum(s.optimizer_steps for s in stats), sum(s.tokens for s in stats)

    for st, P in students.values():  # warm-up (fills the replay buffers)
        train(st, P, 0)
    cpu = {k: [] for k in students}
    wall = {k: [] for k in students}
    tokens = {k: [] for k in students}
    for rep in range(1, args.student_reps + 1):
        for name, (st, P) in students.items():
            t0, w0 = time.process_time(), time.perf_counter()
            steps, tok = train(st, P, rep)
            c, w = time.process_time() - t0, time.perf_counter() - w0
            cpu[name].append(c / steps * 1000)
            wall[name].append(w / steps * 1000)
            tokens[name].append(tok / c)
    rows = []
    for name, (st, P) in students.items():
        fpt = st.flops_per_token(cfg.max_positions)
        tps = statistics.median(tokens[name])
        rows.append({"student": name, "members": P, "cpu_ms_per_member_step": statistics.median(cpu[name]),
                     "wall_ms_per_member_step": statistics.median(wall[name]), "tokens_per_cpu_s": tps,
                     "mfu": tps * fpt / peak, "flops_per_token": fpt})
        print(f"[student] {name}: {rows[-1]['cpu_ms_per_member_step']:.1f} CPU ms/step", file=sys.stderr, flush=True)
    torch.set_num_threads(1)
    return rows


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def main() -> None:
    args = parse_dataclass_args(Args, __doc__.split("\n\n")[0])
    if args.worker:
        print(json.dumps(run_config(json.loads(args.worker))))
        return
    import torch

    torch.set_num_threads(1)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"env", "single", "minimal", "data", "student", "compile"}
    if unknown:
        raise SystemExit(f"unknown part(s) {sorted(unknown)}; choose from env, single, minimal, data, student, compile")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda but CUDA is not available")
    peak = device_peak(args.device, args.threads, args.matmul_size)
    one = peak.get("one_thread_flops", peak["peak_flops"])
    result: dict[str, Any] = {
        "args": dataclasses.asdict(args), "peak": peak, "torch": torch.__version__,
        "cpu_count": os.cpu_count(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }
    t0 = time.perf_counter()
    if "env" in parts:
        result["env"] = bench_env(args, peak["peak_flops"])
    if "single" in parts:
        result["single"] = bench_single(args, one)
    if "minimal" in parts:
        result["minimal"] = bench_minimal(args)
    if "data" in parts:
        result["data"] = bench_data(args)
    if "student" in parts:
        result["student"] = bench_student(args, one)
    if "compile" in parts:
        result["compile"] = bench_compile(args)
    result["seconds"] = time.perf_counter() - t0
    result["load_average_end"] = os.getloadavg()
    if emit_json(result, args.out, args.json):
        return
    dev = result["cuda"] or f"{os.cpu_count()} CPU(s)"
    print(f"torch {torch.__version__}, {dev}; matmul peak {peak['peak_flops'] / 1e9:,.1f} GFLOP/s "
          f"({args.threads} thread(s) on CPU); load average {result['load_average_start'][0]:.1f} -> "
          f"{result['load_average_end'][0]:.1f}; {result['seconds']:.0f} s\n")
    if "env" in result:
        print(f"env: {args.env} ({args.env_kwargs or 'defaults'}), action {args.action}, reports "
              f"{'on' if args.reports else 'off'}, {args.steps} timed steps after a reset and one untimed step, "
              f"{args.device}, {args.threads} torch thread(s)\n")
        print("wall time per step split into device (training, scoring, decoding passes) and host (the rest); the "
              "same split of the process's CPU time (what a dedicated core takes, on a shared machine)\n")
        print("| N | env steps/s | env steps per CPU s | training tokens/s | step s (device + host) | "
              "host ms per sub-env step | CPU s per step (device + host) | host CPU ms per sub-env step | "
              "peak memory | estimate | MFU | load |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in result["env"]:
            if "seconds" not in r:
                print(f"| {r['n']} | {r.get('refused') or r.get('error')} ||||||||||")
                continue
            k = r["timed_steps"]
            planned = r["memory_estimate"].get("planned")
            print(f"| {r['n']} | {r['env_steps_per_s']:,.2f} | {r['env_steps_per_cpu_s']:,.2f} | "
                  f"{r['train_tokens_per_s']:,.0f} | {r['seconds'] / k:.2f} ({sum(r['device_seconds']) / k:.2f} + "
                  f"{sum(r['host_seconds']) / k:.2f}) | {r['host_ms_per_env_step']:.2f} | "
                  f"{sum(r['step_cpu_seconds']) / k:.2f} ({sum(r['device_cpu_seconds']) / k:.2f} + "
                  f"{sum(r['host_cpu_seconds']) / k:.2f}) | {r['host_cpu_ms_per_env_step']:.2f} | "
                  f"{_mib(r['peak_memory'])} | {_mib(planned) if planned else '-'} | {100 * r['mfu']:.2f} % | "
                  f"{r['load_average_end']:.1f} |")
        print()
    if "single" in result:
        r = result["single"]
        if "seconds" in r:
            print(f"single env ({args.single_threads} thread(s)): {r['env_steps_per_s']:.3f} env steps/s, "
                  f"{r['env_steps_per_cpu_s']:.3f} per CPU s, {r['train_tokens_per_s']:,.0f} training tokens/s, "
                  f"MFU {100 * r['mfu']:.2f} %, load {r['load_average_end']:.1f}\n")
            for v in result.get("env", []):
                if "seconds" in v:
                    print(f"N={v['n']} ({args.threads} thread(s)) / single ({args.single_threads}): "
                          f"{v['env_steps_per_s'] / r['env_steps_per_s']:.2f}x env steps/s, "
                          f"{v['env_steps_per_cpu_s'] / r['env_steps_per_cpu_s']:.2f}x env steps per CPU s")
            print()
        else:
            print(f"single env: {r.get('refused') or r.get('error')}\n")
    if "minimal" in result:
        m = result["minimal"]
        if "marginal_ms_per_sub_env" in m:
            print(f"minimal compute ({m['kwargs']}), medians over the timed steps:\n")
            print("| | step at N=1 | step at N=" + str(args.minimal_n) + " | per extra sub-env | host per sub-env at N="
                  + str(args.minimal_n) + " | device per sub-env |")
            print("|---|---:|---:|---:|---:|---:|")
            print(f"| wall ms | {1000 * m['step_seconds_1']:.1f} | {1000 * m['step_seconds_n']:.1f} | "
                  f"{m['marginal_ms_per_sub_env']:.2f} | {m['host_ms_per_sub_env_n']:.2f} | {m['device_ms_per_sub_env_n']:.2f} |")
            print(f"| CPU ms | {1000 * m['step_cpu_seconds_1']:.1f} | {1000 * m['step_cpu_seconds_n']:.1f} | "
                  f"{m['marginal_cpu_ms_per_sub_env']:.2f} | {m['host_cpu_ms_per_sub_env_n']:.2f} | "
                  f"{m['device_cpu_ms_per_sub_env_n']:.2f} |")
            print()
        else:
            print(f"minimal: {[r.get('refused') or r.get('error') for r in m['rows']]}\n")
    if "data" in result:
        print(f"data: one step's training examples ({2048} of one cell, train part, verified) for P students\n")
        print("| P | scalar (arith-v1, procedural) ex/s | vectorised (arith-v2, generate_many) ex/s | vectorised + token rows ex/s | speed-up |")
        print("|---:|---:|---:|---:|---:|")
        for r in result["data"]:
            print(f"| {r['students']} | {r['scalar_examples_per_s']:,.0f} | {r['vector_examples_per_s']:,.0f} | "
                  f"{r['vector_with_tokens_examples_per_s']:,.0f} | {r['vector_examples_per_s'] / r['scalar_examples_per_s']:.1f}x |")
        print()
    if "student" in result:
        print("student: 1 CPU thread, batch 128 with replay 0.75, 512 examples per call, median of interleaved repetitions\n")
        print("| student | CPU ms per optimiser step per student | wall ms | training tokens per CPU s (all members) | MFU (1 thread) |")
        print("|---|---:|---:|---:|---:|")
        for r in result["student"]:
            print(f"| {r['student']} | {r['cpu_ms_per_member_step']:.1f} | {r['wall_ms_per_member_step']:.1f} | "
                  f"{r['tokens_per_cpu_s']:,.0f} | {100 * r['mfu']:.1f} % |")
        print()
    if "compile" in result:
        print(f"compile: one optimiser step (batch 128 rows; population: {args.compile_p} members x 128), row lengths "
              f"{COMPILE_LENGTHS} in turn, {args.device}, {args.threads} thread(s); median wall ms over "
              f"{args.compile_reps} steps after the warm-up; inductor cache "
              f"{'warm (as found)' if args.compile_warm_cache else 'empty at start (a first compilation)'}\n")
        print("| model | mode | warm-up s | ms per step | training tokens/s | speed-up | pays back after (steps) |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for r in result["compile"]:
            if "ms_per_step" not in r:
                print(f"| {r['model']} | {r['mode']} | {r.get('error')} |||||")
                continue
            be = r.get("break_even_steps")
            print(f"| {r['model']} | {r['mode']} | {r['warmup_seconds']:.1f} | {r['ms_per_step']:.1f} | "
                  f"{r['tokens_per_s']:,.0f} | {r.get('speedup', 1.0):.2f}x | "
                  f"{'-' if r['mode'] == 'eager' else ('never' if be is None else f'{be:,.0f}')} |")


if __name__ == "__main__":
    main()
