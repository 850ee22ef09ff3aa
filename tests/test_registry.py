"""Registry-wide invariants: every registered env id passes both env checkers and replays
bit-identically from a seed; every suite's content partition holds for every cell that claims it;
no validation or test prompt is ever trained on; vector envs match single envs."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("torch")

import distillgym  # noqa: E402,F401
from distillgym import ENV_IDS  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.tasks import SUITES, make_suite  # noqa: E402

SMALL = dict(budget=2048, examples_per_step=512, n_val_per_cell=8, n_test_per_cell=8)
TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


def _make(env_id, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*out of date.*")
        return gym.make(env_id, **kwargs)


def _level(env_id) -> str:
    return gym.spec(env_id).kwargs.get("level", "cell")


# ---------------------------------------------------------------------------- checkers
@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version:UserWarning")
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id):
    """Gymnasium's checker, including its determinism and render-mode checks."""
    from gymnasium.utils.env_checker import check_env

    check_env(_make(env_id, **SMALL).unwrapped)


SB3_SKIP = "SB3's checker cannot take a Text action space (the open level's action is text)"


@pytest.mark.parametrize(
    "env_id",
    [pytest.param(e, marks=pytest.mark.skip(reason=SB3_SKIP)) if _level(e) == "open" else e for e in ENV_IDS],
)
def test_sb3_check_env(env_id):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.env_checker import check_env

    env = _make(env_id, **SMALL)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*unconventional shape.*")
        check_env(env, warn=True)
    env.close()


def test_the_env_docstring_says_why_sb3_cannot_check_the_open_level():
    from distillgym.env import TeachingEnv

    assert isinstance(_make("distillgym/ArithOpen-v1", **TINY).action_space, gym.spaces.Text)
    assert "SB3's env checker" in TeachingEnv.__doc__ and "Text" in TeachingEnv.__doc__


# ---------------------------------------------------------------------------- determinism
def _rollout(env_id, seed):
    env = _make(env_id, **TINY)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    out = {"obs": [obs], "rewards": [], "reports": [info["report"]], "losses": []}
    while True:
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out["obs"].append(obs)
        out["rewards"].append(r)
        out["reports"].append(info["report"])
        out["losses"].append(info["train_loss"])
        if term or trunc:
            out["final"] = info["final"]
            return out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_rollout_is_bit_identical(env_id):
    a, b = _rollout(env_id, 11), _rollout(env_id, 11)
    assert len(a["obs"]) == len(b["obs"])
    for oa, ob in zip(a["obs"], b["obs"], strict=True):
        for k in oa:
            assert np.array_equal(oa[k], ob[k]), k
    assert a["rewards"] == b["rewards"] and a["reports"] == b["reports"] and a["losses"] == b["losses"]
    assert a["final"] == b["final"]
    c = _rollout(env_id, 12)
    assert c["reports"][0] != a["reports"][0]  # another seed: other validation items


# ---------------------------------------------------------------------------- partition
PARTITIONED_CELLS = [
    pytest.param(name, skill, d, id=f"{name}-{skill}-L{d}")
    for name in sorted(SUITES)
    for skill, d in make_suite(name).cells
    if make_suite(name).partitioned(skill, d)
]


@pytest.mark.parametrize("name,skill,level", PARTITIONED_CELLS)
def test_train_validation_and_test_prompts_never_coincide(name, skill, level):
    """For every suite and every cell that claims a content partition: a few thousand draws of each
    part share no prompt, and each drawn prompt lies in the part it was drawn for."""
    suite = make_suite(name)
    i = suite.skill_index(skill)
    parts = {}
    for j, split in enumerate(("train", "val", "test")):
        n = 3000 if split == "train" else 600
        ex = suite.generate(skill, level, rng_for(5, 90 + j, i, level), n, split=split)
        assert len(ex) == n and all(suite.part_of(e.prompt) == split for e in ex)
        parts[split] = {e.prompt for e in ex}
    assert not parts["train"] & parts["val"]
    assert not parts["train"] & parts["test"]
    assert not parts["val"] & parts["test"]


@pytest.mark.parametrize("name", sorted(SUITES))
def test_every_cell_is_partitioned_or_reported(name):
    suite = make_suite(name)
    if suite.partition is None:
        assert suite.unpartitioned_cells() == []
        return
    for skill, d in suite.cells:
        size = suite.cell_size(skill, d)
        assert suite.partitioned(skill, d) == (size is None or size >= 200)
    assert suite.unpartitioned_cells() == [c for c in suite.cells if not suite.partitioned(*c)]


