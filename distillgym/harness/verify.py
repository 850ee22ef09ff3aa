"""Re-run recorded episodes of a results directory and compare them with the record (``distillgym verify``).

What "reproducible" means for distillgym: an episode is a function of its configuration (the config
hash), its seed *and its fingerprint* (:mod:`distillgym.harness.fingerprint`: CPU and its instruction set,
library builds, torch threads, device). On the same fingerprint a rerun is **bit-identical**: every
validation accuracy, every action a teacher takes in response, and the final test accuracy. Across
fingerprints float round-off differs (another SIMD path, another reduction order with another thread
count); a greedy decision that depends on an accuracy tie or a close score can then flip, and the
episode drifts from that step on. Results from different machines are **statistically equivalent**,
not equal: compare them with the leaderboard's intervals and tests, never episode by episode, and do
not pool them silently (the runner refuses a resume onto another fingerprint unless told).

:func:`verify` picks ``episodes`` ok episodes of a results file with a fixed seed (so two calls pick
the same ones), re-runs each from its recorded env id, env arguments, teacher name and teacher
arguments, and reports per episode: the recorded and the new final test accuracy, ``exact``
(bit-identical final test accuracy *and* validation curve), the ``drift`` of the final test accuracy
(new minus recorded), the first step whose validation accuracy differs, whether the teacher's
actions were the same, and the fingerprint keys that differ between the recording and this rerun
(lines written before fingerprints existed have none). For lines written with the current hash
recipe it also says whether the configuration still resolves to the recorded config hash (a changed
default makes it differ, and explains a drift that no machine difference would).

An episode that ran in a population of students (a ``population`` field: the ``population``
executor, :mod:`distillgym.harness.population`) is re-run with its whole chunk, the members in their
recorded order, rebuilt from their own lines in the same file; on the same fingerprint it is then
bit-identical. (On a CPU a member's numbers are its single env's whatever its chunk-mates; lines
written before the population grouped members by row length, and runs on a GPU, may depend on them
through the rounding of batched kernels, which is why the whole chunk is re-run.)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_int
from distillgym.harness.fingerprint import HASH_VERSION, REDACTED, config_hash, fingerprint_diff, teacher_identity

__all__ = ["select_episodes", "verify", "render_verify", "machine_keys", "CODE_KEYS"]


def _has_redacted(x: Any) -> bool:
    if isinstance(x, dict):
        return any(_has_redacted(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_has_redacted(v) for v in x)
    return x == REDACTED


def select_episodes(episodes: Sequence[dict[str, Any]], k: int, seed: int = 0) -> list[dict[str, Any]]:
    """``k`` of the ok episodes (all of them when there are fewer), drawn without replacement with
    ``numpy.random.default_rng(seed)``, in file order."""
    ok = [e for e in episodes if e.get("status", "ok") == "ok"]
    if k >= len(ok):
        return list(ok)
    idx = np.sort(np.random.default_rng(seed).choice(len(ok), size=k, replace=False))
    return [ok[i] for i in idx]


def _actions(steps: Sequence[dict[str, Any]]) -> list[str]:
    keys = ("skill", "difficulty", "allocation", "accepted", "examples")
    return [json.dumps([s.get(k) for k in keys]) for s in steps]


def _compare(e: dict[str, Any], result: dict[str, Any], steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from distillgym.harness.results import curve

    rec = float(e["final_test_accuracy"])
    row: dict[str, Any] = {
        "teacher": e["teacher"], "seed": e["seed"], "env": e["env"], "config_hash": e["config_hash"],
        "recorded": rec, "fingerprint_recorded": e.get("fingerprint"),
    }
    if result.get("status", "ok") != "ok":
        row.update(status="failed", error=result.get("error"), now=None, drift=None, exact=False,
                   fingerprint_now=result.get("fingerprint"))
        row["fingerprint_diff"] = fingerprint_diff(e.get("fingerprint"), result.get("fingerprint"))
        return row
    now = float(result["final_test_accuracy"])
    curve_rec = [tuple(p) for p in e.get("curve") or []]
    curve_now = [tuple(p) for p in curve(result)]
    first = None
    for t, (a, b) in enumerate(zip(curve_rec, curve_now, strict=False)):
        if a != b:
            first = t  # 0: the accuracy at reset, t: after step t
            break
    if first is None and len(curve_rec) != len(curve_now):
        first = min(len(curve_rec), len(curve_now))
    mine = [s for s in steps if s.get("teacher") == e["teacher"] and s.get("seed") == e["seed"]
            and s.get("config_hash") == e["config_hash"]]
    row.update(
        status="ok", now=now, drift=now - rec, exact=(now == rec and first is None),
        first_different_step=first, curve_points=len(curve_rec),
        same_actions=(_actions(mine) == _actions(result["steps"])) if mine else None,
        fingerprint_now=result.get("fingerprint"),
        fingerprint_diff=fingerprint_diff(e.get("fingerprint"), result.get("fingerprint")),
    )
    if e.get("config_hash_version") == HASH_VERSION and isinstance(result.get("env_config"), dict):
        try:
            h = config_hash(e["env"], result["env_config"],
                            teacher_identity(e.get("teacher_name", e["teacher"]), e.get("teacher_kwargs") or {}))
        except Exception as err:  # a teacher file that has gone: say so, the rerun itself ran
            row["config_hash_now"], row["config_same"] = f"({type(err).__name__})", False
        else:
            row["config_hash_now"], row["config_same"] = h, h == e["config_hash"]
    else:  # recorded with an older hash recipe (HASH_VERSION's docstring): it cannot be recomputed
        row["config_hash_now"], row["config_same"] = None, None
    row["config_hash_version"] = int(e.get("config_hash_version") or 1)
    return row


def _rerun_chunk(chosen: Sequence[dict[str, Any]], all_eps: Sequence[dict[str, Any]], steps: Sequence[dict[str, Any]],
                 threads: int) -> list[dict[str, Any]]:
    """Rows for ``chosen`` episodes of one population chunk: the whole chunk is re-run in one population
    (:func:`distillgym.harness.population.run_chunk`) from its members' lines in the file, in the
    recorded order; a member whose line is missing makes the rows ``skipped``."""
    from distillgym.harness.benchmark import Job
    from distillgym.harness.population import run_chunk

    members = chosen[0]["population"]["members"]
    lines = {(e["teacher"], e["seed"], e["config_hash"]): e for e in all_eps if e.get("status", "ok") == "ok"}
    mates = [lines.get((m[0], m[1], m[2])) for m in members]
    gone = [m for m, e in zip(members, mates, strict=True) if e is None]
    if gone or any(_has_redacted(e.get("env_kwargs") or {}) or _has_redacted(e.get("teacher_kwargs") or {})
                   for e in mates if e is not None):
        why = (f"chunk-mates {gone} have no ok line in the file" if gone
               else "a chunk-mate's argument was redacted (a credential)")
        return [{"teacher": e["teacher"], "seed": e["seed"], "env": e["env"], "config_hash": e["config_hash"],
                 "recorded": e["final_test_accuracy"], "status": "skipped", "exact": False, "now": None, "drift": None,
                 "error": f"a population episode is re-run with its whole chunk, but {why}"} for e in chosen]
    jobs = [Job(str(e.get("suite", "")), e["env"], dict(e.get("env_kwargs") or {}),
                str(e.get("teacher_name", e["teacher"])), dict(e.get("teacher_kwargs") or {}), e["teacher"],
                int(e["seed"]), e["config_hash"], device=str(e.get("device") or "cpu")) for e in mates]
    results = run_chunk(jobs, threads)
    return [_compare(e, results[int(e["population"]["index"])], steps) for e in chosen]


def verify(
    results: str | os.PathLike[str],
    episodes: int = 10,
    seed: int = 0,
    threads: int | None = None,
    workers: int = 1,
    on_episode: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Re-run ``episodes`` recorded episodes of ``results`` (a directory or results.jsonl) and compare.

    Args:
        results: a results directory or file written by ``distillgym bench``.
        episodes: how many ok episodes to re-run (all when the file has fewer), chosen with ``seed``.
        seed: the seed of the choice (not of the episodes: each re-runs with its recorded seed).
        threads: torch threads per rerun; default the recorded fingerprint's ``torch_threads`` (1, the
            runner's default, for lines without a fingerprint). A different count is a different
            fingerprint: use it to measure drift across thread counts.
        workers: parallel reruns (processes, one per episode at a time).
        on_episode: called with each row as its rerun finishes.

    Returns ``{"results", "chosen", "of", "seed", "threads", "rows", "summary"}``; each row as the
    module docstring says (keys ``teacher``, ``seed``, ``recorded``, ``now``, ``drift``, ``exact``,
    ``first_different_step``, ``same_actions``, ``fingerprint_recorded``, ``fingerprint_now``,
    ``fingerprint_diff``, ``config_same``, ``status``); ``summary``: ``n``, ``exact``, ``drifted``,
    ``failed``, ``skipped``, ``mean_abs_drift``, ``max_abs_drift``, ``mean_drift`` (over the drifted
    and exact reruns; nan when none), ``fingerprints_differ`` (reruns whose fingerprint differs
    from the recording's) and ``other_machine`` (those whose fingerprint differs in more than the code:
    :func:`machine_keys`; their drift says nothing about the code)."""
    from distillgym.harness.benchmark import Job
    from distillgym.harness.executors import run_local
    from distillgym.harness.results import read_results

    check_int("verify", "episodes", episodes, 1)
    check_int("verify", "workers", workers, 1)
    if threads is not None:
        check_int("verify", "threads", threads, 1)
    all_eps, steps = read_results(results)
    chosen = select_episodes(all_eps, episodes, seed)
    if not chosen:
        raise ConfigError(f"no ok episodes to verify in {results}")
    rows: list[dict[str, Any]] = []
    jobs: dict[int, tuple[Job, dict[str, Any]]] = {}
    by_threads: dict[int, list[Job]] = {}
    chunks: dict[tuple[Any, int], list[int]] = {}
    for i, e in enumerate(chosen):
        env_kwargs, teacher_kwargs = e.get("env_kwargs") or {}, e.get("teacher_kwargs") or {}
        if _has_redacted(env_kwargs) or _has_redacted(teacher_kwargs):
            rows.append({"teacher": e["teacher"], "seed": e["seed"], "env": e["env"], "config_hash": e["config_hash"],
                         "recorded": e["final_test_accuracy"], "status": "skipped", "exact": False, "now": None,
                         "drift": None, "error": "an argument was redacted (a credential): it cannot be re-run",
                         "_i": i})
            continue
        fp = e.get("fingerprint") if isinstance(e.get("fingerprint"), dict) else {}
        n_threads = int(threads if threads is not None else fp.get("torch_threads") or 1)
        pop = e.get("population")
        if isinstance(pop, dict) and pop.get("members"):  # re-run its whole chunk (see the module docstring)
            chunks.setdefault((pop.get("chunk"), n_threads), []).append(i)
            continue
        job = Job(str(e.get("suite", "")), e["env"], dict(env_kwargs), str(e.get("teacher_name", e["teacher"])),
                  dict(teacher_kwargs), e["teacher"], int(e["seed"]), e["config_hash"])
        job.label = f"{e['teacher']}#{i}"  # unique per chosen episode (the runner yields jobs back)
        jobs[i] = (job, e)
        by_threads.setdefault(n_threads, []).append(job)
    index = {job.label: i for i, (job, _) in jobs.items()}
    for n_threads, batch in by_threads.items():
        for job, result in run_local(batch, workers, n_threads):
            i = index[job.label]
            row = _compare(jobs[i][1], result, steps)
            row["threads"], row["_i"] = n_threads, i
            rows.append(row)
            if on_episode:
                on_episode(row)
    for (_, n_threads), which in chunks.items():
        for i, row in zip(which, _rerun_chunk([chosen[i] for i in which], all_eps, steps, n_threads), strict=True):
            row["threads"], row["_i"] = n_threads, i
            rows.append(row)
            if on_episode:
                on_episode(row)
    rows.sort(key=lambda r: r["_i"])  # the chosen order, whatever order the reruns finished in
    for r in rows:
        del r["_i"]
    ran = [r for r in rows if r["status"] == "ok"]
    drifts = [abs(r["drift"]) for r in ran]
    summary = {
        "n": len(rows),
        "exact": sum(1 for r in ran if r["exact"]),
        "drifted": sum(1 for r in ran if not r["exact"]),
        "final_accuracy_equal": sum(1 for r in ran if r["drift"] == 0),
        "failed": sum(1 for r in rows if r["status"] == "failed"),
        "skipped": sum(1 for r in rows if r["status"] == "skipped"),
        "mean_abs_drift": float(np.mean(drifts)) if drifts else math.nan,
        "max_abs_drift": float(np.max(drifts)) if drifts else math.nan,
        "mean_drift": float(np.mean([r["drift"] for r in ran])) if ran else math.nan,
        "fingerprints_differ": sum(1 for r in ran if r.get("fingerprint_diff")),
        "other_machine": sum(1 for r in ran if machine_keys(r.get("fingerprint_diff"))),
    }
    return {"results": str(results), "chosen": len(chosen), "of": sum(1 for e in all_eps if e.get("status", "ok") == "ok"),
            "seed": seed, "threads": threads, "rows": rows, "summary": summary}


