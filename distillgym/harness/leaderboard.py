"""Leaderboard: per env and configuration, the statistics a reproducible comparison needs.

Episodes are grouped by ``(env, config_hash)`` and teacher label: one row per teacher configuration
(``label``; ``teacher`` is the display name, the label followed by ``[HASH8]`` when the label has
several config hashes in one env, so they show as separate rows). Episodes
whose ``status`` is ``"failed"`` (or anything but ``"ok"``; lines without a status are ok) are left
out of every statistic and counted in ``failed``. A row whose episodes carry ``reference_row: true``
(the ``oracle-lookahead`` reference teacher) is shown, marked as a reference, and excluded from the
ranking and from the Holm family; so is the best policy of a headroom search, whose confirmation
episodes :func:`distillgym.harness.headroom.headroom_episodes` adds as ``headroom: <policy>``
(``distillgym leaderboard DIR --headroom OUT``; its seeds are not the benchmark's, so it has no paired
tests).

Row fields (per group, over its ok episodes):

- ``mean``, ``ci_low``, ``ci_high``: mean final test accuracy and its 95% percentile-bootstrap
  interval (10,000 resamples, fixed seed, so the table is reproducible: :func:`stats.bootstrap_ci`);
- ``iqm``: interquartile mean, the mean of the middle 50% with fractional boundary weights
  (:func:`stats.iqm`, which documents how it differs from rliable's trimmed mean);
- ``auc``: mean area under the validation learning curve (accuracy vs. fraction of the budget spent,
  trapezoid rule, so 1.0 is perfect from the first example);
- ``examples_to_X`` (X = ``threshold``, default 0.25): Kaplan-Meier median of the examples spent until
  mean validation accuracy first reaches X, an episode that never does being right-censored at its
  total examples (:func:`stats.km_median`); nan when fewer than half reach it; ``reached`` is the
  fraction that did and ``examples_max`` the largest total examples (the median is beyond it when nan);
- ``retained``: the mean over episodes of final test accuracy / the reference's test accuracy on the
  same test set (``reference_test_accuracy``; per-episode ratios, not a ratio of means; episodes
  without a positive reference are left out);
- paired comparisons against the baseline (default ``uniform``) on the seeds both have, since all
  teachers of a benchmark share seeds: ``paired_n_vs_B`` pairs, ``paired_diff_vs_B`` mean difference,
  ``paired_t_p_vs_B`` (Student's paired t) and ``wilcoxon_p_vs_B`` (Wilcoxon signed-rank), each with
  its Holm-adjusted value ``paired_t_holm_vs_B`` / ``wilcoxon_holm_vs_B`` (Holm over the non-reference,
  non-baseline rows of the env: one family per env and test);
- ``t_vs_B``, ``p_vs_B``: Welch's *unpaired* t-test against the baseline (the field names of the
  earlier leaderboard, whose only test this was; it ignores the pairing and is kept for comparisons
  with results from other seeds);
- ``failed``, ``invalid_actions`` (sum over episodes: the LLM teacher's invalid replies), ``seconds`` and
  ``examples`` (means per episode), ``seconds_per_decision`` (mean of the teacher's own
  ``teacher_stats["seconds_per_decision"]``, the wall time of its model calls per decision; nan for
  teachers that keep none);
- costs, means per episode: ``teacher_tokens``, ``engine_tokens`` (each input + output),
  ``model_tokens`` (their sum, the budget of :func:`at_budget`), ``teacher_calls``, ``engine_calls``,
  ``student_tokens``, ``student_flops``; from the episode's ``costs`` record, or for lines written
  before it existed: teacher tokens from ``teacher_stats`` (where the LLM teacher counted them, 0 for
  other teachers), engine tokens 0 (only the procedural engine existed), student costs unknown (nan);
- ``fingerprints``: distinct episode fingerprints (software versions, device, cpu, threads; episodes
  without one count as one more kind when others have one); when > 1, ``fingerprint_diff`` maps each
  differing fingerprint key to ``{value: episodes}`` and the markdown marks the row.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean
from distillgym.harness.stats import bootstrap_ci, holm, iqm, km_median, paired_test, seed_order, welch

__all__ = [
    "FORMATS",
    "COST_KEYS",
    "leaderboard",
    "groups",
    "bootstrap_ci",
    "iqm",
    "curve_auc",
    "examples_to",
    "episode_costs",
    "at_budget",
    "budget_frontier",
    "render",
]

FORMATS = ("md", "csv", "json")
COST_KEYS = (
    "teacher_tokens_in", "teacher_tokens_out", "teacher_calls", "engine_tokens_in", "engine_tokens_out",
    "engine_calls", "student_tokens", "student_flops", "examples",
)
_NAN = float("nan")
_MISSING = "(none)"  # how an episode without a fingerprint shows in a fingerprint footnote


def curve_auc(curve: Sequence[Sequence[float]]) -> float:
    """Area under (examples, accuracy) points, examples normalised by the last point."""
    pts = np.asarray(curve, dtype=float)
    if len(pts) < 2 or pts[-1, 0] <= 0:
        return float("nan")
    x = pts[:, 0] / pts[-1, 0]
    return float(np.sum((x[1:] - x[:-1]) * (pts[1:, 1] + pts[:-1, 1]) / 2))


def examples_to(curve: Sequence[Sequence[float]], threshold: float) -> float:
    """Examples spent when validation accuracy first reaches ``threshold`` (nan if never)."""
    for examples, acc in curve:
        if acc >= threshold:
            return float(examples)
    return float("nan")


def _num(x: Any) -> float:
    """``x`` as a float, nan for anything that is not a number (None, a missing field)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return _NAN
    return float(x)


