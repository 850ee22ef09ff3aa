"""The leaderboard on synthetic episode records: grouping by config hash, failed episodes, the reference
row, paired tests with Holm, censored data efficiency, retained, fingerprints, costs, renderers; and the
checked-in LEADERBOARD.md against the checked-in results."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from distillgym.errors import ConfigError
from distillgym.harness.leaderboard import at_budget, budget_frontier, episode_costs, groups, leaderboard, render
from distillgym.harness.stats import holm

REPO = Path(__file__).resolve().parents[1]
U = [0.417, 0.424, 0.366, 0.281, 0.319, 0.437, 0.317, 0.352, 0.181, 0.301]  # the baseline, seeds 0-9
GOOD = [0.05, 0.07, 0.02, 0.09, -0.01, 0.04, 0.06, 0.03, 0.08, 0.10]  # per-seed gains over the baseline
BAD = [-0.10, -0.05, -0.12, -0.02, 0.01, -0.08, -0.06, -0.04, -0.09, -0.11]


def ep(teacher, seed, acc, *, env="e", h=None, curve=None, **extra):
    """A synthetic episode record in the results-file shape (only the fields the leaderboard reads)."""
    rec = {
        "type": "episode", "env": env, "teacher": teacher, "seed": seed, "config_hash": h or f"hash-{teacher}",
        "final_test_accuracy": acc, "reference_test_accuracy": 1.0, "examples": 600,
        "curve": curve if curve is not None else [(0, 0.0), (300, acc / 2), (600, acc)],
        "seconds": 10.0 + seed, "invalid_actions": 0,
    }
    rec.update(extra)
    return rec


def _episodes():
    eps = [ep("uniform", s, U[s]) for s in range(10)]
    eps += [ep("good", s, U[s] + GOOD[s], fingerprint={"torch": "2.13.0", "cpu": "A" if s < 5 else "B", "threads": 1})
            for s in range(10)]
    eps += [ep("bad", s, U[s] + BAD[s]) for s in range(8)]  # seeds 8, 9 never ran
    eps += [ep("flaky", s, U[s] + 0.01 * (s % 3)) for s in range(8)]
    eps += [ep("flaky", s, 0.99, status="failed") for s in (8, 9)]  # would dominate the mean if counted
    eps += [ep("oracle-lookahead", s, 0.9, reference_row=True) for s in range(10)]
    eps += [ep("ioa", s, 0.2 + 0.01 * s, h="aaaa1111") for s in range(10)]
    eps += [ep("ioa", s, 0.25 + 0.01 * s, h="bbbb2222") for s in range(10)]
    eps += [ep("llm", s, 0.3, costs={"teacher_tokens_in": 1000 + 100 * s, "teacher_tokens_out": 200, "teacher_calls": 12,
                                     "engine_tokens_in": 0, "engine_tokens_out": 0, "engine_calls": 0,
                                     "student_tokens": 5e5, "student_flops": 2e12, "examples": 600})
            for s in range(10)]
    eps += [ep("old-llm", s, 0.28, teacher_stats={"tokens_in": 400, "tokens_out": 100, "prompts": 8,
                                                                   "seconds_per_decision": 2.0 + 0.2 * s})
            for s in range(10)]
    eps += [ep("uniform", s, 0.5 + 0.01 * s, env="other") for s in range(4)]
    eps += [ep("edge", s, 0.4 + 0.01 * s, env="other") for s in range(4)]
    return eps


@pytest.fixture(scope="module")
def rows():
    return leaderboard(_episodes())


def _row(rows, teacher, env="e"):
    (r,) = [r for r in rows if r["teacher"] == teacher and r["env"] == env]
    return r


def test_groups_by_config_hash_and_names_repeated_labels(rows):
    names = {r["teacher"] for r in rows if r["env"] == "e"}
    assert {"ioa [aaaa1111]", "ioa [bbbb2222]", "uniform", "good"} <= names
    assert _row(rows, "ioa [aaaa1111]")["mean"] == pytest.approx(0.245)
    assert _row(rows, "ioa [bbbb2222]")["mean"] == pytest.approx(0.295)
    assert _row(rows, "uniform", "other")["n"] == 4 and _row(rows, "uniform")["n"] == 10  # envs apart
    # two labels of one configuration (a copied suite entry): two rows, as the suite listed them
    both = leaderboard([ep("a", s, 0.3, h="same") for s in range(3)] + [ep("b", s, 0.3, h="same") for s in range(3)])
    assert [r["teacher"] for r in both] == ["a", "b"] and both[0]["n"] == 3
    assert set(groups(_episodes())) >= {("e", "aaaa1111", "ioa"), ("other", "hash-edge", "edge")}
    assert _row(rows, "ioa [aaaa1111]")["label"] == "ioa"
    (r,) = leaderboard([ep("t", s, 0.3) for s in (10, 2, 0)])
    assert r["seeds"] == [0, 2, 10]


def test_failed_episodes_are_counted_not_used(rows):
    r = _row(rows, "flaky")
    assert r["n"] == 8 and r["failed"] == 2 and r["seeds"] == list(range(8))
    assert r["mean"] == pytest.approx(np.mean([U[s] + 0.01 * (s % 3) for s in range(8)]))
    assert _row(rows, "uniform")["failed"] == 0
    # a failed line may lack the result fields altogether
    lone = {"type": "episode", "env": "e", "teacher": "x", "seed": 0, "config_hash": "h", "status": "failed"}
    (r,) = leaderboard([lone])
    assert r["n"] == 0 and r["failed"] == 1 and math.isnan(r["mean"]) and r["rank"] is None
    assert "| x | 0 | - |" in render([r])


def test_reference_row_is_shown_but_not_ranked_or_corrected(rows):
    ref = _row(rows, "oracle-lookahead")
    assert ref["reference"] and ref["rank"] is None
    assert not math.isnan(ref["paired_t_p_vs_uniform"]) and math.isnan(ref["paired_t_holm_vs_uniform"])
    env_rows = [r for r in rows if r["env"] == "e"]
    assert env_rows[-1] is ref  # references after the ranked rows
    ranked = [r for r in env_rows if not r["reference"]]
    assert [r["rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert [r["mean"] for r in ranked] == sorted((r["mean"] for r in ranked), reverse=True)


def test_paired_tests_against_the_baseline(rows):
    good, bad, base = _row(rows, "good"), _row(rows, "bad"), _row(rows, "uniform")
    ref = sps.ttest_rel([U[s] + GOOD[s] for s in range(10)], U)
    assert good["paired_n_vs_uniform"] == 10 and good["paired_t_p_vs_uniform"] == pytest.approx(ref.pvalue, rel=1e-7)
    assert good["paired_diff_vs_uniform"] == pytest.approx(np.mean(GOOD))
    assert good["wilcoxon_p_vs_uniform"] == pytest.approx(4 / 1024)  # W = 1 at n = 10, see test_stats
    assert bad["paired_n_vs_uniform"] == 8  # only the seeds both ran
    assert bad["paired_t_p_vs_uniform"] == pytest.approx(sps.ttest_rel([U[s] + BAD[s] for s in range(8)], U[:8]).pvalue,
                                                         rel=1e-7)
    # Welch, unpaired, kept under its old name
    assert good["p_vs_uniform"] == pytest.approx(
        sps.ttest_ind([U[s] + GOOD[s] for s in range(10)], U, equal_var=False).pvalue)
    assert good["paired_t_p_vs_uniform"] < good["p_vs_uniform"]  # pairing removes the shared seed variation
    assert base["paired_n_vs_uniform"] == 0 and math.isnan(base["paired_t_p_vs_uniform"])


def test_holm_family_is_the_ranked_non_baseline_rows_of_one_env(rows):
    env_rows = [r for r in rows if r["env"] == "e"]
    family = [r for r in env_rows if not r["reference"] and r["teacher"] != "uniform"]
    assert len(family) == 7
    for test in ("paired_t", "wilcoxon"):
        want = holm([r[f"{test}_p_vs_uniform"] for r in family])
        assert [r[f"{test}_holm_vs_uniform"] for r in family] == pytest.approx(want)
    edge = _row(rows, "edge", "other")  # a family of one in its own env: unadjusted
    assert edge["paired_t_holm_vs_uniform"] == pytest.approx(edge["paired_t_p_vs_uniform"])


def test_examples_to_threshold_is_a_kaplan_meier_median():
    """The censored case of test_stats as curves: reached at 100..500, censored at the episode's total."""
    reach = {0: 100, 1: 200, 3: 300, 5: 400, 6: 500}
    total = {2: 200, 4: 350, 7: 600, 8: 600, 9: 600}
    eps = []
    for s in range(10):
        if s in reach:
            curve = [(0, 0.0), (reach[s], 0.3), (600, 0.3)]
            eps.append(ep("t", s, 0.3, curve=curve))
        else:
            eps.append(ep("t", s, 0.1, curve=[(0, 0.0), (total[s], 0.1)], examples=total[s]))
    (r,) = leaderboard(eps)
    assert r["examples_to_0.25"] == 500 and r["reached"] == 0.5 and r["examples_max"] == 600
    (r,) = leaderboard(eps, threshold=0.35)  # nobody reaches it: no median, shown as "> 600"
    assert math.isnan(r["examples_to_0.35"]) and r["reached"] == 0
    assert "> 600 (0%)" in render([r], threshold=0.35)