CODE_KEYS = ("distillgym", "git_commit", "git_dirty")
"""Fingerprint keys that name the code, not the machine: what ``verify`` is there to check."""


def machine_keys(diff: Any) -> list[str]:
    """The keys of a fingerprint difference that name the machine or the library builds (CPU model and
    flags, torch and other versions, threads, device): everything but :data:`CODE_KEYS`. Bit-identity is
    promised only where these are equal; across CPU models floating-point results drift."""
    return [k for k in (diff or {}) if k not in CODE_KEYS]


def _v(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4f}"
    return str(x)


def render_verify(report: dict[str, Any]) -> str:
    """The report of :func:`verify` as markdown: one line per episode, a summary, and the recorded
    and rerun fingerprints side by side (one table per distinct pair)."""
    s = report["summary"]
    out = [f"verify {report['results']}: {report['chosen']} of {report['of']} ok episodes (chosen with seed "
           f"{report['seed']})", ""]
    out.append("| teacher | seed | threads | recorded | rerun | drift | exact | first different step | same actions | "
               "config hash still | fingerprint differs in |")
    out.append("|---|---:|---:|---:|---:|---:|---|---:|---|---|---|")
    for r in report["rows"]:
        if r["status"] != "ok":
            out.append(f"| {r['teacher']} | {r['seed']} | {r.get('threads', '-')} | {_v(r['recorded'])} | "
                       f"{r['status'].upper()} | - | no | - | - | - | {r.get('error') or ''} |")
            continue
        drift = "0" if r["drift"] == 0 else f"{r['drift']:+.4f}"
        same = {True: "yes", False: "no", None: "-"}
        diff = ", ".join(r["fingerprint_diff"]) or "-"
        out.append(
            f"| {r['teacher']} | {r['seed']} | {r['threads']} | {_v(r['recorded'])} | {_v(r['now'])} | {drift} | "
            f"{'yes' if r['exact'] else 'no'} | {_v(r['first_different_step'])} | {same[r['same_actions']]} | "
            f"{same[r['config_same']]} | {diff} |"
        )
    out.append("")
    drifted = s["drifted"]
    line = f"{s['exact']} of {s['n']} bit-identical (final test accuracy and validation curve)"
    if drifted:
        line += (f"; {drifted} drifted: final test accuracy equal in {s['final_accuracy_equal'] - s['exact']} of them, "
                 f"mean |drift| {s['mean_abs_drift']:.4f} over all {s['exact'] + drifted} reruns, max |drift| "
                 f"{s['max_abs_drift']:.4f}, mean drift {s['mean_drift']:+.4f}")
    if s["failed"] or s["skipped"]:
        line += f"; {s['failed']} failed, {s['skipped']} skipped"
    out.append(line + ".")
    other = sorted({k for r in report["rows"] if r["status"] == "ok" for k in machine_keys(r.get("fingerprint_diff"))})
    if other:
        out.append(f"({s.get('other_machine', 0)} rerun(s) ran on another machine or library build than recorded "
                   f"(the fingerprints differ in {', '.join(other)}): bit-identity is promised only where those are "
                   "equal, and across CPU models a drift of this kind is expected; to check bit-identity, re-run on "
                   "a machine with the recorded fingerprint (table below).)")
    old = sorted({r["config_hash_version"] for r in report["rows"]
                  if r.get("config_hash_version", HASH_VERSION) != HASH_VERSION})
    if old:
        n_old = sum(1 for r in report["rows"] if r.get("config_hash_version", HASH_VERSION) != HASH_VERSION)
        out.append(f"({n_old} episode(s) were recorded with config-hash recipe {', '.join(map(str, old))}; this "
                   f"distillgym hashes with recipe {HASH_VERSION}, so 'config hash still' cannot be checked for them "
                   "(-); the rerun itself is compared as usual.)")
    out.append("")
    pairs: dict[str, tuple[Any, Any, int]] = {}
    for r in report["rows"]:
        if r["status"] == "skipped":
            continue
        key = json.dumps([r.get("fingerprint_recorded"), r.get("fingerprint_now")], sort_keys=True, default=str)
        a, b, n = pairs.get(key, (r.get("fingerprint_recorded"), r.get("fingerprint_now"), 0))
        pairs[key] = (a, b, n + 1)
    for a, b, n in pairs.values():
        out.append(f"Fingerprints ({n} episode(s)): recorded | rerun")
        out.append("")
        out.append("| key | recorded | rerun |")
        out.append("|---|---|---|")
        keys = sorted(set(a or {}) | set(b or {}))
        for k in keys:
            va = "(not recorded)" if a is None else _v((a or {}).get(k))
            vb = _v((b or {}).get(k))
            mark = "" if a is not None and va == vb else " ≠"
            out.append(f"| {k}{mark} | {va} | {vb} |")
        out.append("")
    return "\n".join(out)