def episode_costs(e: dict[str, Any]) -> dict[str, float]:
    """The episode's costs, one float per :data:`COST_KEYS` entry (nan where unknown).

    From ``e["costs"]`` when the line has it; for lines written before that field existed:
    teacher tokens and calls from ``teacher_stats`` (``tokens_in``, ``tokens_out``, ``prompts``: the
    LLM teacher's counters; 0 for teachers that kept none, which made no model calls), engine tokens
    and calls 0 (those runs had only the procedural engine), student tokens and FLOPs nan, examples
    from ``e["examples"]``."""
    costs = e.get("costs")
    if isinstance(costs, dict):
        return {k: _num(costs.get(k)) for k in COST_KEYS}
    ts = e.get("teacher_stats") or {}
    return {
        "teacher_tokens_in": _num(ts.get("tokens_in", 0)),
        "teacher_tokens_out": _num(ts.get("tokens_out", 0)),
        "teacher_calls": _num(ts.get("prompts", 0)),
        "engine_tokens_in": 0.0,
        "engine_tokens_out": 0.0,
        "engine_calls": 0.0,
        "student_tokens": _NAN,
        "student_flops": _NAN,
        "examples": _num(e.get("examples")),
    }


def _ok(e: dict[str, Any]) -> bool:
    return e.get("status", "ok") == "ok"


def _fingerprint_key(e: dict[str, Any]) -> str:
    fp = e.get("fingerprint")
    return json.dumps(fp, sort_keys=True, default=str) if isinstance(fp, dict) else ""


def _fp_value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)


def _fingerprint_diff(eps: Sequence[dict[str, Any]]) -> tuple[int, dict[str, dict[str, int]]]:
    """Number of distinct fingerprints and, per key whose values differ, ``{value: episodes}``."""
    kinds = {_fingerprint_key(e) for e in eps}
    if len(kinds) <= 1 or kinds == {""}:
        return (1 if eps else 0), {}
    fps = [e.get("fingerprint") if isinstance(e.get("fingerprint"), dict) else None for e in eps]
    keys = sorted({k for fp in fps if fp for k in fp})
    diff: dict[str, dict[str, int]] = {}
    for k in keys:
        vals = [_MISSING if fp is None else _fp_value(fp.get(k)) for fp in fps]
        if len(set(vals)) > 1:
            diff[k] = {v: vals.count(v) for v in dict.fromkeys(vals)}
    if not diff and None in fps:  # differ only by having a fingerprint at all
        diff["fingerprint"] = {_MISSING: fps.count(None), "(recorded)": len(fps) - fps.count(None)}
    return len(kinds), diff


def _time_to(e: dict[str, Any], threshold: float) -> tuple[float, bool] | None:
    """(examples until the threshold, True) or (total examples, False: censored); None without a curve."""
    curve = e.get("curve") or []
    if not curve:
        return None
    t = examples_to(curve, threshold)
    if not math.isnan(t):
        return t, True
    total = _num(e.get("examples"))
    return (total if not math.isnan(total) else float(curve[-1][0])), False