def test_retained_is_a_mean_of_per_episode_ratios():
    refs = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0]
    accs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    eps = [ep("t", s, accs[s], reference_test_accuracy=refs[s]) for s in range(10)]
    eps.append(ep("t", 10, 0.4, reference_test_accuracy=float("nan")))  # no reference: left out of retained
    (r,) = leaderboard(eps)
    want = np.mean([a / b for a, b in zip(accs, refs, strict=True)])
    assert r["retained"] == pytest.approx(want)
    assert r["retained"] != pytest.approx(np.mean(accs) / np.mean(refs))


def test_fingerprints_flag_a_mixed_group(rows):
    good = _row(rows, "good")
    assert good["fingerprints"] == 2 and good["fingerprint_diff"] == {"cpu": {"A": 5, "B": 5}}
    assert _row(rows, "uniform")["fingerprints"] == 1 and _row(rows, "uniform")["fingerprint_diff"] == {}
    md = render(rows)
    assert re.search(r"\| good ‡1 \|", md) and "‡1 good: 2 fingerprints differ in cpu: A (5 ep.), B (5 ep.)" in md
    # some episodes with a fingerprint, some without: also mixed
    eps = [ep("t", 0, 0.3, fingerprint={"cpu": "A"}), ep("t", 1, 0.3)]
    (r,) = leaderboard(eps)
    assert r["fingerprints"] == 2 and r["fingerprint_diff"] == {"cpu": {"A": 1, "(none)": 1}}


