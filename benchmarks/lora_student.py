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

Run (results in benchmarks/README.md; the machine's other jobs change the wall times):
    python benchmarks/lora_student.py --threads 1 --parts formats --shot-levels 0,1,2,3
    python benchmarks/lora_student.py --threads 1 --parts formats --formats fewshot --format-levels 0,1,2,3
    python benchmarks/lora_student.py --threads 1 --parts env --json --out lora-env.json
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
    unknown = sorted(set(parts) - {"formats", "env"})
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; use formats and/or env")
    if "formats" in parts:
        result["formats"] = run_formats(args, make_suite(args.suite))
    if "env" in parts:
        result["env"] = run_env(args)
    result["wall_s"] = time.perf_counter() - t0
    result["load_average_at_end"] = os.getloadavg()
    if not emit_json(result, args.out, args.json):
        print(f"\nwall {result['wall_s']:.0f} s, load average {result['load_average_at_start']} -> "
              f"{result['load_average_at_end']} on {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{args.threads} thread(s)")


if __name__ == "__main__":
    main()
