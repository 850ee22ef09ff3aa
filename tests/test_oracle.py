"""The ``oracle-lookahead`` reference: it picks the brute-force best candidate and leaves the env as a plain step."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

from distillgym.errors import ConfigError
from distillgym.harness.runner import run_episode
from distillgym.teachers import OracleLookahead, make_teacher

# A small episode on a smaller student: 2 steps of 256 examples, 2 validation items per cell.
SMALL_STUDENT = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "batch_size": 64}
TINY = dict(budget=512, examples_per_step=256, n_val_per_cell=2, n_test_per_cell=2, student_kwargs=SMALL_STUDENT)
ONE_STEP = dict(TINY, budget=128, examples_per_step=128)
SEED = 3


def _make(env_id="distillgym/ArithSkills-v1", **kw):
    return gym.make(env_id, **{**TINY, **kw})


def _oracle(env, **kw) -> OracleLookahead:
    obs, info = env.reset(seed=SEED)
    o = OracleLookahead(**kw)
    o.bind_env(env.unwrapped)
    o.reset(env.action_space, info, seed=SEED)
    return o, obs, info


def _state(env):
    """Everything a step leaves behind: counters, report, student weights, optimiser state, replay buffer."""
    u = env.unwrapped
    st = u.student
    return {
        "t": u._t, "spent": u._spent, "totals": dict(u._totals), "acc": u._report.accuracy.tolist(),
        "loss": None if u._report.loss is None else u._report.loss.tolist(),
        "weights": [p.detach().clone() for p in st.model.parameters()],
        "opt": {k: [v.clone() for v in s.values() if hasattr(v, "clone")]
                for k, s in st.optimizer.state_dict()["state"].items()},
        "step": st.step, "replay": [(e.prompt, e.answer) for e in st.replay],
    }


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if k == "weights":
            assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a[k], b[k], strict=True)), k
        elif k == "opt":
            assert a[k].keys() == b[k].keys()
            for i in a[k]:
                assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a[k][i], b[k][i], strict=True)), k
        else:
            assert a[k] == b[k], k


@pytest.mark.slow
def test_oracle_picks_the_brute_force_best_cell_and_leaves_the_env_as_a_plain_step():
    env = _make()
    oracle, obs, info = _oracle(env)
    before = _state(env)
    action = oracle.act(obs, info)
    _same(_state(env), before)  # the look-ahead restored everything
    # brute force: every cell from a fresh reset, one step each
    ref = _make()
    brute = []
    for s in range(7):
        for d in range(4):
            ref.reset(seed=SEED)
            _, _, _, _, inf = ref.step(np.array([s, d]))
            loss = np.mean([x for row in inf["val_loss"] for x in row if x is not None])
            brute.append((inf["mean_accuracy"], loss, s, d))
    scores = oracle.last_decision["scores"]
    assert [scores[f"{['copy', 'successor', 'add', 'sub', 'mul', 'compare', 'chain'][s]} L{d}"] for _, _, s, d in brute] \
        == [a for a, _, _, _ in brute]
    best = min(range(len(brute)), key=lambda i: (-brute[i][0], brute[i][1], i))
    assert tuple(int(x) for x in action) == brute[best][2:]
    assert oracle.stats["lookahead_steps"] == 28 and oracle.stats["student_tokens"] > 0
    # the step the runner then takes is exactly a plain step of that action
    obs_a, r_a, _, _, info_a = env.step(action)
    ref.reset(seed=SEED)
    obs_b, r_b, _, _, info_b = ref.step(action)
    assert r_a == r_b and info_a["report"] == info_b["report"] and info_a["val_loss"] == info_b["val_loss"]
    assert all(np.array_equal(obs_a[k], obs_b[k]) for k in obs_b)
    _same(_state(env), _state(ref))
    # and so is everything after it (optimiser state and replay buffer included): play the last step plainly
    obs_a, _, term_a, _, info_a = env.step(np.array([2, 1]))
    obs_b, _, term_b, _, info_b = ref.step(np.array([2, 1]))
    assert term_a and term_b and info_a["final"] == info_b["final"]


def test_ties_are_broken_by_validation_loss_then_order():
    o = OracleLookahead()
    recs = [{"val_accuracy": 0.0, "val_loss": 2.0}, {"val_accuracy": 0.0, "val_loss": 1.5},
            {"val_accuracy": 0.0, "val_loss": 1.5}, {"val_accuracy": -math.inf, "val_loss": math.nan}]
    assert o.best(recs) == 1
    assert OracleLookahead(tie_break="first").best(recs) == 0
    recs.append({"val_accuracy": 0.1, "val_loss": 9.0})
    assert o.best(recs) == 4


@pytest.mark.parametrize("env_id,n", [("distillgym/ArithMix-v1", 29), ("distillgym/ArithOpen-v1", 29)])
def test_mix_and_open_candidates_are_the_one_hot_cells_and_the_equal_mix(env_id, n):
    env = _make(env_id, **{k: v for k, v in ONE_STEP.items() if k != "student_kwargs"})
    oracle, obs, info = _oracle(env)
    cands = oracle.candidate_actions(1)
    assert len(cands) == n and cands[-1][0] == "stratified" and cands[0][0] == "copy L0"
    for label, action in cands:
        assert env.action_space.contains(action), label
    if env_id.endswith("Open-v1"):
        first = cands[0][1].splitlines()
        assert len(first) == 128 and all(line.startswith("c") for line in first)  # copy L0 lines
        assert cands == oracle.candidate_actions(1)  # the same text every time it is asked
        assert cands[0][1] != oracle.candidate_actions(2)[0][1]
    else:
        plan = env.unwrapped.level.decode(cands[5][1], 128)
        assert [(i.skill, i.difficulty, i.n) for i in plan.items] == [("successor", 1, 128)]
    with pytest.raises(ConfigError, match="cells\\+stratified"):
        _oracle(_make(), candidates="cells+stratified")


def test_the_runner_binds_the_env_marks_the_reference_and_counts_the_lookahead():
    res = run_episode("distillgym/ArithMix-v1", "oracle-lookahead", seed=1, env_kwargs=ONE_STEP)
    assert res["reference_row"] is True and len(res["steps"]) == 1
    st = res["teacher_stats"]
    assert st["lookahead_steps"] == 29 and st["lookahead_examples"] == 29 * 128
    plain = run_episode("distillgym/ArithMix-v1", "stratified", seed=1, env_kwargs=ONE_STEP)
    assert plain["reference_row"] is False
    # the episode's student cost is its own step plus the 29 look-ahead steps
    assert res["costs"]["student_tokens"] == pytest.approx(
        st["student_tokens"] + sum(s["costs"]["tokens"] for s in res["steps"]))
    assert res["costs"]["student_tokens"] > 20 * plain["costs"]["student_tokens"]


def test_without_the_env_it_says_how_to_run_it():
    o = make_teacher("oracle-lookahead")
    with pytest.raises(ConfigError, match="run_episode"):
        o.reset(gym.spaces.MultiDiscrete([7, 4]), {"skills": ["a"] * 7, "n_difficulties": 4}, seed=0)
    with pytest.raises(ConfigError, match="snapshot"):
        o.bind_env(object())
