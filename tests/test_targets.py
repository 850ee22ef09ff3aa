"""Per-cell evaluation weights (target skills, issue 21 section 3): validation, weighted rewards and
scores, the observation's ``target``, skipping unweighted cells in validation, and the config."""

from __future__ import annotations

import numpy as np
import pytest

from distillgym.env import TeachingEnv
from distillgym.errors import ConfigError, UnknownNameError
from distillgym.feedback import eval_weight_matrix
from distillgym.rewards import REWARDS

SKILLS = ("copy", "successor", "add", "sub", "mul", "compare", "chain")
SMALL = dict(suite="arith-v2", student="plain", engine="vectorized", level="mix", budget=1536, examples_per_step=512,
             n_val_per_cell=8, n_test_per_cell=8, device="cpu")
WARM = dict(warm_start="arith-v2-l01", student_init="fixed")  # a student that knows difficulties 0-1 already


def test_weight_specs_resolve_to_one_matrix():
    by_dict = eval_weight_matrix({"add": 1, "sub": [1, 1, 2, 2]}, SKILLS, 4)
    want = np.zeros((7, 4))
    want[2] = 1
    want[3] = [1, 1, 2, 2]
    assert np.array_equal(by_dict, want)
    assert np.array_equal(eval_weight_matrix(want.tolist(), SKILLS, 4), want)
    assert eval_weight_matrix(None, SKILLS, 4) is None


@pytest.mark.parametrize("spec,error,match", [
    ({"adds": 1}, UnknownNameError, "Did you mean .add."),
    ({"add": -1}, ConfigError, "non-negative"),
    ({"add": 0}, ConfigError, "not all zero"),
    ({"add": float("nan")}, ConfigError, "finite"),
    ({"add": [1, 2]}, ConfigError, "4 numbers"),
    ({"add": "high"}, ConfigError, "numbers"),
    ({"add": True}, ConfigError, "numbers"),
    (np.ones((7, 3)).tolist(), ConfigError, r"expected \(7, 4\)"),
    ([[1, 2], [3]], ConfigError, "shape"),
])
def test_bad_weights_are_named(spec, error, match):
    with pytest.raises(error, match=match):
        eval_weight_matrix(spec, SKILLS, 4)


def test_bad_weights_through_the_env():
    with pytest.raises(UnknownNameError, match="unknown skill"):
        TeachingEnv(**SMALL, eval_weights={"sum": 1})


def _episode(**kw):
    env = TeachingEnv(**{**SMALL, **kw})
    obs, info = env.reset(seed=5)
    out = {"obs": [obs], "info": [info], "rewards": []}
    for _ in range(3):
        a = np.full((7, 4), -1.0, np.float32)
        a[:4, :2] = 1.0  # copy, successor, add and sub at difficulties 0-1
        obs, r, term, trunc, info = env.step(a)
        out["obs"].append(obs)
        out["info"].append(info)
        out["rewards"].append(r)
    assert term
    return env, out


def test_weighted_rewards_means_and_final_scores():
    w = eval_weight_matrix({"add": 1, "sub": [1, 1, 2, 2]}, SKILLS, 4)
    env, ep = _episode(eval_weights={"add": 1, "sub": [1, 1, 2, 2]}, **WARM)
    first = ep["info"][0]
    assert first["targets"] == [["add", d] for d in range(4)] + [["sub", d] for d in range(4)]
    assert first["eval_weights"] == w.tolist()
    np.testing.assert_array_equal(ep["obs"][0]["target"], (w / 2).astype(np.float32))
    means = [float((w * o["accuracy"].astype(float)).sum() / w.sum()) for o in ep["obs"]]
    for k, info in enumerate(ep["info"]):
        assert info["mean_accuracy"] == pytest.approx(means[k], abs=1e-6)
        assert info["mean_accuracy_all_cells"] == pytest.approx(float(ep["obs"][k]["accuracy"].mean()), abs=1e-6)
    np.testing.assert_allclose(ep["rewards"], np.diff(means), atol=1e-6)
    final = ep["info"][-1]["final"]
    test = np.array(final["test_accuracy_matrix"])
    assert final["test_accuracy"] == pytest.approx(float((w * test).sum() / w.sum()), abs=1e-5)
    assert final["test_accuracy_all_cells"] == pytest.approx(float(test.mean()), abs=1e-5)
    assert test[:2, :2].min() > 0.5  # the test scores the untargeted prerequisites too
    assert ep["obs"][-1]["accuracy"][:2, :2].min() > 0.5  # and validation shows them (validate_all_cells)
    assert 0.2 < final["test_accuracy"] < 0.9  # the warm student knows the targets at difficulties 0-1 only
    report = ep["info"][-1]["report"]
    assert "over the target cells (*, weighted)" in report and report.count("*") >= 8


