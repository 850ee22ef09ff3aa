"""How good is the pretrained LoRA student at the start, how much does a uniform episode teach
it, and how fast is it on this machine?

Three parts, each optional (``--parts``):

- ``formats``: the pretrained student's starting accuracy per cell under each prompt format
  (``fewshot`` with shots of each level in ``--shot-levels``, ``plain``, ``chat``; see
  distillgym/students/lora.py) on ``--format-items``
  validation items of the cells at levels ``--format-levels`` of every skill (greedy answers
  cut at EOS or newline, scored by the suite's rule). This is what chose the default format.
- ``episode``: a uniform episode run by hand, without the environment core: ``--steps`` steps,
  each asking the procedural engine for ``--examples-per-step`` train-part examples spread
  evenly over the 28 cells (``n // 28`` per cell, the remainder to the first cells in a
  seeded shuffled order), one ``student.train`` call, then the accuracy on a fixed validation
  set of ``--n-val-per-cell`` items per cell. Printed: accuracy per cell at the start and the
  end, the gain, and per step the time of each phase, training tokens/s and the process's
  resident memory before the step and its peak during the step (Linux ``VmHWM``, reset before
  each step; elsewhere the peak over the process's life).
- ``speed`` (inside ``episode``): model FLOP utilisation, the student's training FLOPs
  (``TrainStats.flops``, see ``LoRAStudent.flops_per_token``) per train second against the
  FLOP/s of a ``--matmul-size`` float32 matmul timed in the same process with the same
  thread count.

Run (results in benchmarks/README.md; the machine's other jobs change the times):
    python benchmarks/lora_student.py --threads 1 --parts formats --shot-levels 0,1,2,3
    python benchmarks/lora_student.py --threads 1 --parts episode --steps 4 --json --out lora.json
"""

from __future__ import annotations

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
    parts: str = "formats,episode"
    """Comma-separated parts to run: formats, episode."""
    model: str = "smollm2"
    """The student's base model (a named model or a local directory)."""
    suite: str = "arith-v1"
    """Task suite."""
    prompt_format: str = "fewshot"
    """Prompt format of the episode's student."""
    mode: str = "continue"
    """Transition mode of the episode's student: continue or retrain."""
    lr: float = 1e-3
    """LoRA learning rate of the episode's student."""
    rank: int = 8
    """LoRA rank of the episode's student."""
    batch_size: int = 16
    """Examples per optimiser step."""
    steps: int = 4
    """Episode steps (one train call each)."""
    examples_per_step: int = 112
    """Training examples per step, spread evenly over the cells."""
    n_val_per_cell: int = 8
    """Validation items per cell for the episode's accuracy."""
    format_items: int = 16
    """Validation items per cell in the formats part."""
    format_levels: str = "0,2"
    """Levels (comma-separated) of every skill scored in the formats part."""
    shot_levels: str = "1"
    """Few-shot example levels (comma-separated) compared in the formats part."""
    seed: int = 0
    """Seed of the data, the validation set and the adapter."""
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


