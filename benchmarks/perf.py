"""Where does the time of a default episode go, and how fast is the student?

Runs ``--episodes`` default episodes of ``--env`` (default ``distillgym/ArithSkills-v0``; the
env's default budget and student, ``device="cpu"``) with a fixed teacher (default: the uniform
teacher, which visits every skill x difficulty cell once per cycle in a seeded shuffled order;
on a mix or open env it plays through the documented adapter) and prints

- the episode wall time (reset + all steps), its process CPU time (which, with one torch
  thread, is what the episode costs on an idle core even when other jobs share the machine),
  and its split by phase: reset (building the
  validation and test sets and the first evaluation), generate, train, evaluate (the
  validation pass after each step, including greedy decoding of the sampled errors), test
  (the hidden test set at the end) and other (teacher, env bookkeeping);
- training throughput: tokens/s and examples/s (train seconds only; tokens are real,
  non-pad tokens of every mini-batch, replayed examples included);
- the student's achieved training FLOP/s, ``flops_per_token(mean seq len) x tokens /
  train seconds`` (nanoGPT's 6N + 12LHT estimate), and that as a fraction of the FLOP/s of a
  large float32 matmul timed in the same process with the same thread count.

Run (about 75 s on 2 CPU cores shared with another job; results in benchmarks/README.md):
    python benchmarks/perf.py --threads 1
    python benchmarks/perf.py --threads 1 --env distillgym/ArithMix-v1 --teacher stratified
    python benchmarks/perf.py --episodes 3 --json --out perf.json

On a CPU that other processes keep busy, use ``--threads 1`` or ``OMP_WAIT_POLICY=PASSIVE``:
with torch's default thread count and OpenMP's spinning threads, training was measured 25 to
65x slower (see benchmarks/README.md).
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any

from _args import emit_json, parse_dataclass_args  # benchmarks/_args.py, beside this script


@dataclass
class Args:
    env: str = "distillgym/ArithSkills-v0"
    """Registered env id."""
    episodes: int = 1
    """Episodes to run (seeds 0..episodes-1); the figures are per-episode means over them."""
    teacher: str = "uniform"
    """Teacher name (distillgym.teachers.make_teacher); its actions are fixed given the seed."""
    budget: int = 0
    """Training examples per episode (0: the env's default; set it only for a quick check)."""
    threads: int = 0
    """torch threads (0: leave torch's default, which is what the env uses when you make it)."""
    matmul_size: int = 2048
    """Side of the square float32 matmul used as the machine's reference FLOP/s."""
    matmul_reps: int = 5
    """Timed matmul repetitions (after one warm-up); the best is kept."""
    json: bool = False
    """Print the results as JSON instead of tables."""
    out: str = ""
    """Also write the JSON results to this file."""


def parse_args() -> Args:
    return parse_dataclass_args(Args, __doc__.split("\n\n")[0])


def matmul_flops(n: int, reps: int) -> float:
    """Best FLOP/s of an n x n @ n x n float32 matmul (2 n^3 FLOPs) over ``reps`` runs."""
    import torch

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def mean_seq_len(env: Any) -> float:
    """Mean training sequence length (bos + prompt + answer + eos) over the grid, every
    cell weighted the same (the uniform teacher's data): 256 items per cell."""
    from distillgym.seeding import rng_for

    suite, tok = env.suite, env.student.tokenizer
    lens = []
    for i, s in enumerate(suite.skills):
        for d in range(suite.n_difficulties):
            for ex in suite.generate(s, d, rng_for(0, 999, i, d), 256):
                lens.append(len(tok.encode_prompt(ex.prompt)) + len(tok.encode_answer(ex.answer)))
    return sum(lens) / len(lens)


def run_episode(env_id: str, seed: int, teacher_name: str, budget: int) -> dict[str, Any]:
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the env)
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher

    kwargs = {"budget": budget} if budget > 0 else {}
    env = gym.make(env_id, device="cpu", **kwargs)  # the default env, on the CPU
    phases = dict.fromkeys(("reset", "generate", "train", "evaluate", "test"), 0.0)
    tokens = examples = steps = 0
    t0, c0 = time.perf_counter(), time.process_time()
    obs, info = env.reset(seed=seed)
    phases["reset"] = time.perf_counter() - t0
    teacher = adapt_teacher(make_teacher(teacher_name), info["level"])
    teacher.reset(env.action_space, info, seed=seed)
    while True:
        obs, reward, terminated, truncated, info = env.step(teacher.act(obs, info))
        teacher.update(obs, reward, terminated, truncated, info)
        sec = info["costs"]["seconds"]
        for k in ("generate", "train", "evaluate", "test"):
            phases[k] += sec.get(k, 0.0)
        tokens += info["costs"]["tokens"]
        examples += info["costs"]["examples"]
        steps += 1
        print(f"[seed {seed}] step {steps}: { {k: round(v, 2) for k, v in sec.items()} }", file=sys.stderr, flush=True)
        if terminated or truncated:
            break
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    phases["other"] = wall - sum(phases.values())
    student = env.unwrapped.student
    result = {
        "budget": env.unwrapped.budget,
        "examples_per_step": env.unwrapped.examples_per_step,
        "student_config": dataclasses.asdict(student.config),
        "seed": seed,
        "wall": wall,
        "cpu_seconds": cpu,
        "phases": phases,
        "tokens": tokens,
        "examples": examples,
        "steps": steps,
        "optimizer_steps": student.step,
        "test_accuracy": info["final"]["test_accuracy"],
        "mean_seq_len": mean_seq_len(env.unwrapped),
        "n_params": student.n_params,
    }
    result["flops_per_token"] = student.flops_per_token(round(result["mean_seq_len"]))
    env.close()
    return result