def test_unweighted_env_is_unchanged_by_the_new_fields():
    """No weights: no new observation key, no new info key, and the config lists none of the new fields."""
    env, ep = _episode()
    assert "target" not in ep["obs"][0] and "targets" not in ep["info"][0]
    assert "mean_accuracy_all_cells" not in ep["info"][1] and "test_accuracy_all_cells" not in ep["info"][-1]["final"]
    assert not {"eval_weights", "validate_all_cells", "warm_start", "level_kwargs"} & set(env.config)
    assert ep["info"][1]["mean_accuracy"] == float(ep["obs"][1]["accuracy"].mean())


def test_skipping_unweighted_cells_in_validation():
    w = {"add": 1, "sub": 1}
    _, full = _episode(eval_weights=w, **WARM)
    env, skip = _episode(eval_weights=w, validate_all_cells=False, **WARM)
    counts = env._val.counts
    assert counts[2:4].min() == 8 and counts[[0, 1, 4, 5, 6]].max() == 0  # only the targets are validated
    assert env._test.counts.min() == 8  # the test scores every cell
    for o in skip["obs"]:
        assert o["accuracy"][[0, 1, 4, 5, 6]].max() == 0 and o["loss"][[0, 1, 4, 5, 6]].max() == 0
    # the targets' validation items, training and test are the same; only float rounding of other batches may differ
    for a, b in zip(full["obs"], skip["obs"], strict=True):
        np.testing.assert_allclose(a["accuracy"][2:4], b["accuracy"][2:4], atol=0.13)
    assert skip["info"][-1]["final"]["test_accuracy_matrix"] is not None
    assert "    -" in skip["info"][-1]["report"] and "(- not evaluated: 0)" in skip["info"][-1]["report"]
    assert skip["obs"][0]["reference"].min() == 1.0  # the reference is still the solver's on every skill
    assert env.config["validate_all_cells"] is False


def test_config_records_the_resolved_weights():
    a = TeachingEnv(**SMALL, eval_weights={"add": 1, "sub": 1}).config
    m = np.zeros((7, 4))
    m[2:4] = 1
    b = TeachingEnv(**SMALL, eval_weights=m.tolist()).config
    assert a == b and a["eval_weights"] == m.tolist() and "validate_all_cells" not in a
    rebuilt = TeachingEnv(**{k: v for k, v in a.items() if k != "rebuildable"})
    assert np.array_equal(rebuilt.eval_weights, m)


def test_delta_min_skill_counts_target_skills_only():
    from distillgym.feedback import SkillReport

    def report(acc, weights=None):
        return SkillReport(SKILLS, 4, np.asarray(acc, float), np.ones(7), np.ones((7, 4)), weights=weights)

    before, after = np.full((7, 4), 0.5), np.full((7, 4), 0.5)
    before[0], after[0] = 0.0, 0.0  # copy stays at 0
    after[2] = 0.9  # add improves
    w = np.zeros((7, 4))
    w[2] = 1
    f = REWARDS["delta_min_skill"]
    assert f(None, report(before), report(after), False) == 0.0  # the weakest skill overall did not move
    assert f(None, report(before, w), report(after, w), False) == pytest.approx(0.4)