def _mean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if not math.isnan(x)]
    return float(np.mean(xs)) if xs else _NAN


def _split_baseline(baseline: str) -> tuple[str, str]:
    label, _, prefix = baseline.partition("@")
    return label, prefix


def groups(episodes: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[str, list[dict[str, Any]]]]:
    """Episodes by ``(env, config_hash, teacher label)``, each with its display name: the label,
    followed by ``[HASH8]`` when the label has several configurations in the same env. Every episode
    is kept (failed ones too). (The label is part of the key as it is of the results file's episode
    key: two labels of one configuration stay two rows, as the benchmark listed them.)"""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for e in episodes:
        for k in ("env", "teacher", "seed"):
            if k not in e:
                raise ConfigError(f"leaderboard: an episode record lacks {k!r} (keys: {sorted(e)}); "
                                  "pass the episodes read_results() returns")
        out.setdefault((e["env"], str(e.get("config_hash", "")), str(e["teacher"])), []).append(e)
    hashes: dict[tuple[str, str], set[str]] = {}
    for env, h, label in out:
        hashes.setdefault((env, label), set()).add(h)
    return {(env, h, label): (f"{label} [{h[:8]}]" if len(hashes[(env, label)]) > 1 else label, eps)
            for (env, h, label), eps in out.items()}


def _summarise(env: str, chash: str, label: str, name: str, eps: list[dict[str, Any]],
               threshold: float) -> dict[str, Any]:
    ok: dict[Any, dict[str, Any]] = {}
    for e in sorted((e for e in eps if _ok(e)), key=lambda e: seed_order(e["seed"])):
        ok.setdefault(e["seed"], e)  # read_results already keeps one episode per (label, seed, hash)
    oks = list(ok.values())
    acc = [float(e["final_test_accuracy"]) for e in oks]
    lo, hi = bootstrap_ci(acc)
    times = [t for t in (_time_to(e, threshold) for e in oks) if t is not None]
    km = km_median([t for t, _ in times], [o for _, o in times])
    ratios = [float(e["final_test_accuracy"]) / r for e in oks
              if not math.isnan(r := _num(e.get("reference_test_accuracy"))) and r > 0]
    costs = [episode_costs(e) for e in oks]
    n_fp, fp_diff = _fingerprint_diff(oks)

    def cost(*keys: str) -> float:
        return _mean([sum(c[k] for k in keys) for c in costs])

    model = [c["teacher_tokens_in"] + c["teacher_tokens_out"] + c["engine_tokens_in"] + c["engine_tokens_out"]
             for c in costs]
    return {
        "env": env,
        "teacher": name,
        "n": len(oks),
        "mean": float(np.mean(acc)) if acc else _NAN,
        "ci_low": lo,
        "ci_high": hi,
        "iqm": iqm(acc),
        "auc": _mean([_num(e.get("auc")) if "auc" in e else curve_auc(e.get("curve") or []) for e in oks]),
        f"examples_to_{threshold:g}": km.median,
        "reached": km.reached,
        "examples_max": km.max_time,
        "retained": float(np.mean(ratios)) if ratios else _NAN,
        "label": label,
        "config_hash": chash,
        "reference": any(bool(e.get("reference_row")) for e in eps),
        "rank": None,
        "failed": sum(1 for e in eps if not _ok(e)),
        "seeds": list(ok),
        "examples": _mean([_num(e.get("examples")) for e in oks]),
        "seconds": _mean([_num(e.get("seconds")) for e in oks]),
        "invalid_actions": int(sum(int(e.get("invalid_actions", 0) or 0) for e in oks)),
        "seconds_per_decision": _mean([_num((e.get("teacher_stats") or {}).get("seconds_per_decision"))
                                       for e in oks]),
        "teacher_tokens": cost("teacher_tokens_in", "teacher_tokens_out"),
        "engine_tokens": cost("engine_tokens_in", "engine_tokens_out"),
        "model_tokens": _mean(model),
        "model_tokens_max": float(max(model)) if model and not any(math.isnan(m) for m in model) else _NAN,
        "teacher_calls": cost("teacher_calls"),
        "engine_calls": cost("engine_calls"),
        "student_tokens": cost("student_tokens"),
        "student_flops": cost("student_flops"),
        "fingerprints": n_fp,
        "fingerprint_diff": fp_diff,
        "_acc": dict(zip(ok, acc, strict=True)),
    }