def test_costs_from_records_and_from_old_lines(rows):
    llm, old, uni = _row(rows, "llm"), _row(rows, "old-llm"), _row(rows, "uniform")
    assert llm["teacher_tokens"] == pytest.approx(1650) and llm["engine_tokens"] == 0
    assert llm["model_tokens"] == pytest.approx(1650) and llm["model_tokens_max"] == 2100
    assert llm["student_flops"] == 2e12 and llm["teacher_calls"] == 12
    assert old["teacher_tokens"] == 500 and old["teacher_calls"] == 8 and math.isnan(old["student_flops"])
    assert uni["model_tokens"] == 0 and math.isnan(uni["student_tokens"])
    # the LLM teacher's seconds per decision: its own counter, averaged; "-" for teachers without one
    assert old["seconds_per_decision"] == pytest.approx(2.9) and math.isnan(uni["seconds_per_decision"])
    md = render(rows)
    (line,) = [x for x in md.splitlines() if re.match(r"\| hash-old \| old-llm \|", x)]
    assert line.split(" | ")[8] == "2.9"
    lines = [x for x in md.splitlines() if re.match(r"\| hash-uni \| uniform \|", x)]  # one per env
    assert lines and all(x.split(" | ")[8] == "-" for x in lines)
    c = episode_costs({"costs": {"teacher_tokens_in": 3, "engine_tokens_out": None}})
    assert c["teacher_tokens_in"] == 3 and math.isnan(c["engine_tokens_out"]) and math.isnan(c["examples"])


