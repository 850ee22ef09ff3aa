"""Rejected lines by kind per teacher, summed over the step lines of a results directory.

The open level's step records carry ``accepted`` and ``rejected`` (lines by kind, see
:mod:`distillgym.tasks.checks`); ``examples`` is the budget the step charged (non-empty lines within the
step's limit). This sums them per (teacher label, config hash) over every finished episode, and adds
the teacher's own model costs from the episode records (``teacher_stats``: prompts, tokens, seconds
and CPU seconds of the llm-writer's backend calls).

    python benchmarks/results/open-llm/rejections.py benchmarks/results/open-llm [--out REJECTIONS.md]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from distillgym.harness.results import read_results
from distillgym.tasks.checks import REJECT_KINDS

KINDS = [k for k in REJECT_KINDS if k != "over_limit"] + ["over_limit"]


def table(directory: str) -> str:
    episodes, steps = read_results(directory)
    done = {(e["teacher"], e["seed"], e["config_hash"]) for e in episodes}
    sums: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in steps:
        key = (s["teacher"], s["seed"], s["config_hash"])
        if key not in done or "rejected" not in s:
            continue
        row = sums[(s["teacher"], s["config_hash"])]
        row["charged"] += s.get("examples", 0)
        row["accepted"] += s.get("accepted", 0)
        row["steps"] += 1
        for k, v in s["rejected"].items():
            row[k] += v
    stats: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for e in episodes:
        st = stats[(e["teacher"], e["config_hash"])]
        st["episodes"] += 1
        st["episode_seconds"] += float(e.get("seconds", 0.0))
        for k, v in (e.get("teacher_stats") or {}).items():
            if isinstance(v, (int, float)):
                st["t_" + k] += float(v)
    head = ["teacher", "config", "episodes", "steps", "lines charged", "accepted", "accepted %", *KINDS,
            "LLM prompts", "LLM tokens in", "LLM tokens out", "LLM CPU s / episode", "LLM wall s / episode",
            "wall s / episode"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for (teacher, chash), row in sorted(sums.items()):
        st = stats[(teacher, chash)]
        n = max(st["episodes"], 1)
        charged = row["charged"]
        pct = f"{100 * row['accepted'] / charged:.1f}" if charged else "-"
        cells = [teacher, chash, f"{int(st['episodes'])}", f"{int(row['steps'])}", f"{int(charged)}",
                 f"{int(row['accepted'])}", pct, *[f"{int(row[k])}" for k in KINDS],
                 f"{int(st['t_prompts'])}", f"{int(st['t_tokens_in'])}", f"{int(st['t_tokens_out'])}",
                 f"{st['t_cpu_seconds'] / n:.0f}", f"{st['t_seconds'] / n:.0f}", f"{st['episode_seconds'] / n:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("directory", nargs="?", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args()
    text = table(args.directory)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
