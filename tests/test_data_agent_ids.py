"""The data-generation agent's ids (issue 21): registration and documentation, the single env against
the native vector env for each (a budget where the student learns), and every mix teacher (and a
cell teacher through the adapters) playing each of them."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import distillgym  # noqa: E402,F401
from distillgym.envs import ENV_DEFAULTS, VECTOR_ENTRY_POINTS, data_agent  # noqa: E402
from distillgym.vector import PopulationVectorEnv  # noqa: E402

IDS = tuple(data_agent.DEFAULTS)
SMALL = dict(budget=2048, examples_per_step=1024, n_val_per_cell=4, n_test_per_cell=4, device="cpu")


def _make(env_id, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        return gym.make(env_id, **{**SMALL, **kw})


def test_the_ids_are_registered_with_their_defaults_and_vector_entry_points():
    assert IDS == ("distillgym/ArithTarget-v1", "distillgym/ArithSources-v1", "distillgym/ArithSourcesOpen-v1",
                   "distillgym/ArithForget-v1")
    for env_id in IDS:
        spec = gym.spec(env_id)
        assert spec.kwargs == ENV_DEFAULTS[env_id] == data_agent.DEFAULTS[env_id]
        assert spec.vector_entry_point == VECTOR_ENTRY_POINTS[env_id] == "distillgym.vector:PopulationVectorEnv"
        assert spec.kwargs["suite"] == "arith-v2" and spec.kwargs["student"] == "plain"


@pytest.mark.parametrize("env_id", IDS)
def test_each_id_has_a_gymnasium_style_section(env_id):
    doc = data_agent.__doc__
    section = doc.split(env_id + "\n")[1].split("\ndistillgym/")[0]
    for head in ("**Description.**", "**Action.**", "**Observation.**", "**Reward.**", "**Episode end.**",
                 "**Arguments.**"):
        assert head in section, (env_id, head)
    assert "Version History" in doc


def test_the_ids_have_the_documented_spaces():
    spaces = {e: _make(e) for e in IDS}
    assert spaces["distillgym/ArithTarget-v1"].action_space.shape == (7, 4)
    assert "target" in spaces["distillgym/ArithTarget-v1"].observation_space.spaces
    assert spaces["distillgym/ArithSources-v1"].action_space.shape == (7, 4, 3)
    assert spaces["distillgym/ArithSources-v1"].observation_space["source_spent"].shape == (3,)
    assert isinstance(spaces["distillgym/ArithSourcesOpen-v1"].action_space, gym.spaces.Text)
    assert spaces["distillgym/ArithSourcesOpen-v1"].observation_space["source_spent"].shape == (2,)
    forget = spaces["distillgym/ArithForget-v1"].unwrapped
    assert forget.student.config.replay_capacity == 4096 and forget.student.config.warmup_steps == 0
    assert forget.config["warm_start"] == "arith-v2-l01" and forget.config["student_init"] == "fixed"


# ---------------------------------------------------------------------------- single env == vector env
def _actions(env_id, space, k):
    """Two steps of actions that train something learnable (and from every source)."""
    if env_id.endswith("SourcesOpen-v1"):
        return None  # written by the scripted writer from the observation
    rng = np.random.default_rng(k)
    a = rng.uniform(-1, 1, space.shape).astype(np.float32)
    if env_id.endswith("Target-v1"):
        a[:, 2:] = -1.0  # difficulties 0-1: a cold student learns copy there within the budget
        a[0, 0] = 1.0
    return a


def _episode(step, reset, env_id, space, seed, writer_info=None):
    from distillgym.teachers import make_teacher

    obs, info = reset(seed)
    out = {"obs": [obs], "rewards": [], "reports": [info["report"]]}
    writer = None
    if env_id.endswith("SourcesOpen-v1"):
        writer = make_teacher("scripted-writer", unverified=bool(seed % 2))
        writer.reset(space, info, seed=seed)
    for k in range(2):
        action = writer.act(obs, info) if writer else _actions(env_id, space, 10 * seed + k)
        obs, r, term, trunc, info = step(action)
        out["obs"].append(obs)
        out["rewards"].append(r)
        out["reports"].append(info["report"])
        out["costs"] = info["costs"]
    out["final"] = info["final"]
    return out


@pytest.mark.parametrize("env_id", IDS)
def test_one_sub_env_is_the_single_env_bit_for_bit(env_id):
    """N = 1 of the native vector env is the single env: every observation, reward, report, cost by
    source and the final test score, over an episode in which the student learns."""
    single = _make(env_id)
    want = _episode(lambda a: single.step(a), lambda s: single.reset(seed=s), env_id, single.action_space, 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        venv = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **SMALL)
    assert isinstance(venv, PopulationVectorEnv)

    def vstep(a):
        obs, r, term, trunc, _ = venv.step([a] if isinstance(a, str) else a[None])
        info = venv.last_infos[0]
        return {k: v[0] for k, v in obs.items()}, float(r[0]), term[0], trunc[0], info

    def vreset(s):
        obs, _ = venv.reset(seed=s)
        return {k: v[0] for k, v in obs.items()}, venv.last_infos[0]

    got = _episode(vstep, vreset, env_id, single.action_space, 3)
    for a, b in zip(want["obs"], got["obs"], strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert want["rewards"] == got["rewards"] and want["reports"] == got["reports"]
    assert want["final"] == got["final"]
    assert want["costs"].get("by_source") == got["costs"].get("by_source")
    assert np.mean(want["obs"][-1]["accuracy"]) > 0.05  # the student has learnt something


@pytest.mark.slow
@pytest.mark.parametrize("env_id", IDS)
def test_sub_envs_match_their_single_envs(env_id):
    """N = 2 with other seeds per sub-env: each sub-env is its single env bit for bit (a population member
    trains with its plain student's shapes on a CPU; see distillgym/students/population.py)."""
    seeds = [4, 5]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        venv = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **SMALL)
    single = _make(env_id)
    obs, _ = venv.reset(seed=seeds)
    infos = list(venv.last_infos)
    writers = []
    if env_id.endswith("SourcesOpen-v1"):
        from distillgym.teachers import make_teacher

        for i, s in enumerate(seeds):
            writers.append(make_teacher("scripted-writer", unverified=bool(s % 2)))
            writers[-1].reset(single.action_space, infos[i], seed=s)
    vec_obs = [obs]
    for k in range(2):
        acts = [w.act({kk: v[i] for kk, v in obs.items()}, infos[i]) for i, w in enumerate(writers)] if writers else \
            np.stack([_actions(env_id, single.action_space, 10 * s + k) for s in seeds])
        obs, r, term, trunc, _ = venv.step(acts)
        infos = list(venv.last_infos)
        vec_obs.append(obs)
    differing = 0
    for i, s in enumerate(seeds):
        want = _episode(lambda a: single.step(a), lambda x: single.reset(seed=x), env_id, single.action_space, s)
        for k, o in enumerate(want["obs"]):
            differing += int((vec_obs[k]["accuracy"][i] != o["accuracy"]).sum())
            np.testing.assert_array_equal(vec_obs[k]["budget_left"][i], o["budget_left"])
            if "source_spent" in o:
                np.testing.assert_array_equal(vec_obs[k]["source_spent"][i], o["source_spent"])
    assert differing == 0