def main() -> None:
    args = parse_args()
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    eps = [run_episode(args.env, seed, args.teacher, args.budget) for seed in range(args.episodes)]
    peak = matmul_flops(args.matmul_size, args.matmul_reps)

    n = len(eps)
    wall = sum(e["wall"] for e in eps) / n
    cpu = sum(e["cpu_seconds"] for e in eps) / n
    phases = {k: sum(e["phases"][k] for e in eps) / n for k in eps[0]["phases"]}
    tokens = sum(e["tokens"] for e in eps) / n
    examples = sum(e["examples"] for e in eps) / n
    train_s = phases["train"]
    achieved = eps[0]["flops_per_token"] * tokens / train_s
    result = {
        "args": dataclasses.asdict(args),
        "env": args.env,
        "episodes": eps,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "phases_seconds": phases,
        "train_tokens_per_s": tokens / train_s,
        "train_examples_per_s": examples / train_s,
        "episode_examples_per_s": examples / wall,
        "flops_per_token": eps[0]["flops_per_token"],
        "mean_seq_len": eps[0]["mean_seq_len"],
        "train_flops_per_s": achieved,
        "matmul_flops_per_s": peak,
        "fraction_of_matmul": achieved / peak,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
    if emit_json(result, args.out, args.json):
        return

    e0 = eps[0]

    print(f"{args.env} episode (budget {e0['budget']}{'' if args.budget else ', the default'}) x {n}, teacher {args.teacher!r}, device cpu, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPU(s)")
    print(f"{e0['steps']} steps, {examples:.0f} examples, {e0['optimizer_steps']} optimizer steps, "
          f"{tokens:.0f} training tokens per episode; student {e0['n_params']} parameters, "
          f"replay_fraction {e0['student_config']['replay_fraction']}; "
          f"test accuracy {', '.join(format(e['test_accuracy'], '.3f') for e in eps)}\n")
    print("| phase | seconds | % |")
    print("|---|---:|---:|")
    for k, v in phases.items():
        print(f"| {k} | {v:.2f} | {100 * v / wall:.1f} |")
    print(f"| **episode total** | **{wall:.2f}** | 100.0 |")
    print(f"| process CPU time (all threads; equals wall on an idle core with 1 thread) | {cpu:.2f} | |\n")
    print("| metric | value |")
    print("|---|---:|")
    print(f"| training tokens/s (train time only) | {tokens / train_s:,.0f} |")
    print(f"| training examples/s (train time only; new examples, replay not counted) | {examples / train_s:,.0f} |")
    print(f"| episode examples/s (wall) | {examples / wall:,.0f} |")
    print(f"| FLOPs per training token (6N + 12LHT, T={round(e0['mean_seq_len'])}) | {e0['flops_per_token']:,.0f} |")
    print(f"| achieved training FLOP/s | {achieved / 1e9:.3f} G |")
    print(f"| {args.matmul_size}x{args.matmul_size} float32 matmul FLOP/s | {peak / 1e9:.1f} G |")
    print(f"| training FLOP/s / matmul FLOP/s | {100 * achieved / peak:.2f} % |")


if __name__ == "__main__":
    main()
