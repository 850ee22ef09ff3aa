"""What does a real language model's training data cost and give, against the procedural engine?

Three parts, each optional (``--parts``):

- ``yield``: for each strategy of the LLM engine (new-question, answer, rephrase) and each
  skill x level cell of ``--suite``, ``--gens`` generations by ``--model`` (SmolLM2 by default):
  the verified fraction (generations that became examples), the answer accuracy (right over
  right + wrong, the engine's reference), the rejections by kind, model tokens in and out per
  verified example, and seconds per generation;
- ``episodes``: the student's final test accuracy under ``--teachers`` (default uniform and
  IOA) with the LLM engine (``distillgym/ArithSkills-LLMData-v1``: answer strategy, calibrated
  reference) against the procedural engine (``distillgym/ArithSkills-v1``) at the same budget
  and step size, for ``--seeds`` seeds; with the mean and its 95% bootstrap interval;
- ``teacher``: the LLM teacher's ``choose`` decision on a real teacher prompt (a reset report
  of ``ArithSkills-v1``), seconds per decision with and without sharing the prompt's key-value
  cache across the 28 options, and the largest score difference between the two.

Everything runs on CPU with one torch thread. Run (the machine's load changes every figure; say
how loaded it was next to any time you report):
    python benchmarks/llm_engine.py --out benchmarks/results/llm_engine.json
    python benchmarks/llm_engine.py --parts yield --gens 8 --strategies answer
    python benchmarks/llm_engine.py --parts episodes --seeds 3 --budget 1536
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from _args import emit_json, parse_dataclass_args  # benchmarks/_args.py, beside this script

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Args:
    parts: str = "yield,episodes,teacher"
    """Comma-separated parts to run: yield, episodes, teacher."""
    model: str = "smollm2"
    """Model of the LLM engine and teacher (a named model or a directory)."""
    suite: str = "arith-v1"
    """Task suite of the yield part."""
    strategies: str = "new-question,answer,rephrase"
    """Strategies of the yield part."""
    gens: int = 16
    """Generations per cell and strategy in the yield part."""
    seeds: int = 3
    """Episodes per (teacher, engine) in the episodes part (seeds 0..seeds-1)."""
    teachers: str = "uniform,ioa"
    """Teachers of the episodes part."""
    budget: int = 1536
    """Budget (generations for the LLM engine, examples for the procedural one) per episode."""
    examples_per_step: int = 128
    """Step size of both engines in the episodes part."""
    repeats: int = 2
    """Timed decisions per setting in the teacher part."""
    threads: int = 1
    """torch threads."""
    json: bool = False
    """Print the results as JSON instead of tables."""
    out: str = ""
    """Also write the JSON results to this file."""


def run_yield(args: Args) -> dict[str, Any]:
    from distillgym.engines.llm_engine import LLMEngine
    from distillgym.seeding import rng_for
    from distillgym.tasks import make_suite
    from distillgym.types import PlanItem

    suite = make_suite(args.suite)
    out: dict[str, Any] = {}
    for strategy in [s for s in args.strategies.split(",") if s]:
        engine = LLMEngine(suite, model=args.model, strategy=strategy, reference="running",
                           backend_kwargs={"device": "cpu"})
        rows = []
        for i, skill in enumerate(suite.skills):
            for d in range(suite.n_difficulties):
                ex, cost = engine.generate([PlanItem(skill, d, args.gens)], rng_for(0, 77, i, d))
                c = engine.tally[(skill, d)]
                judged = c["ok"] + c["duplicate"] + c["off_cell"] + c["wrong"]
                rows.append({
                    "skill": skill, "level": d, "generations": cost.calls, "verified": cost.examples,
                    "verified_fraction": cost.examples / cost.calls,
                    "answer_accuracy": (judged - c["wrong"]) / judged if judged else None,
                    "rejected_by_kind": dict(cost.rejected_by_kind),
                    "tokens_in_per_verified": cost.tokens_in / cost.examples if cost.examples else None,
                    "tokens_out_per_verified": cost.tokens_out / cost.examples if cost.examples else None,
                    "seconds_per_generation": cost.seconds / cost.calls,
                })
                print(f"  {strategy:<12} {skill:<9} L{d}: {cost.examples:3d}/{cost.calls} verified "
                      f"({cost.seconds:.1f} s)", file=sys.stderr, flush=True)
        total = sum(r["generations"] for r in rows)
        verified = sum(r["verified"] for r in rows)
        tok_in = sum((r["tokens_in_per_verified"] or 0) * r["verified"] for r in rows)
        out[strategy] = {
            "cells": rows,
            "verified_fraction": verified / total,
            "tokens_in_per_verified": tok_in / verified if verified else None,
            "seconds_per_generation": sum(r["seconds_per_generation"] * r["generations"] for r in rows) / total,
            "running_reference": dict(zip(suite.skills, engine.running_accuracy().round(3).tolist(), strict=True)),
        }
    return out


def run_episodes(args: Args) -> dict[str, Any]:
    import numpy as np

    from distillgym.envs import LLM_ENV_ID, register_llm_env
    from distillgym.harness.runner import run_episode
    from distillgym.harness.stats import bootstrap_ci

    register_llm_env()
    kw = dict(budget=args.budget, examples_per_step=args.examples_per_step, device="cpu")
    envs = {
        "llm": (LLM_ENV_ID, dict(kw, engine_kwargs={"model": args.model, "strategy": "answer",
                                                     "backend_kwargs": {"device": "cpu"}})),
        "procedural": ("distillgym/ArithSkills-v1", kw),
    }
    out: dict[str, Any] = {}
    for teacher in [t for t in args.teachers.split(",") if t]:
        for name, (env_id, env_kwargs) in envs.items():
            runs = []
            for seed in range(args.seeds):
                t0 = time.perf_counter()
                r = run_episode(env_id, teacher, seed=seed, env_kwargs=env_kwargs)
                runs.append({"seed": seed, "test_accuracy": r["final_test_accuracy"], "examples": r["costs"]["examples"],
                             "charged": r["costs"]["charged"], "engine_calls": r["costs"]["engine_calls"],
                             "engine_tokens_in": r["costs"]["engine_tokens_in"],
                             "engine_tokens_out": r["costs"]["engine_tokens_out"],
                             "seconds": time.perf_counter() - t0})
                print(f"  {teacher:<8} {name:<10} seed {seed}: test {r['final_test_accuracy']:.3f}, "
                      f"{runs[-1]['examples']} examples trained, {runs[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
            acc = np.array([x["test_accuracy"] for x in runs])
            lo, hi = bootstrap_ci(acc) if len(acc) > 1 else (float("nan"), float("nan"))
            out[f"{teacher}/{name}"] = {"env": env_id, "mean": float(acc.mean()), "ci95": [lo, hi], "runs": runs}
    return out


def run_teacher(args: Args) -> dict[str, Any]:
    import gymnasium as gym

    import distillgym  # noqa: F401
    from distillgym.llm import make_backend
    from distillgym.teachers.llm_teacher import LLMTeacher

    env = gym.make("distillgym/ArithSkills-v1", device="cpu")
    obs, info = env.reset(seed=0)
    backend = make_backend("transformers", model=args.model, device="cpu")
    teacher = LLMTeacher(backend=backend, mode="choose")
    teacher.reset(env.action_space, info, seed=0)
    prompt, options = teacher.build_prompt(obs, info), teacher.options()
    out: dict[str, Any] = {"prompt_tokens": len(backend.tokenizer(prompt)["input_ids"]), "options": len(options)}
    scores = {}
    for share in (True, False):
        backend.share_prefix = share
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            idx, scores[share] = backend.choose(prompt, options)
            times.append(time.perf_counter() - t0)
        out["shared" if share else "whole"] = {"seconds_per_decision": min(times), "all": times, "choice": options[idx]}
    out["max_abs_score_difference"] = max(abs(a - b) for a, b in zip(scores[True], scores[False], strict=True))
    env.close()
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_dataclass_args(Args, __doc__.split("\n\n")[0], argv)
    import torch

    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"args": asdict(args), "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                                 "torch": torch.__version__, "load_start": os.getloadavg()}}
    parts = {"yield": run_yield, "episodes": run_episodes, "teacher": run_teacher}
    for part in [p for p in args.parts.split(",") if p]:
        t0 = time.perf_counter()
        result[part] = parts[part](args)
        result[part + "_seconds"] = time.perf_counter() - t0
        emit_json(result, args.out, False)  # keep what is done if a later part is interrupted
    result["machine"]["load_end"] = os.getloadavg()
    if emit_json(result, args.out, args.json):
        return 0
    for strategy, r in result.get("yield", {}).items():
        print(f"\n{strategy}: verified {r['verified_fraction']:.3f} of generations, "
              f"{r['seconds_per_generation']:.3f} s per generation")
        print(f"{'skill':<10}" + "".join(f"  L{d} ver/acc " for d in range(4)))
        cells = {(c["skill"], c["level"]): c for c in r["cells"]}
        for skill in dict.fromkeys(c["skill"] for c in r["cells"]):
            line = f"{skill:<10}"
            for d in range(4):
                c = cells.get((skill, d))
                acc = "  -  " if c is None or c["answer_accuracy"] is None else f"{c['answer_accuracy']:.2f}"
                line += "" if c is None else f"  {c['verified_fraction']:.2f}/{acc}  "
            print(line)
    for key, r in result.get("episodes", {}).items():
        print(f"{key:<22} test accuracy {r['mean']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]")
    if "teacher" in result:
        t = result["teacher"]
        print(f"choose on a {t['prompt_tokens']}-token prompt, {t['options']} options: shared prefix "
              f"{t['shared']['seconds_per_decision']:.1f} s, whole sequences {t['whole']['seconds_per_decision']:.1f} s, "
              f"largest score difference {t['max_abs_score_difference']:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