def test_arith_v1_cell_sizes_are_counted_exactly():
    """The declared sizes of the smaller cells equal the number of distinct prompts seen when
    sampling far more draws than the cell has items."""
    suite = make_suite("arith-v1")
    for skill, d in [("copy", 0), ("successor", 0), ("add", 0), ("sub", 0), ("mul", 0), ("compare", 0), ("chain", 0)]:
        size = suite.cell_size(skill, d)
        assert size >= 900
        seen = {e.prompt for e in suite.generate(skill, d, rng_for(1, 2, 3), 40 * size)}
        assert len(seen) == size, (skill, d, len(seen), size)
        assert all(suite.classify(p) == (skill, d) for p in list(seen)[:500])


@pytest.mark.parametrize("env_id", [e for e in ENV_IDS if gym.spec(e).kwargs.get("split") == "content"])
def test_no_test_or_validation_prompt_is_trained_on(env_id):
    """Over a small episode of every v1 id: every example the student trains on comes from the train
    part, and none of them is a validation or test prompt (measured: the overlap is 0)."""
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher

    env = _make(env_id, **SMALL).unwrapped
    trained: list = []
    original = env.student.train

    def spy(examples, rng=None, **kw):
        trained.extend(examples)
        return original(examples, rng, **kw)

    env.student.train = spy
    obs, info = env.reset(seed=0)
    teacher = adapt_teacher(make_teacher("uniform"), info["level"])
    teacher.reset(env.action_space, info, seed=0)
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(teacher.act(obs, info))
        done = term or trunc
    held_out = {e.prompt for e in env._val.examples} | {e.prompt for e in env._test.examples}
    assert trained and {e.prompt for e in trained}.isdisjoint(held_out)
    assert all(env.suite.part_of(e.prompt) == "train" for e in trained)
    assert all(env.suite.part_of(e.prompt) == "val" for e in env._val.examples)
    assert all(env.suite.part_of(e.prompt) == "test" for e in env._test.examples)


# ---------------------------------------------------------------------------- levels agree
def test_one_hot_mix_trains_exactly_what_the_cell_action_trains():
    """ArithMix-v1 with the one-hot mix of a cell replays ArithSkills-v1 with that cell's action,
    bit for bit (the documented cell-teacher adapter relies on it)."""
    from distillgym.levels import mix_to_action

    actions = [(2, 0), (0, 1), (5, 2), (6, 3)]
    cell = _make("distillgym/ArithSkills-v1", **SMALL)
    mix = _make("distillgym/ArithMix-v1", **SMALL)
    oc, _ = cell.reset(seed=4)
    om, _ = mix.reset(seed=4)
    for s, d in actions:
        onehot = np.zeros((7, 4))
        onehot[s, d] = 1
        oc, rc, *_ , ic = cell.step(np.array([s, d]))
        om, rm, *_ , im = mix.step(mix_to_action(onehot))
        assert rc == rm and np.array_equal(oc["accuracy"], om["accuracy"]) and ic["train_loss"] == im["train_loss"]
        assert im["action"]["allocation"][s][d] == SMALL["examples_per_step"]
    assert ic["final"] == im["final"]


# ---------------------------------------------------------------------------- vector envs
@pytest.mark.slow
def test_async_vector_env_matches_single_envs():
    """``gymnasium.make_vec(..., vectorization_mode="async")`` with spawned workers: each sub-env's
    rewards over a whole episode equal a single env's run with the same seed and actions."""
    env_id = "distillgym/ArithSkills-v1"
    seeds = [3, 4]
    actions = [np.array([[2, 0], [0, 1]]), np.array([[5, 1], [6, 0]])]
    venv = gym.make_vec(
        env_id, num_envs=2, vectorization_mode="async", vector_kwargs={"context": "spawn"}, torch_threads=1, **TINY
    )
    try:
        venv.reset(seed=seeds)
        vec_rewards, vec_final = [], None
        for a in actions:
            obs, r, term, trunc, info = venv.step(a)
            vec_rewards.append(r.tolist())
        assert term.all()
        vec_final = info["final"]
    finally:
        venv.close()
    for k, seed in enumerate(seeds):
        env = _make(env_id, **TINY)
        env.reset(seed=seed)
        rewards = []
        for a in actions:
            _, r, term, _, info = env.step(a[k])
            rewards.append(r)
        assert rewards == [row[k] for row in vec_rewards]
        assert info["final"]["test_accuracy"] == vec_final["test_accuracy"][k]