def leaderboard(episodes: Sequence[dict[str, Any]], baseline: str | None = "uniform",
                threshold: float = 0.25) -> list[dict[str, Any]]:
    """One row per (env, config hash, label), sorted by env, then rank (mean final test accuracy), then references.

    Args:
        episodes: episode records (``read_results(DIR)[0]``); failed ones are counted, not used.
        baseline: the teacher label the paired and Welch tests compare against, or ``LABEL@HASH``
            (a prefix of the config hash) when the label has several configurations in one env.
            An env without the baseline gets nan in those columns; ``None`` compares with nothing (the
            columns are then named ``..._vs_none``).
        threshold: the validation accuracy of the data-efficiency column ``examples_to_X``.

    See the module docstring for every field. Raises ConfigError when the baseline label matches
    several configurations of one env."""
    b_label, b_prefix = _split_baseline(baseline) if baseline is not None else ("none", "")
    rows = [_summarise(env, h, label, name, eps, threshold) for (env, h, label), (name, eps) in groups(episodes).items()]
    per_env: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        per_env.setdefault(r["env"], []).append(r)
    for env, env_rows in per_env.items():
        base = [r for r in env_rows if baseline is not None and r["label"] == b_label
                and r["config_hash"].startswith(b_prefix)]
        if len(base) > 1:
            raise ConfigError(
                f"leaderboard: baseline {baseline!r} matches {len(base)} configurations in {env}: "
                f"{sorted(r['config_hash'] for r in base)}; pass baseline='{b_label}@HASH' with one of them"
            )
        _compare(env_rows, base[0] if base else None, b_label)
        # ties broken by label and hash, so the ranking does not depend on the order of the results file
        ranked = sorted((r for r in env_rows if not r["reference"] and r["n"] > 0),
                        key=lambda r: (-r["mean"], r["label"], r["config_hash"]))
        for k, r in enumerate(ranked, start=1):
            r["rank"] = k
    for r in rows:
        del r["_acc"]
    big = len(rows) + 1
    return sorted(rows, key=lambda r: (r["env"], r["reference"], r["rank"] or big, r["teacher"]))


def _compare(rows: list[dict[str, Any]], base: dict[str, Any] | None, b: str) -> None:
    """Paired (t, Wilcoxon) and Welch tests of each row against ``base``, Holm over the family."""
    keys = ("paired_n", "paired_diff", "paired_t_p", "paired_t_holm", "wilcoxon_p", "wilcoxon_holm", "t", "p")
    family = []
    for r in rows:
        for k in keys:
            r[f"{k}_vs_{b}"] = _NAN
        r[f"paired_n_vs_{b}"] = 0
        if base is None or r is base:
            continue
        t = paired_test(r["_acc"], base["_acc"], "t")
        w = paired_test(r["_acc"], base["_acc"], "wilcoxon")
        r[f"paired_n_vs_{b}"], r[f"paired_diff_vs_{b}"] = t.n_pairs, t.mean_diff
        r[f"paired_t_p_vs_{b}"], r[f"wilcoxon_p_vs_{b}"] = t.pvalue, w.pvalue
        r[f"t_vs_{b}"], r[f"p_vs_{b}"] = welch(list(r["_acc"].values()), list(base["_acc"].values()))
        if not r["reference"]:
            family.append(r)
    for test in ("paired_t", "wilcoxon"):
        adjusted = holm([r[f"{test}_p_vs_{b}"] for r in family])
        for r, p in zip(family, adjusted, strict=True):
            r[f"{test}_holm_vs_{b}"] = p


