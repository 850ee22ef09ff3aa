"""How good is the pretrained LoRA student at the start, how much does a uniform episode teach
it, and how fast is it on this machine?

Two parts (``--parts``):

- ``formats``: the pretrained student's starting accuracy per cell under each prompt format in
  ``--formats`` (``fewshot`` with shots of each level in ``--shot-levels``, ``plain``, ``chat``;
  see distillgym/students/lora.py) on ``--format-items`` validation items (distinct, from the
  validation part) of the cells at levels ``--format-levels`` of every skill: greedy answers cut
  at EOS or newline, scored by the suite's rule. This is what chose the default format.
- ``env``: one episode of the registered ``--env`` (default ``distillgym/ArithSkills-SmolLM2-v1``
  with its default budget, step size and validation/test sizes) with the ``--teacher`` (default
  ``uniform``), seed ``--seed``. Printed: the validation accuracy per cell at reset and at the
  end, the gain, the hidden test accuracy at the end, and per step the wall time of each phase,
  the step's process CPU time, the resident memory before the step and its peak during the step
  (Linux ``VmHWM``, reset before each step; elsewhere the peak over the process's life), the
  training tokens per second and the model FLOP utilisation: the student's training FLOPs
  (``TrainStats.flops``, see ``LoRAStudent.flops_per_token``) per second of training against the
  FLOP/s of a ``--matmul-size`` float32 matmul timed in the same process with the same thread
  count. Both rates are given per wall second and per CPU second of the training call; on a
  machine shared with other jobs the wall-clock rates are lower than the machine can do, and
  with one torch thread the CPU-second rates estimate a dedicated core.

- ``shapes``: the student's speed on randomly initialised models of real shapes, built from a
  config written in this script (``--shapes``: ``tiny``, ``smollm2-135m``, ``qwen2.5-0.5b``,
  ``qwen2.5-1.5b``; no download: a one-character-per-token tokenizer stands in, which tokenizes
  digits one by one as SmolLM2's and Qwen's do) and on any local model directories
  (``--model-dirs``), on ``--device`` (cpu or cuda), each with each student path in ``--paths``
  (``baseline``: the id's defaults; ``gpu``: ``distillgym.students.lora.GPU_KWARGS``; ``gpu16``:
  the same with the id's ``batch_size`` of 16, the same training recipe as the baseline). One
  episode of ``--env`` (``--shape-env-kwargs`` overrides its defaults) with the uniform teacher:
  the episode's wall time (reset and steps; loading the model apart), training tokens per second
  of training and of the episode, the MFU of training against the device's measured matmul peak
  (bf16 on CUDA, the dtype autocast computes in; float32 on a CPU, at ``--threads``), the peak
  memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak resident memory) and each step's
  wall time split into *device* time (the student's ``train``, ``predict`` and ``answer_loss``
  calls, until their results are on the host) and *host* time (the rest: data generation,
  checking, the env's bookkeeping). The JSON (``--out``) is rewritten after every row, so a run
  cut short keeps the rows it finished.

Run (results in benchmarks/README.md; the machine's other jobs change the wall times):
    python benchmarks/lora_student.py --threads 1 --parts formats --shot-levels 0,1,2,3
    python benchmarks/lora_student.py --threads 1 --parts formats --formats fewshot --format-levels 0,1,2,3
    python benchmarks/lora_student.py --threads 1 --parts env --json --out lora-env.json
    python benchmarks/lora_student.py --parts shapes --shapes tiny --paths baseline,gpu   # CPU smoke check
    python benchmarks/lora_student.py --parts shapes --device cuda --shapes smollm2-135m,qwen2.5-0.5b,qwen2.5-1.5b \
        --out lora-gpu.json   # a GPU (benchmarks/gpu_check.sh runs it time-boxed)
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from _args import emit_json, parse_dataclass_args  # benchmarks/_args.py, beside this script
from _peak import cuda_matmul_flops  # benchmarks/_peak.py


@dataclass
class Args:
    parts: str = "formats,env"
    """Comma-separated parts to run: formats, env."""
    model: str = "smollm2"
    """The student's base model in the formats part (a named model or a local directory)."""
    suite: str = "arith-v1"
    """Task suite of the formats part."""
    formats: str = "fewshot,plain,chat"
    """Prompt formats compared in the formats part."""
    shot_levels: str = "1"
    """Few-shot example levels (comma-separated) compared in the formats part."""
    format_items: int = 16
    """Validation items per cell in the formats part."""
    format_levels: str = "0,2"
    """Levels (comma-separated) of every skill scored in the formats part."""
    env: str = "distillgym/ArithSkills-SmolLM2-v1"
    """Env id of the env part (its registered defaults are used)."""
    env_kwargs: str = ""
    """JSON object of gym.make keyword arguments overriding the env's defaults (e.g. for a quick check)."""
    teacher: str = "uniform"
    """Teacher of the env part."""
    seed: int = 0
    """Seed of the validation items (formats), of the episode and the teacher (env)."""
    threads: int = 1
    """torch threads."""
    matmul_size: int = 1024
    """Side of the square float32 matmul used as the machine's reference FLOP/s."""
    shapes: str = "tiny"
    """Model shapes of the shapes part: tiny, smollm2-135m, qwen2.5-0.5b, qwen2.5-1.5b (comma-separated; may be empty)."""
    model_dirs: str = ""
    """Local model directories (comma-separated) also timed in the shapes part."""
    paths: str = "baseline,gpu"
    """Student paths of the shapes part: baseline, gpu, gpu16 (comma-separated)."""
    device: str = "cpu"
    """Device of the shapes part: cpu or cuda."""
    shape_env_kwargs: str = ""
    """JSON object of gym.make keyword arguments for the shapes part (default: the env's own)."""
    cache_dir: str = ""
    """Where the shapes part saves its random models (default: a temporary directory, removed at the end)."""
    json: bool = False
    """Print the results as JSON instead of tables."""
    out: str = ""
    """Also write the JSON results to this file."""