# ---------------------------------------------------------------------------- teachers on the new ids
MIX_TEACHERS = ["stratified", "odm", "skill-it", "doremi", "aioli", "uniform", "ioa"]


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["distillgym/ArithTarget-v1", "distillgym/ArithSources-v1",
                                    "distillgym/ArithForget-v1"])
@pytest.mark.parametrize("name", MIX_TEACHERS)
def test_every_mix_teacher_and_a_cell_teacher_play_the_id(env_id, name, tmp_path, monkeypatch):
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher

    monkeypatch.setenv("DISTILLGYM_CACHE", str(tmp_path))  # DoReMi's reference run is cached here
    env = _make(env_id, budget=1024, examples_per_step=512)
    obs, info = env.reset(seed=1)
    teacher = adapt_teacher(make_teacher(name), info["level"])
    teacher.reset(env.action_space, info, seed=1)
    done = False
    while not done:
        action = teacher.act(obs, info)
        assert env.action_space.contains(action)
        obs, r, term, trunc, info = env.step(action)
        teacher.update(obs, r, term, trunc, info)
        done = term or trunc
    assert term and 0.0 <= info["final"]["test_accuracy"] <= 1.0


def test_stratified_on_the_sources_id_is_the_equal_mix_over_cells_and_sources():
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import MixToSourceMix, adapt_teacher

    env = _make("distillgym/ArithSources-v1")
    obs, info = env.reset(seed=0)
    first = info
    teacher = adapt_teacher(make_teacher("stratified"), info["level"])
    assert isinstance(teacher, MixToSourceMix)
    teacher.reset(env.action_space, info, seed=0)
    a = teacher.act(obs, info)
    assert a.shape == (7, 4, 3) and np.all(a == 1.0)
    obs, r, term, trunc, info = env.step(a)
    units = info["action"]["units_by_source"]
    assert max(units.values()) - min(units.values()) <= 1 and sum(units.values()) == 1024
    cell = adapt_teacher(make_teacher("uniform"), first["level"])  # a cell teacher: one cell, every source
    cell.reset(env.action_space, first, seed=0)
    a = cell.act(obs, info)
    assert (a.max(2) == 1.0).sum() == 1 and np.all(a.max(2) == a.min(2))


@pytest.mark.slow
def test_the_oracle_reference_plays_the_source_mix_level():
    """oracle-lookahead tries every (cell, source) one-hot and the equal mix over cells x sources."""
    from distillgym.harness.runner import run_episode
    from distillgym.teachers.oracle import OracleLookahead

    env = _make("distillgym/ArithSources-v1", budget=512, examples_per_step=512, n_val_per_cell=2,
                n_test_per_cell=2)
    oracle = OracleLookahead()
    oracle.bind_env(env)
    oracle.reset(env.action_space, env.reset(seed=0)[1], seed=0)
    labels = [label for label, _ in oracle.candidate_actions(1)]
    assert len(labels) == 7 * 4 * 3 + 1 and labels[0] == "copy L0 verified" and labels[-1] == "stratified"
    result = run_episode(env, "oracle-lookahead", seed=0)
    assert 0.0 <= result["final_test_accuracy"] <= 1.0