# ---------------------------------------------------------------------------- equal-cost ranking
def at_budget(rows: Sequence[dict[str, Any]], budget: float, env: str | None = None) -> list[dict[str, Any]]:
    """The ranked rows (not references, at least one ok episode) whose mean model tokens per episode
    (teacher + engine, input + output: ``model_tokens``) are at most ``budget``, best mean final test
    accuracy first; only ``env``'s rows when given. Rows with unknown token counts are left out."""
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or math.isnan(budget) or budget < 0:
        raise ConfigError(f"at_budget: budget must be a number of tokens >= 0, got {budget!r}")
    keep = [r for r in rows if (env is None or r["env"] == env) and not r.get("reference") and r["n"] > 0
            and not math.isnan(r["model_tokens"]) and r["model_tokens"] <= budget]
    return sorted(keep, key=lambda r: -r["mean"])


def budget_frontier(rows: Sequence[dict[str, Any]], env: str,
                    budgets: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Accuracy at a fixed token budget: per budget, how many teachers fit in it and the best of them.

    ``budgets`` defaults to the distinct ``model_tokens`` of ``env``'s rows (each is where another
    teacher becomes affordable, so the table is the cost-accuracy frontier). Each entry:
    ``{"budget", "eligible", "best"}`` with ``best`` the row (or None when nothing fits)."""
    if budgets is None:
        budgets = sorted({r["model_tokens"] for r in rows if r["env"] == env and not r.get("reference")
                          and r["n"] > 0 and not math.isnan(r["model_tokens"])})
    out = []
    for b in budgets:
        fit = at_budget(rows, b, env)
        out.append({"budget": float(b), "eligible": len(fit), "best": fit[0] if fit else None})
    return out


# ---------------------------------------------------------------------------- renderers
def _f(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _big(x: Any) -> str:
    """A count such as tokens or FLOPs: 0, 12345, 1.2e+09."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.0f}" if abs(x) < 1e6 else f"{x:.2g}"


def _pf(p: Any) -> str:
    """A p-value: 4 decimals, or 1.2e-05 below 0.0001."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return f"{p:.4f}" if p == 0 or p >= 1e-4 else f"{p:.1e}"


def _p(p: Any, adj: Any) -> str:
    """A p-value and, in parentheses, its adjusted value when there is one."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return _pf(p) + ("" if adj is None or (isinstance(adj, float) and math.isnan(adj)) else f" ({_pf(adj)})")


def json_safe(x: Any) -> Any:
    """JSON-safe copy: nan and inf become None (JSON has neither), numpy scalars Python numbers."""
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


def _csv_cols(baseline: str, threshold: float) -> list[str]:
    b = _split_baseline(baseline)[0]
    return [
        "env", "teacher", "n", "mean", "ci_low", "ci_high", "iqm", "auc", f"examples_to_{threshold:g}", "reached",
        "examples_max", "retained", f"paired_n_vs_{b}", f"paired_diff_vs_{b}", f"paired_t_p_vs_{b}",
        f"paired_t_holm_vs_{b}", f"wilcoxon_p_vs_{b}", f"wilcoxon_holm_vs_{b}", f"t_vs_{b}", f"p_vs_{b}", "rank",
        "reference", "config_hash", "failed", "invalid_actions", "seconds", "seconds_per_decision", "examples",
        "teacher_tokens",
        "engine_tokens", "model_tokens", "teacher_calls", "engine_calls", "student_tokens", "student_flops",
        "fingerprints", "seeds",
    ]


def _csv_value(x: Any) -> Any:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (list, tuple)):
        return " ".join(str(v) for v in x)
    return x