def peak_rss_mib() -> float:
    """Peak resident memory of this process, MiB: since the last :func:`reset_peak_rss` where
    Linux allows resetting it (``VmHWM``), else over the process's life (``ru_maxrss``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux: ``5`` into ``clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    """Current resident memory of this process, MiB (Linux), or nan."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def matmul_flops(n: int, reps: int = 5) -> tuple[float, float]:
    """Best FLOP/s of an n x n float32 matmul (after one warm-up), per wall second and per
    process CPU second."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    wall = cpu = float("inf")
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        a @ b
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return 2 * n**3 / wall, 2 * n**3 / max(cpu, 1e-9)


def cell_accuracy(student: Any, suite: Any, examples: list) -> dict[tuple[str, int], float]:
    """Per (skill, level): mean score of the student's greedy answers (suite's rule)."""
    answers = student.predict([e.prompt for e in examples], max_new_tokens=suite.max_answer_len + 1)
    tot: dict[tuple[str, int], list[float]] = {}
    for e, a in zip(examples, answers, strict=True):
        tot.setdefault((e.skill, e.difficulty), []).append(suite.score(a, e.answer))
    return {k: sum(v) / len(v) for k, v in tot.items()}


def validation_set(suite: Any, seed: int, n: int, cells: list[tuple[str, int]]) -> list:
    from distillgym.seeding import STREAM_VAL, rng_for

    return [
        e for s, d in cells
        for e in suite.generate(s, d, rng_for(seed, STREAM_VAL, suite.skill_index(s), d), n, split="val", distinct=True)
    ]


def table(suite: Any, rows: dict[str, dict[tuple[str, int], float]], levels: list[int]) -> str:
    head = "| skill | " + " | ".join(f"{name} L{d}" for name in rows for d in levels) + " |"
    lines = [head, "|" + "---|" * (1 + len(rows) * len(levels))]
    for s in suite.skills:
        vals = [rows[name].get((s, d), float("nan")) for name in rows for d in levels]
        lines.append(f"| {s} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    means = [sum(r.values()) / len(r) for r in rows.values()]
    lines.append("mean over the cells: " + ", ".join(f"{n} {m:.3f}" for n, m in zip(rows, means, strict=True)))
    return "\n".join(lines)


def run_formats(args: Args, suite: Any) -> dict[str, Any]:
    import gc

    from distillgym.students import make_student

    levels = [int(x) for x in args.format_levels.split(",")]
    cells = [(s, d) for s in suite.skills for d in levels]
    val = validation_set(suite, args.seed, args.format_items, cells)
    out: dict[str, Any] = {}
    wanted = [f.strip() for f in args.formats.split(",") if f.strip()]
    variants = []
    for fmt in wanted:
        if fmt == "fewshot":
            variants += [(f"fewshot-{lv}", "fewshot", int(lv)) for lv in args.shot_levels.split(",")]
        else:
            variants.append((fmt, fmt, 1))
    for label, fmt, lv in variants:
        t0 = time.perf_counter()
        st = make_student("lora", suite, model=args.model, device="cpu", prompt_format=fmt, shot_level=lv,
                          seed=args.seed)
        acc = cell_accuracy(st, suite, val)
        out[label] = {
            "accuracy": {f"{s} L{d}": v for (s, d), v in acc.items()},
            "mean": sum(acc.values()) / len(acc),
            "seconds": time.perf_counter() - t0,
            "example": st.format_text(val[0].prompt, val[0].answer),
            "_acc": acc,
        }
        del st
        gc.collect()
    if not args.json:
        print(f"## starting accuracy by prompt format ({args.format_items} validation items per cell)\n")
        print(table(suite, {f: out[f]["_acc"] for f in out}, levels))
        for f in out:
            print(f"{f}: {out[f]['seconds']:.0f} s (load + {len(val)} answers); text: {out[f]['example']!r}")
    for f in out:
        del out[f]["_acc"]
    return out


def run_env(args: Args) -> dict[str, Any]:
    import gymnasium as gym
    import numpy as np

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher

    t0, c0 = time.perf_counter(), time.process_time()
    env = gym.make(args.env, **(json.loads(args.env_kwargs) if args.env_kwargs else {}))
    unwrapped = env.unwrapped
    suite = unwrapped.suite
    student = unwrapped.student
    make_s = time.perf_counter() - t0
    train_cpu: list[float] = []
    original = student.train

    def timed_train(examples: Any, rng: Any = None, **kw: Any) -> Any:
        c = time.process_time()
        out = original(examples, rng, **kw)
        train_cpu.append(time.process_time() - c)
        return out

    student.train = timed_train  # measures the CPU time of each training call; the call is unchanged
    peak_wall, peak_cpu = matmul_flops(args.matmul_size)
    t1, c1 = time.perf_counter(), time.process_time()
    obs, info = env.reset(seed=args.seed)
    reset_s, reset_cpu = time.perf_counter() - t1, time.process_time() - c1
    start = np.array(obs["accuracy"], dtype=float)
    teacher = adapt_teacher(make_teacher(args.teacher), info["level"])
    teacher.reset(env.action_space, info, seed=args.seed)
    steps = []
    done = False
    while not done:
        action = teacher.act(obs, info)
        rss_before = rss_mib()
        peak_reset = reset_peak_rss()
        t1, c1 = time.perf_counter(), time.process_time()
        obs, reward, term, trunc, info = env.step(action)
        wall, cpu = time.perf_counter() - t1, time.process_time() - c1
        teacher.update(obs, reward, term, trunc, info)
        done = term or trunc
        costs, sec = info["costs"], info["costs"]["seconds"]
        tr_wall, tr_cpu = float(sec["train"]), train_cpu[-1]
        step = {
            "step": len(steps) + 1,
            "action": info["action"],
            "examples": costs["examples"],
            "tokens": costs["tokens"],
            "optimizer_steps": costs["optimizer_steps"],
            "train_loss": info["train_loss"],
            "mean_accuracy": info["mean_accuracy"],
            "reward": reward,
            "seconds": {k: float(v) for k, v in sec.items()},
            "cpu_seconds": cpu,
            "train_cpu_seconds": tr_cpu,
            "tokens_per_s": costs["tokens"] / tr_wall,
            "tokens_per_cpu_s": costs["tokens"] / tr_cpu,
            "mfu_wall": costs["student_flops"] / tr_wall / peak_wall,
            "mfu_cpu": costs["student_flops"] / tr_cpu / peak_cpu,
            "rss_before_mib": rss_before,
            "peak_rss_mib": peak_rss_mib(),
            "peak_is_of_the_step": peak_reset,
        }
        steps.append(step)
        if not args.json:
            a = info["action"]
            print(f"step {step['step']} ({a.get('skill', '')} L{a.get('difficulty', '')}): loss {step['train_loss']:.3f}, "
                  f"val acc {step['mean_accuracy']:.3f}, wall {wall:.0f} s (train {tr_wall:.0f}, evaluate "
                  f"{float(sec['evaluate']):.0f}), CPU {cpu:.0f} s (train {tr_cpu:.0f}), {step['tokens_per_cpu_s']:.0f} "
                  f"tok/CPU-s, MFU {step['mfu_cpu']:.2f} (CPU) / {step['mfu_wall']:.2f} (wall), RSS {rss_before:.0f} MiB "
                  f"before, peak {step['peak_rss_mib']:.0f} MiB during", flush=True)
    end = np.array(obs["accuracy"], dtype=float)
    final = info["final"]
    cells = [f"{s} L{d}" for s in suite.skills for d in range(suite.n_difficulties)]
    result = {
        "env": args.env,
        "teacher": args.teacher,
        "env_config": unwrapped.config,
        "costs": student.costs(),
        "make_s": make_s,
        "reset_s": reset_s,
        "reset_cpu_s": reset_cpu,
        "episode_wall_s": time.perf_counter() - t0,
        "episode_cpu_s": time.process_time() - c0,
        "matmul_flops_per_s": peak_wall,
        "matmul_flops_per_cpu_s": peak_cpu,
        "val_start": dict(zip(cells, start.ravel().tolist(), strict=True)),
        "val_end": dict(zip(cells, end.ravel().tolist(), strict=True)),
        "val_start_mean": float(start.mean()),
        "val_end_mean": float(end.mean()),
        "test_end": dict(zip(cells, np.array(final["test_accuracy_matrix"]).ravel().tolist(), strict=True)),
        "test_end_mean": final["test_accuracy"],
        "steps": steps,
    }
    env.close()
    if not args.json:
        levels = list(range(suite.n_difficulties))
        to_cells = {k: {(s, d): float(m[i, d]) for i, s in enumerate(suite.skills) for d in levels}
                    for k, m in (("start", start), ("end", end), ("gain", end - start),
                                 ("test", np.array(final["test_accuracy_matrix"])))}
        print(f"\n## {args.env}, teacher {args.teacher}, seed {args.seed}: validation accuracy per cell "
              f"({unwrapped.n_val_per_cell} items) at reset, at the end, the gain; hidden test accuracy "
              f"({unwrapped.n_test_per_cell} items) at the end\n")
        print(table(suite, to_cells, levels))
        print(f"\nmake {make_s:.0f} s, reset {reset_s:.0f} s (CPU {reset_cpu:.0f} s), episode wall "
              f"{result['episode_wall_s']:.0f} s, CPU {result['episode_cpu_s']:.0f} s; matmul peak "
              f"{peak_wall / 1e9:.1f} GFLOP/s (wall), {peak_cpu / 1e9:.1f} GFLOP/CPU-s; costs {student.costs()}")
    return result


SHAPES: dict[str, dict[str, Any]] = {
    # the architectures' published configs (HuggingFaceTB/SmolLM2-135M, Qwen/Qwen2.5-0.5B, Qwen/Qwen2.5-1.5B)
    "smollm2-135m": dict(kind="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                         num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
                         rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=True),
    "qwen2.5-0.5b": dict(kind="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                         num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                         rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(kind="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True),
}
"""Real shapes for the shapes part (``tiny`` is :func:`distillgym.students.lora.save_tiny_causal_lm`)."""


def build_shape(name: str, root: str, chars: str, device: str) -> str:
    """Save the random model ``name`` under ``root`` (once; reused if already there) and return its directory."""
    import torch
    from transformers import LlamaConfig, Qwen2Config

    from distillgym.students.lora import save_random_causal_lm, save_tiny_causal_lm

    path = os.path.join(root, name)
    if os.path.exists(os.path.join(path, "config.json")):
        return path
    if name == "tiny":
        return save_tiny_causal_lm(path, chars)
    if name not in SHAPES:
        raise SystemExit(f"unknown shape {name!r}; known: tiny, {', '.join(SHAPES)}")
    spec = dict(SHAPES[name])
    cfg = (LlamaConfig if spec.pop("kind") == "llama" else Qwen2Config)(**spec)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return save_random_causal_lm(path, chars, cfg, dtype=dtype, device=device)


def _peak_flops(device: str, threads: int, n: int) -> dict[str, float]:
    """The device's measured matmul peak: CUDA, best of 10 8192^2 products in bf16 and float32
    (CUDA events); CPU, an ``n``^2 float32 product per wall second (at ``threads`` threads)."""
    if not device.startswith("cuda"):
        wall, cpu = matmul_flops(n)
        return {"peak_flops": wall, "peak_dtype": "float32", "float32_flops": wall, "float32_flops_per_cpu_s": cpu}
    out = {f"{k}_flops": v for k, v in cuda_matmul_flops(device).items()}
    return {"peak_flops": out["bfloat16_flops"], "peak_dtype": "bfloat16", **out}


def _peak_memory_reset(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak_rss()


def _peak_memory_mib(device: str) -> float:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mib()


def shape_episode(args: Args, model_dir: str, path: str, peak: dict[str, float]) -> dict[str, Any]:
    """One episode of ``args.env`` with the LoRA student on ``model_dir`` along ``path``."""
    import gc

    import gymnasium as gym
    import numpy as np
    import torch

    import distillgym  # noqa: F401  (registers the envs)
    from distillgym.students.lora import GPU_KWARGS
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher

    paths = {"baseline": {}, "gpu": dict(GPU_KWARGS), "gpu16": {**GPU_KWARGS, "batch_size": 16}}
    if path not in paths:
        raise SystemExit(f"unknown path {path!r}; known: {', '.join(paths)}")
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    _peak_memory_reset(args.device)
    t0 = time.perf_counter()
    kwargs = json.loads(args.shape_env_kwargs) if args.shape_env_kwargs else {}
    env = gym.make(args.env, device=args.device, student_kwargs={"model": model_dir, **paths[path]}, **kwargs)
    student = env.unwrapped.student
    sync()
    load_s = time.perf_counter() - t0
    device_s = [0.0]

    def timed(fn: Any) -> Any:
        def call(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)  # results come back on the host (stats, strings, numpy)
            finally:
                sync()
                device_s[0] += time.perf_counter() - t
        return call

    for name in ("train", "predict", "answer_loss"):
        setattr(student, name, timed(getattr(student, name)))  # instance attributes: the class is unchanged
    t1 = time.perf_counter()
    obs, info = env.reset(seed=args.seed)
    reset = {"wall_s": time.perf_counter() - t1, "device_s": device_s[0]}
    teacher = adapt_teacher(make_teacher("uniform"), info["level"])
    teacher.reset(env.action_space, info, seed=args.seed)
    steps, done = [], False
    while not done:
        action = teacher.act(obs, info)
        device_s[0] = 0.0
        t = time.perf_counter()
        obs, reward, term, trunc, info = env.step(action)
        wall = time.perf_counter() - t
        teacher.update(obs, reward, term, trunc, info)
        done = term or trunc
        c, sec = info["costs"], info["costs"]["seconds"]
        steps.append({"wall_s": wall, "device_s": device_s[0], "host_s": wall - device_s[0],
                      "train_s": float(sec["train"]), "evaluate_s": float(sec["evaluate"]), "tokens": c["tokens"],
                      "flops": c["student_flops"], "optimizer_steps": c["optimizer_steps"]})
    episode_s = time.perf_counter() - t1
    train_s = sum(x["train_s"] for x in steps)
    tokens = sum(x["tokens"] for x in steps)
    flops = sum(x["flops"] for x in steps)
    row = {
        "model_dir": model_dir, "path": path, "student_kwargs": paths[path], "device": args.device,
        "n_params": student.n_params, "trainable_params": student.trainable_params,
        "load_s": load_s, "episode_s": episode_s, "reset": reset,
        "train_s": train_s, "device_s": reset["device_s"] + sum(x["device_s"] for x in steps),
        "host_s": episode_s - reset["device_s"] - sum(x["device_s"] for x in steps),
        "tokens": tokens, "optimizer_steps": sum(x["optimizer_steps"] for x in steps),
        "tokens_per_train_s": tokens / train_s, "tokens_per_episode_s": tokens / episode_s,
        "mfu_train": flops / train_s / peak["peak_flops"], "mfu_episode": flops / episode_s / peak["peak_flops"],
        "peak_memory_mib": _peak_memory_mib(args.device),
        "val_start_mean": float(np.mean(info["final"]["val_accuracy_start"]))
        if "val_accuracy_start" in info["final"] else None,
        "test_accuracy": float(info["final"]["test_accuracy"]),
        "steps": steps,
    }
    if cuda and path != "baseline":
        row["host_syncs"] = count_syncs(student, env.unwrapped.suite)
    env.close()
    del env, student
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return row


def count_syncs(student: Any, suite: Any) -> dict[str, Any]:
    """Host synchronisations of one ``train`` call (64 examples) and one ``predict`` call (28 cells x
    4 prompts, 8 new tokens), counted by ``torch.cuda.set_sync_debug_mode("warn")`` (the class's
    methods, not the timed wrappers, which synchronise on purpose). The GPU path should show one
    per optimiser step plus one at the end of ``train``, and one at the end of ``predict``, plus
    whatever transformers or peft add."""
    import warnings

    import numpy as np
    import torch

    from distillgym.seeding import rng_for

    cells = [(s, d) for s in suite.skills for d in range(suite.n_difficulties)]
    examples = [e for k, (s, d) in enumerate(cells) for e in suite.generate(s, d, rng_for(0, 9, k), 4, split="train")]
    out: dict[str, Any] = {}
    snap = student.snapshot()
    for name, call in (("train", lambda: type(student).train(student, examples[:64], np.random.default_rng(0))),
                       ("predict", lambda: type(student).predict(student, [e.prompt for e in examples], 8))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                call()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = [f"{w.filename}:{w.lineno}" for w in caught if "synchroniz" in str(w.message).lower()]
        out[name] = {"count": len(syncs), "where": sorted(set(syncs))[:8]}
    student.restore(snap)
    return out


def run_shapes(args: Args, result: dict[str, Any]) -> list[dict[str, Any]]:
    import shutil
    import tempfile

    import torch

    from distillgym.tasks import make_suite

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda but CUDA is not available")
    peak = _peak_flops(args.device, args.threads, args.matmul_size)
    result["shapes_peak"] = peak
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    import gymnasium as gym

    chars = make_suite(gym.spec(args.env).kwargs.get("suite", "arith-v1")).alphabet + "\nua:"
    root = args.cache_dir or tempfile.mkdtemp(prefix="lora-shapes-")
    rows: list[dict[str, Any]] = []
    result["shapes"] = rows
    try:
        models = [(s, None) for s in args.shapes.split(",") if s.strip()]
        models += [(d, d) for d in args.model_dirs.split(",") if d.strip()]
        for name, given in models:
            t = time.perf_counter()
            model_dir = given or build_shape(name.strip(), root, chars, args.device)
            built_s = time.perf_counter() - t
            for path in [p.strip() for p in args.paths.split(",") if p.strip()]:
                row = {"shape": name, "build_s": built_s, **shape_episode(args, model_dir, path, peak)}
                rows.append(row)
                if args.out:
                    emit_json(result, args.out, False)  # a run cut short keeps the rows it finished
                if not args.json:
                    print(f"| {name} | {path} | {row['episode_s']:.2f} | {row['tokens_per_train_s']:,.0f} | "
                          f"{row['tokens_per_episode_s']:,.0f} | {100 * row['mfu_train']:.3f} % | "
                          f"{row['peak_memory_mib']:,.0f} | {row['device_s']:.2f} + {row['host_s']:.2f} | "
                          f"{row['load_s']:.1f} |", flush=True)
    finally:
        if not args.cache_dir:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def main() -> None:
    args = parse_dataclass_args(Args, __doc__.split("\n\n")[0])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from distillgym.tasks import make_suite

    t0 = time.perf_counter()
    result: dict[str, Any] = {"args": asdict(args), "torch": torch.__version__, "threads": args.threads,
                              "cpus": os.cpu_count(), "python": platform.python_version(),
                              "load_average_at_start": os.getloadavg()}
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - {"formats", "env", "shapes"})
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; use formats, env and/or shapes")
    if "formats" in parts:
        result["formats"] = run_formats(args, make_suite(args.suite))
    if "env" in parts:
        result["env"] = run_env(args)
    if "shapes" in parts:
        if not args.json:
            print(f"## the LoRA student on {args.device}: one {args.env} episode per shape and path\n")
            print("| shape | path | episode s | training tokens/s (training) | tokens/s (episode) | MFU (training) | "
                  "peak memory MiB | device + host s | load s |")
            print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        run_shapes(args, result)
    result["wall_s"] = time.perf_counter() - t0
    result["load_average_at_end"] = os.getloadavg()
    if not emit_json(result, args.out, args.json):
        print(f"\nwall {result['wall_s']:.0f} s, load average {result['load_average_at_start']} -> "
              f"{result['load_average_at_end']} on {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{args.threads} thread(s)")


if __name__ == "__main__":
    main()