def matmul_flops(n: int, reps: int = 5) -> float:
    """Best FLOP/s of an n x n float32 matmul (after one warm-up)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


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
    variants = [(f"fewshot-{lv}", "fewshot", int(lv)) for lv in args.shot_levels.split(",")]
    for label, fmt, lv in [*variants, ("plain", "plain", 1), ("chat", "chat", 1)]:
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


def run_episode(args: Args, suite: Any) -> dict[str, Any]:
    import numpy as np

    from distillgym.engines import ProceduralEngine
    from distillgym.seeding import STREAM_EPISODE, STREAM_TRAIN, rng_for
    from distillgym.students import make_student
    from distillgym.types import PlanItem

    t0 = time.perf_counter()
    st = make_student("lora", suite, model=args.model, device="cpu", prompt_format=args.prompt_format,
                      mode=args.mode, lr=args.lr, rank=args.rank, batch_size=args.batch_size, seed=args.seed)
    load_s = time.perf_counter() - t0
    cells = suite.cells
    val = validation_set(suite, args.seed, args.n_val_per_cell, cells)
    engine = ProceduralEngine(suite)
    t0 = time.perf_counter()
    start = cell_accuracy(st, suite, val)
    eval0_s = time.perf_counter() - t0
    peak_flops = matmul_flops(args.matmul_size)
    steps = []
    acc = start
    for k in range(args.steps):
        base, extra = divmod(args.examples_per_step, len(cells))
        order = rng_for(args.seed, STREAM_EPISODE, k).permutation(len(cells))
        n = np.full(len(cells), base)
        n[order[:extra]] += 1
        plan = [PlanItem(s, d, int(c)) for (s, d), c in zip(cells, n, strict=True) if c]
        rss_before = rss_mib()
        peak_reset = reset_peak_rss()
        t0 = time.perf_counter()
        examples, _ = engine.generate(plan, rng_for(args.seed, STREAM_TRAIN, k), split="train")
        gen_s = time.perf_counter() - t0
        stats = st.train(examples, rng_for(args.seed, STREAM_TRAIN, k, 1))
        t0 = time.perf_counter()
        acc = cell_accuracy(st, suite, val)
        eval_s = time.perf_counter() - t0
        step = {
            "step": k + 1,
            "examples": stats.examples,
            "tokens": stats.tokens,
            "optimizer_steps": stats.optimizer_steps,
            "loss": stats.loss,
            "generate_s": gen_s,
            "train_s": stats.seconds,
            "evaluate_s": eval_s,
            "step_s": gen_s + stats.seconds + eval_s,
            "tokens_per_s": stats.tokens / stats.seconds,
            "train_flops_per_s": stats.flops / stats.seconds,
            "mfu": stats.flops / stats.seconds / peak_flops,
            "mean_accuracy": sum(acc.values()) / len(acc),
            "rss_before_mib": rss_before,
            "peak_rss_mib": peak_rss_mib(),
            "peak_is_of_the_step": peak_reset,
        }
        steps.append(step)
        if not args.json:
            print(f"step {k + 1}: loss {stats.loss:.3f}, mean acc {step['mean_accuracy']:.3f}, "
                  f"{step['step_s']:.0f} s (train {stats.seconds:.0f}, eval {eval_s:.0f}), "
                  f"{step['tokens_per_s']:.0f} tok/s, MFU {step['mfu']:.2f}, RSS {rss_before:.0f} MiB before, "
                  f"peak {step['peak_rss_mib']:.0f} MiB during the step",
                  flush=True)
    result = {
        "load_s": load_s,
        "first_eval_s": eval0_s,
        "matmul_flops_per_s": peak_flops,
        "costs": st.costs(),
        "start_accuracy": {f"{s} L{d}": v for (s, d), v in start.items()},
        "end_accuracy": {f"{s} L{d}": v for (s, d), v in acc.items()},
        "start_mean": sum(start.values()) / len(start),
        "end_mean": sum(acc.values()) / len(acc),
        "steps": steps,
    }
    if not args.json:
        levels = list(range(suite.n_difficulties))
        gain = {c: acc[c] - start[c] for c in start}
        print(f"\n## uniform episode: {args.steps} steps x {args.examples_per_step} examples, "
              f"{args.n_val_per_cell} validation items per cell\n")
        print(table(suite, {"start": start, "end": acc, "gain": gain}, levels))
        print(f"\nload {load_s:.0f} s, first evaluation {eval0_s:.0f} s, matmul peak {peak_flops / 1e9:.1f} GFLOP/s, "
              f"costs {st.costs()}")
    return result


def main() -> None:
    args = parse_dataclass_args(Args, __doc__.split("\n\n")[0])
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from distillgym.tasks import make_suite

    suite = make_suite(args.suite)
    t0 = time.perf_counter()
    result: dict[str, Any] = {"args": asdict(args), "torch": torch.__version__, "threads": args.threads,
                              "cpus": os.cpu_count(), "python": platform.python_version(),
                              "load_average_at_start": os.getloadavg()}
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - {"formats", "episode"})
    if unknown:
        sys.exit(f"unknown part(s) {unknown}; use formats and/or episode")
    if "formats" in parts:
        result["formats"] = run_formats(args, suite)
    if "episode" in parts:
        result["episode"] = run_episode(args, suite)
    result["wall_s"] = time.perf_counter() - t0
    result["load_average_at_end"] = os.getloadavg()
    if not emit_json(result, args.out, args.json):
        print(f"\nwall {result['wall_s']:.0f} s, load average {result['load_average_at_start']} -> "
              f"{result['load_average_at_end']} on {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{args.threads} thread(s)")


if __name__ == "__main__":
    main()