def _fingerprint_note(diff: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{k}: " + ", ".join(f"{v} ({c} ep.)" for v, c in vals.items()) for k, vals in diff.items())


def _md_env(rows: list[dict[str, Any]], env: str, baseline: str, threshold: float) -> list[str]:
    b = _split_baseline(baseline)[0]
    eff = f"examples_to_{threshold:g}"
    notes: list[str] = []

    def name(r: dict[str, Any]) -> str:
        s = r["teacher"] + (" (reference)" if r["reference"] else "")
        if r["fingerprints"] > 1:
            notes.append(f"{r['teacher']}: {r['fingerprints']} fingerprints differ in {_fingerprint_note(r['fingerprint_diff'])}")
            s += f" ‡{len(notes)}"
        return s

    names = {id(r): name(r) for r in rows}
    family = sum(1 for r in rows if not math.isnan(r.get(f"paired_t_holm_vs_{b}", _NAN)))
    out = [f"### {env}", ""]
    out.append(f"In rank order of mean final test accuracy (references last, not ranked). Paired tests against `{b}` "
               f"on the seeds both ran (two-sided; in parentheses Holm-adjusted over the {family} teachers compared).")
    out.append("")
    out.append(f"| teacher | n | final test acc. | 95% bootstrap CI | IQM | Δ vs {b} (paired) | pairs | "
               "paired t p (Holm) | Wilcoxon p (Holm) | retained |")
    out.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        diff = r.get(f"paired_diff_vs_{b}", _NAN)
        out.append(
            f"| {names[id(r)]} | {r['n']} | {_f(r['mean'])} | [{_f(r['ci_low'])}, {_f(r['ci_high'])}] | "
            f"{_f(r['iqm'])} | {'-' if math.isnan(diff) else f'{diff:+.3f}'} | {r.get(f'paired_n_vs_{b}') or '-'} | "
            f"{_p(r.get(f'paired_t_p_vs_{b}'), r.get(f'paired_t_holm_vs_{b}'))} | "
            f"{_p(r.get(f'wilcoxon_p_vs_{b}'), r.get(f'wilcoxon_holm_vs_{b}'))} | {_f(r['retained'])} |"
        )
    out.append("")
    # The config hash comes first: each teacher has exactly one markdown line that starts with its name
    # (the first table's), which is what scripts grep for.
    out.append(f"| config | teacher | AUC | examples to {threshold:g} val. acc. (KM median; reached) | "
               f"Welch p vs {b} (unpaired) | failed | invalid actions | s / episode | teacher s / decision | "
               "teacher tokens | engine tokens | student FLOPs |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        med = _f(r[eff], 0) if not math.isnan(r[eff]) else (f"> {r['examples_max']:.0f}" if r["n"] else "-")
        reached = "-" if math.isnan(r["reached"]) else f"{r['reached']:.0%}"
        out.append(
            f"| {r['config_hash'][:8]} | {names[id(r)]} | {_f(r['auc'])} | {med} ({reached}) | {_pf(r.get(f'p_vs_{b}'))} | "
            f"{r['failed']} | {r['invalid_actions']} | {_f(r['seconds'], 1)} | {_f(r['seconds_per_decision'], 1)} | "
            f"{_big(r['teacher_tokens'])} | "
            f"{_big(r['engine_tokens'])} | {_big(r['student_flops'])} |"
        )
    out.append("")
    frontier = budget_frontier(rows, env)
    if frontier:
        out.append("Accuracy at a fixed token budget (model tokens per episode: teacher + engine, input + output; "
                   "the best teacher whose mean cost fits):")
        out.append("")
        out.append("| budget (tokens / episode) | teachers within | best | final test acc. | 95% bootstrap CI |")
        out.append("|---:|---:|---|---:|---|")
        for f in frontier:
            r = f["best"]
            out.append(f"| {_big(f['budget'])} | {f['eligible']} | {r['teacher']} | {_f(r['mean'])} | "
                       f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}] |")
        out.append("")
    for k, note in enumerate(notes, start=1):
        out.append(f"‡{k} {note}  ")
    if notes:
        out.append("")
    return out


def render(rows: Sequence[dict[str, Any]], fmt: str = "md", baseline: str = "uniform", threshold: float = 0.25) -> str:
    """The rows of :func:`leaderboard` as markdown (per env: a ranking table, a table of data
    efficiency, unpaired test, failures and costs, an accuracy-at-budget table, and footnotes for rows
    with several fingerprints), CSV (one line per row, nan as an empty cell, lists space-separated),
    or JSON (the rows as they are, nan and inf as null). ``baseline`` and ``threshold`` must be the
    ones the rows were made with."""
    if fmt not in FORMATS:
        raise UnknownNameError(f"unknown format {fmt!r}: {did_you_mean(fmt, FORMATS)}")
    if fmt == "json":
        return json.dumps(json_safe(list(rows)), indent=2, allow_nan=False)
    if fmt == "csv":
        cols = _csv_cols(baseline, threshold)
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(cols)
        for r in rows:
            w.writerow([_csv_value(r.get(c)) for c in cols])
        return buf.getvalue()
    out: list[str] = []
    for env in dict.fromkeys(r["env"] for r in rows):
        out += _md_env([r for r in rows if r["env"] == env], env, baseline, threshold)
    return "\n".join(out)