def test_ranking_at_a_fixed_token_budget(rows):
    free = at_budget(rows, 0, "e")
    assert "llm" not in {r["teacher"] for r in free} and "oracle-lookahead" not in {r["teacher"] for r in free}
    assert free[0]["teacher"] == "good" and all(r["model_tokens"] == 0 for r in free)
    assert [r["teacher"] for r in at_budget(rows, 600, "e")][-1] == "ioa [aaaa1111]"
    assert "old-llm" in {r["teacher"] for r in at_budget(rows, 500, "e")}
    assert "llm" in {r["teacher"] for r in at_budget(rows, 1650, "e")}
    frontier = budget_frontier(rows, "e")
    assert [f["budget"] for f in frontier] == [0, 500, 1650]
    assert [f["eligible"] for f in frontier] == [6, 7, 8] and all(f["best"]["teacher"] == "good" for f in frontier)
    assert budget_frontier(rows, "e", [10])[0]["eligible"] == 6
    with pytest.raises(ConfigError, match="budget"):
        at_budget(rows, -1)


def test_baseline_choice():
    eps = _episodes()
    with pytest.raises(ConfigError, match="ioa@HASH"):
        leaderboard(eps, baseline="ioa")
    rows = leaderboard(eps, baseline="ioa@bbbb")
    assert _row(rows, "ioa [aaaa1111]")["paired_diff_vs_ioa"] == pytest.approx(-0.05)
    assert all(math.isnan(r["paired_t_p_vs_ioa"]) for r in rows if r["env"] == "other")  # no ioa there
    none = leaderboard(eps, baseline=None)
    assert all(math.isnan(r["paired_t_p_vs_none"]) for r in none)
    with pytest.raises(ConfigError, match="lacks 'seed'"):
        leaderboard([{"env": "e", "teacher": "t"}])


def test_renderers(rows):
    md = render(rows)
    assert md.count("### ") == 2 and "### e\n" in md and "### other\n" in md
    assert "| good ‡1 | 10 |" in md and "oracle-lookahead (reference)" in md
    # one line per teacher starts with its name: the ranking table's, with the mean
    lines = [x for x in md.splitlines() if x.startswith("| uniform |")]
    assert len(lines) == 2 and all(f"{_row(rows, 'uniform', env)['mean']:.3f}" in x for x, env in zip(lines, ["e", "other"],
                                                                                                        strict=True))
    assert "Holm-adjusted over the 7 teachers" in md and "Accuracy at a fixed token budget" in md
    assert "Welch p vs uniform (unpaired)" in md and "KM median" in md
    # every markdown table line of a table has the same number of cells as its header
    for block in md.split("\n\n"):
        lines = [x for x in block.splitlines() if x.startswith("|")]
        assert len({x.count("|") for x in lines}) <= 1, block
    table = list(csv.DictReader(io.StringIO(render(rows, "csv"))))
    assert len(table) == len(rows) and list(table[0])[:4] == ["env", "teacher", "n", "mean"]
    ref = [t for t in table if t["teacher"] == "oracle-lookahead"][0]
    assert ref["reference"] == "True" and ref["rank"] == "" and ref["paired_t_holm_vs_uniform"] == ""
    assert [t for t in table if t["teacher"] == "bad"][0]["seeds"] == "0 1 2 3 4 5 6 7"

    def no_nan(x):
        raise AssertionError(f"{x} in JSON")

    data = json.loads(render(rows, "json"), parse_constant=no_nan)
    assert [d["teacher"] for d in data] == [r["teacher"] for r in rows]
    assert data[0]["paired_t_p_vs_uniform"] == pytest.approx(rows[0]["paired_t_p_vs_uniform"])
    assert [d for d in data if d["teacher"] == "uniform"][0]["paired_t_p_vs_uniform"] is None


def test_checked_in_leaderboard_matches_the_checked_in_results():
    """benchmarks/LEADERBOARD.md's tables are what the leaderboard gives for benchmarks/results/standard."""
    from distillgym.harness.results import read_results

    episodes, _ = read_results(REPO / "benchmarks" / "results" / "standard")
    rows = leaderboard(episodes)
    doc = (REPO / "benchmarks" / "LEADERBOARD.md").read_text()
    assert render(rows, "md").strip() in doc
    assert len(rows) == 11 and all(r["n"] == 10 and r["paired_n_vs_uniform"] in (0, 10) for r in rows)
