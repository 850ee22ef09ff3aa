"""How fast are the vectorised parts: data generation, the plain and population students, and
the native vector env against Gymnasium's async vector env?

Three parts (``--parts``, comma separated):

- ``data``: examples/s of producing one env step's training examples (``--examples-per-step``
  of one cell, train part only, verified) for P students: the scalar path (``arith-v1``'s
  per-item generator through the procedural engine, once per student) against the vectorised
  path (``arith-v2`` through the vectorized engine's ``generate_many``, all students at once),
  and, for the vectorised path, with the token rows the students train on (``encode``);
- ``student``: one CPU thread, the tiny student (transformers' Llama module) against the plain
  student (the same architecture in plain torch) and populations of P plain students: CPU
  milliseconds per optimiser step per student and training tokens/s (interleaved repetitions on
  the same data; the median is kept);
- ``env``: environment steps/s and student training tokens/s against N, for the native vector
  env (``gymnasium.make_vec(id, num_envs=N)``: one population in this process, 1 torch thread)
  and the async vector env (``vectorization_mode="async"``: N spawned processes, 1 torch thread
  each), on ``--env`` with the uniform-cell action sequence (sub-env i steps cell
  (t + i) mod 28): ``--steps`` timed steps after a reset and one untimed step (the first step
  of an episode trains without replay, so it takes a quarter of the optimiser steps of the
  others); with model FLOP utilisation.

Model FLOP utilisation (MFU) is achieved training FLOPs (real tokens x nanoGPT's 6N + 12LHT
per token, T = max_positions; padding and evaluation not counted) per second over the FLOPs per
CPU second of a large float32 matmul on 1 thread, times the threads the configuration uses (N
processes for async, capped at the CPU count; 1 for the native env). The student part divides
by CPU seconds (``process_time``), the env part by wall seconds (child processes' CPU time is
not measurable while they run), so on a shared machine the env MFU also counts the time other
processes took; env MFU also covers all of a step (data, evaluation, Python), not only training.

Run (the numbers in benchmarks/README.md; a loaded machine inflates every time):
    python benchmarks/vector.py --parts data,student,env --out benchmarks/results/vector/vector.json
    python benchmarks/vector.py --parts env --native-n 1,2,4,8,16 --async-n 1,2,4 --steps 2
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from _args import emit_json, parse_dataclass_args  # benchmarks/_args.py, beside this script


@dataclass
class Args:
    parts: str = "data,student,env"
    """Which parts to run: data, student, env (comma separated)."""
    env: str = "distillgym/ArithSkills-v2"
    """Env id for the env part (it needs a vector entry point)."""
    examples_per_step: int = 2048
    """Examples per env step (the env's default is 2048)."""
    data_p: str = "1,16,256"
    """Numbers of students for the data part."""
    student_p: str = "1,4,16"
    """Population sizes for the student part."""
    student_reps: int = 5
    """Interleaved timed repetitions per student (one train call of 512 examples each)."""
    native_n: str = "1,2,4,8"
    """Numbers of sub-envs for the native vector env."""
    async_n: str = "1,2,4"
    """Numbers of sub-envs (processes) for the async vector env."""
    steps: int = 2
    """Timed vector steps per N (after one untimed reset)."""
    matmul_size: int = 1024
    """Side of the reference float32 matmul (1 thread)."""
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
    n = args.examples_per_step
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


# ---------------------------------------------------------------------------- env
def _actions(t: int, n: int, level: str) -> np.ndarray:
    cells = [(s, d) for s in range(7) for d in range(4)]
    if level == "cell":
        return np.array([cells[(t + i) % 28] for i in range(n)], dtype=np.int64)
    out = -np.ones((n, 7, 4), np.float32)
    for i in range(n):
        s, d = cells[(t + i) % 28]
        out[i, s, d] = 1.0
    return out


def bench_env(args: Args, peak: float) -> list[dict[str, Any]]:
    import gymnasium as gym

    import distillgym  # noqa: F401

    kw = dict(examples_per_step=args.examples_per_step, device="cpu")
    level = gym.spec(args.env).kwargs.get("level", "cell")
    rows = []
    for kind, ns in (("native", _ints(args.native_n)), ("async", _ints(args.async_n))):
        for N in ns:
            if kind == "native":
                venv = gym.make_vec(args.env, num_envs=N, vectorization_mode="vector_entry_point", **kw)
                fpt = venv.unwrapped.population.flops_per_token()
                threads = 1
            else:
                venv = gym.make_vec(args.env, num_envs=N, vectorization_mode="async",
                                    vector_kwargs={"context": "spawn"}, torch_threads=1, **kw)
                fpt = None
                threads = min(N, os.cpu_count() or 1)
            t0 = time.perf_counter()
            venv.reset(seed=list(range(N)))
            reset_s = time.perf_counter() - t0
            venv.step(_actions(0, N, level))  # untimed: the first step trains without replay
            tok = 0
            phases = {"generate": 0.0, "train": 0.0, "evaluate": 0.0}
            t0 = time.perf_counter()
            for t in range(1, args.steps + 1):
                _, _, _, _, info = venv.step(_actions(t, N, level))
                tok += int(np.sum(info["costs"]["tokens"]))
                for k in phases:
                    phases[k] += float(np.sum([float(x) for x in info["costs"]["seconds"][k]]))
            seconds = time.perf_counter() - t0
            if fpt is None:
                from distillgym.students.torch_student import PlainStudent
                from distillgym.tasks import make_suite

                fpt = PlainStudent.for_suite(make_suite(gym.spec(args.env).kwargs["suite"]), device="cpu").flops_per_token()
            venv.close()
            row = {"kind": kind, "num_envs": N, "steps": args.steps, "seconds": seconds, "reset_seconds": reset_s,
                   "env_steps_per_s": N * args.steps / seconds, "train_tokens_per_s": tok / seconds,
                   "threads": threads, "mfu": tok * fpt / seconds / (peak * threads),
                   "phase_seconds_summed_over_envs": phases}
            print(f"[env] {kind} N={N}: {row['env_steps_per_s']:.3f} env steps/s, "
                  f"{row['train_tokens_per_s']:,.0f} tokens/s", file=sys.stderr, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    args = parse_dataclass_args(Args, __doc__.split("\n\n")[0])
    import torch

    torch.set_num_threads(1)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"data", "student", "env"}
    if unknown:
        raise SystemExit(f"unknown part(s) {sorted(unknown)}; choose from data, student, env")
    peak = matmul_flops(args.matmul_size)
    result: dict[str, Any] = {
        "args": dataclasses.asdict(args), "matmul_flops_per_s_1_thread": peak, "torch": torch.__version__,
        "cpu_count": os.cpu_count(), "cuda": torch.cuda.is_available(),
        "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
        "load_average_start": os.getloadavg(),
    }
    t0 = time.perf_counter()
    if "data" in parts:
        result["data"] = bench_data(args)
    if "student" in parts:
        result["student"] = bench_student(args, peak)
    if "env" in parts:
        result["env"] = bench_env(args, peak)
    result["seconds"] = time.perf_counter() - t0
    result["load_average_end"] = os.getloadavg()
    if emit_json(result, args.out, args.json):
        return
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), CUDA {'yes' if result['cuda'] else 'no'}; "
          f"1-thread {args.matmul_size}^2 matmul {peak / 1e9:.1f} GFLOP/s; load average "
          f"{result['load_average_start'][0]:.1f} -> {result['load_average_end'][0]:.1f}; {result['seconds']:.0f} s\n")
    if "data" in result:
        print(f"data: one step's training examples ({args.examples_per_step} of one cell, train part, verified) for P students\n")
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
    if "env" in result:
        print(f"env: {args.env}, {args.examples_per_step} examples per step, {args.steps} timed steps after a reset and "
              "one untimed step, CPU\n")
        print("| vector env | N | env steps/s | training tokens/s | threads | MFU | reset s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in result["env"]:
            print(f"| {r['kind']} | {r['num_envs']} | {r['env_steps_per_s']:.3f} | {r['train_tokens_per_s']:,.0f} | "
                  f"{r['threads']} | {100 * r['mfu']:.2f} % | {r['reset_seconds']:.1f} |")


if __name__ == "__main__":
    main()
