"""``TeachingEnv``: the one environment core; every registered id is a thin registration of it.

One step, as data flows::

    action ──▶ level.decode(action) ──▶ Plan ──▶ engine.generate(plan, rng, split="train")  (cell, mix)
                                            └──▶ verify.check_lines(suite, lines)            (open)
           ──▶ verified examples ──▶ student.train(examples, rng) ──▶ evaluator(validation part)
           ──▶ observation, reward, info (text report, sampled errors, costs)

The parts are named or given as objects: a task suite (:mod:`distillgym.tasks`), a student
(:mod:`distillgym.students`), a data engine (:mod:`distillgym.engines`), an action level
(:mod:`distillgym.levels`) and a reward (:data:`REWARDS` or a callable). Parts come from small
registries, so this module imports no concrete student or engine class.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from distillgym.config import INIT_MODES, SPLIT_MODES, EnvConfig
from distillgym.engines import make_engine
from distillgym.errors import (
    ConfigError,
    DistillGymError,
    TrainingDivergedError,
)
from distillgym.feedback import Evaluator, SkillReport, eval_weight_matrix
from distillgym.levels import make_level
from distillgym.rewards import REWARDS
from distillgym.seeding import STREAM_EPISODE, STREAM_INIT, STREAM_TEST, STREAM_TRAIN, STREAM_VAL, rng_for
from distillgym.students import make_student
from distillgym.tasks import make_suite
from distillgym.tasks.arrays import ExampleArrays
from distillgym.tasks.checks import check_lines
from distillgym.types import EngineCost

__all__ = ["TeachingEnv", "EnvConfig", "Seconds", "REWARDS", "SPLIT_MODES", "INIT_MODES"]

LOSS_MAX = 100.0
"""Upper bound of the ``loss`` observation (nats per token; larger values are clipped)."""


class Seconds(float):
    """A wall-clock duration that compares equal to any other ``Seconds``.

    Timings measure the machine, not the environment, so two steps with the same seed and
    action return ``info`` dicts that compare equal (gymnasium's determinism check compares
    them) while still reporting the seconds. It is a ``float``, so ``info`` stays
    JSON-serialisable (``json.dumps`` writes the number)."""

    def __eq__(self, other: object) -> bool:
        return True if isinstance(other, Seconds) else float.__eq__(self, other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"Seconds({float(self):.3f})"


def _seconds(**values: float) -> dict[str, Seconds]:
    return {k: Seconds(v) for k, v in values.items()}


def _nan_to_none(m: np.ndarray) -> list:
    isfinite = math.isfinite
    return [[round(x, 6) if isfinite(x) else None for x in row] for row in np.asarray(m, dtype=np.float64).tolist()]


class TeachingEnv(gym.Env):
    """Teach a student language model: each step's action chooses its next training data.

    ## Description
    Each step, the action level turns the teacher's action into a plan of at most
    ``examples_per_step`` examples (``cell``: one skill x difficulty cell; ``mix``: an
    allocation over every cell; ``open``: the examples themselves, written as text). The data
    engine makes verified examples of the plan from the *train* part of the suite's item space
    (the open level checks the written lines instead), the student takes gradient steps on
    them, and is then evaluated on a validation set of ``n_val_per_cell`` items per cell from
    the *validation* part. The hidden test set (``n_test_per_cell`` items per cell from the
    *test* part, disjoint from train and validation by content) is scored only when the
    episode ends. With ``split=None`` (``ArithSkills-v0``) there is no content partition:
    validation and test sets come from disjoint seed streams of the whole item space, as in v0.

    ## Action Space
    Set by ``level`` (see :mod:`distillgym.levels`): ``cell`` ``MultiDiscrete([n_skills,
    n_difficulties])``; ``mix`` ``Box(-1, 1, (n_skills, n_difficulties), float32)``; ``open``
    ``Text`` with the suite's alphabet and newline (and the unverified-line prefix when
    ``level_kwargs`` gives ``line_costs``); ``source-mix`` ``Box(-1, 1, (n_skills, n_difficulties,
    n_sources), float32)``, a mix over cells x the data engine's sources (engine ``sources``), the
    budget and ``examples_per_step`` counted in budget units. Skill order is ``info["skills"]``.
    Stable-Baselines3's algorithms and SB3's env checker cannot take a ``Text`` action space, so the
    open level is for LLM agents and scripted writers; SB3's checker is run on the other levels only.

    ## Observation Space
    ``Dict``:
    - ``accuracy``: ``Box(0, 1, (n_skills, n_difficulties), float32)``, validation accuracy per
      cell (the suite's scoring rule; exact match for arithmetic);
    - ``reference``: ``Box(0, 1, (n_skills,), float32)``, the reference teacher's accuracy per
      skill (the data engine's measured accuracy, or the suite's solver);
    - ``budget_left``: ``Box(0, 1, (1,), float32)``, fraction of the budget not yet spent;
    - ``loss`` (when ``observe_loss``): ``Box(0, 100, (n_skills, n_difficulties), float32)``,
      validation loss per cell: the mean token cross-entropy of the gold answer (nats; clipped at 100);
    - ``target`` (with ``eval_weights``): ``Box(0, 1, (n_skills, n_difficulties), float32)``, the
      evaluation weights divided by their largest (constant over the episode);
    - ``source_spent`` (source-mix level, or open level with ``line_costs``): ``Box(0, 1, (n_sources,),
      float32)``, the share of the budget spent on each source so far (they sum to 1 - ``budget_left``).

    ``info["report"]`` is the text report (accuracy table, prerequisites, sampled errors with
    the student's own greedy answer and the gold answer); ``render()`` returns it. With
    ``report_loss`` (every v1 id) ``info["val_loss"]`` holds the validation loss per cell and
    ``info["train_cell_loss"]`` the step's training loss per cell (None where not trained).

    ## Rewards
    ``reward="delta_mean"`` (default): ``r_t = A_t - A_{t-1}``, ``A_t`` the mean over all cells of
    validation accuracy after step t (``A_0`` at reset), so the return is ``A_T - A_0``. With
    ``eval_weights`` ``A_t`` is the weighted mean (over the target cells), and so are
    ``info["mean_accuracy"]`` and ``info["final"]["test_accuracy"]`` (the test still scores every
    cell: ``test_accuracy_matrix``, and ``test_accuracy_all_cells`` is the plain mean). Also
    ``"sparse"``, ``"delta_min_skill"``, or a callable ``f(initial_report, previous_report,
    report, terminal)`` (see :mod:`distillgym.rewards`); ``terminal`` is True on the episode's last
    step, whether it ends by the budget (``terminated``) or by ``max_steps`` (``truncated``).

    ``info["costs"]``: the step's ``examples`` (verified examples trained on), ``charged``
    (budget spent), ``rejected`` and ``rejected_by_kind``, ``tokens`` (student training tokens),
    ``optimizer_steps``, ``student_flops``, the engine's ``engine_tokens_in``,
    ``engine_tokens_out`` and ``engine_calls``, and ``seconds`` by phase (:class:`Seconds`,
    equal to any other so that info stays deterministic); with sources (source-mix, or open with
    ``line_costs``) ``by_source``: per source the budget ``units`` spent, the ``examples`` trained on
    and how many of them were ``wrong`` (unverified answers reach the student). ``info["totals"]``
    sums them over the episode.

    ## Episode End
    Terminates when ``budget`` examples (budget units, with sources) have been charged (the last
    step may be smaller; the source-mix level charges every step's units whole).
    Truncates after ``max_steps`` steps (default ``4 * ceil(budget / examples_per_step)``; only
    reachable when an open-level teacher writes few lines). At either end ``info["final"]``
    holds the accuracy on the hidden test set, never shown to the teacher before.

    A step whose training raises (e.g. :class:`~distillgym.errors.TrainingDivergedError`)
    leaves the env's counters, budget and report as they were before the step; the error says
    whether the student's weights were changed, and the env then needs ``reset()``. So does a
    step whose evaluation (validation, test set at the end, reward) raises after training: the
    student has changed, the counters have not, and the env is marked broken until ``reset()``.

    ## Arguments
    The fields of :class:`~distillgym.config.EnvConfig` (one doc line each there), as keyword arguments
    (``gym.make`` passes its keyword arguments through) or as an ``EnvConfig``:

    - ``suite`` (name or :class:`~distillgym.tasks.base.TaskSuite`), ``suite_kwargs``;
    - ``student`` (name, a student object, or a dict of the tiny student's ``StudentConfig`` fields, as
      v0 took), ``student_kwargs``; ``engine`` (name or engine object), ``engine_kwargs``;
    - ``level`` (``"cell"``, ``"mix"``, ``"open"`` or ``"source-mix"``), ``level_kwargs``, ``reward`` (a name
      in ``REWARDS`` or a callable);
    - ``budget``, ``examples_per_step``, ``n_val_per_cell``, ``n_test_per_cell``, ``n_errors``, ``max_steps``;
    - ``split`` (``"content"`` or None), ``student_init`` (``"seed"`` or ``"fixed"``), ``observe_loss``,
      ``report_loss``, ``check_support`` (open level: reject lines outside the generator's support);
      ``device``, ``torch_threads``, ``render_mode`` (None or ``"ansi"``);
    - ``eval_weights``, ``validate_all_cells`` (target cells), ``warm_start`` (a stored student snapshot).

    ``env.config`` is the resolved configuration (every default filled in, JSON-able) that rebuilds
    the env and that results are hashed by; ``env.settings`` the validated ``EnvConfig``.

    ## Examples
    A short episode (two steps of 256 examples) of the default cell-level id:

    >>> import gymnasium as gym
    >>> import distillgym
    >>> env = gym.make("distillgym/ArithSkills-v1", budget=512, examples_per_step=256,
    ...                n_val_per_cell=2, n_test_per_cell=2, render_mode="ansi")
    >>> env.action_space
    MultiDiscrete([7 4])
    >>> obs, info = env.reset(seed=0)
    >>> sorted(obs), obs["accuracy"].shape, info["skills"][:3]
    (['accuracy', 'budget_left', 'reference'], (7, 4), ['copy', 'successor', 'add'])
    >>> obs, reward, terminated, truncated, info = env.step([2, 0])   # skill 2 (add), difficulty 0
    >>> info["action"]["skill"], info["costs"]["examples"], terminated
    ('add', 256, False)
    >>> obs, reward, terminated, truncated, info = env.step([0, 1])
    >>> terminated, 0.0 <= info["final"]["test_accuracy"] <= 1.0
    (True, True)
    >>> print(env.render().splitlines()[0])  # the text report: accuracy per skill and difficulty
    skill      needs          L0    L1    L2    L3    all   ref   gap

    The same core at the mix level, built from an ``EnvConfig``; a misspelt argument names the right one:

    >>> from distillgym.env import EnvConfig, TeachingEnv
    >>> env = TeachingEnv(EnvConfig(level="mix", budget=256, examples_per_step=256))
    >>> env.action_space, env.config["max_steps"], env.config["observe_loss"]
    (Box(-1.0, 1.0, (7, 4), float32), 4, True)
    >>> TeachingEnv(budgte=256)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    distillgym.errors.ConfigError: unknown TeachingEnv argument(s) ['budgte']: ... Did you mean 'budget'?

    ## Version History
    Registered ids and their versions are listed in :mod:`distillgym.envs`.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, config: EnvConfig | None = None, **kwargs: Any) -> None:
        owner = type(self).__name__
        settings = EnvConfig.from_kwargs(owner, config, **kwargs)
        if settings.torch_threads is not None:
            import torch

            torch.set_num_threads(int(settings.torch_threads))
        if isinstance(settings.reward, str):
            self.reward_name, self._reward_fn = settings.reward, REWARDS[settings.reward]
        else:
            self.reward_name, self._reward_fn = getattr(settings.reward, "__name__", "custom"), settings.reward

        self.suite = make_suite(settings.suite, **(settings.suite_kwargs or {}))
        if settings.split == "content" and self.suite.partition is None:
            raise ConfigError(
                f"suite {self.suite.name!r} has no content partition, so split='content' cannot hold out "
                "validation and test items by content; use a partitioned suite (e.g. 'arith-v1') or split=None"
            )
        S, D = len(self.suite.skills), self.suite.n_difficulties
        weights = eval_weight_matrix(settings.eval_weights, self.suite.skills, D)
        self.eval_weights: np.ndarray | None = weights
        """(n_skills, n_difficulties) evaluation weights, or None (every cell weighs 1)."""
        if weights is not None:  # recorded resolved, so equal weight specs give one config
            settings = dataclasses.replace(settings, eval_weights=weights.tolist())
        self.engine = make_engine(settings.engine, self.suite, **(settings.engine_kwargs or {}))
        level_kwargs = dict(settings.level_kwargs or {})
        if settings.level == "source-mix":
            if not (hasattr(self.engine, "sources") and hasattr(self.engine, "costs")):
                raise ConfigError(
                    f"the source-mix level needs a data engine with sources and their costs (engine='sources'), "
                    f"got engine {getattr(self.engine, 'name', self.engine)!r}"
                )
            if level_kwargs:
                raise ConfigError(f"the source-mix level takes its sources and costs from the engine "
                                  f"(engine_kwargs), not level_kwargs {sorted(level_kwargs)}")
            level_kwargs = {"sources": self.engine.sources, "costs": self.engine.costs}
        self.level = make_level(settings.level, self.suite, int(settings.examples_per_step), **level_kwargs)
        self.sources: tuple[str, ...] = tuple(getattr(self.level, "sources", ()) or ())
        """The data sources whose spending the observation shows (source-mix, open with line costs)."""
        self.settings = settings = settings.resolved(self.level.name, owner)
        """The validated :class:`~distillgym.config.EnvConfig`, with ``observe_loss`` and ``max_steps`` resolved."""
        self.budget = settings.budget
        self.examples_per_step = settings.examples_per_step
        self.n_val_per_cell = settings.n_val_per_cell
        self.n_test_per_cell = settings.n_test_per_cell
        self.n_errors = settings.n_errors
        self.split = settings.split
        self.student_init = settings.student_init
        self.render_mode = settings.render_mode
        self.report_loss = settings.report_loss
        self.observe_loss = settings.observe_loss
        self.max_steps = settings.max_steps
        self.check_support = settings.check_support
        self.validate_all_cells = bool(settings.validate_all_cells)

        self.student = self._make_student(settings)
        prepare = getattr(self.student, "prepare", None)
        if callable(prepare):
            prepare(self.suite, self.engine)  # e.g. a cached base pre-training
        if settings.student_init == "seed" and getattr(self.student, "fixed_base", False):
            raise ConfigError(
                "this student starts from a pre-trained base, which student_init='seed' would discard; "
                "use student_init='fixed' (or no base pre-training)"
            )
        self.warm_start_sha256: str | None = None
        """The checksum of the warm start's weights (:func:`distillgym.students.snapshots.weights_sha256`)."""
        if settings.warm_start is not None:
            from distillgym.students.snapshots import load, weights_sha256

            if not callable(getattr(self.student, "load_state", None)):
                raise ConfigError(f"warm_start needs a student with load_state (plain, tiny); "
                                  f"{getattr(self.student, 'name', self.student)!r} has none")
            warm = load(settings.warm_start)
            self.student.load_state(warm)  # the weights; a fresh optimiser, warm-up and replay buffer
            self.warm_start_sha256 = weights_sha256(warm)
        self._initial = self.student.snapshot()
        self._config = settings.record(self.suite, self.student, self.reward_name, self.engine, self._reward_fn)

        self.action_space = self.level.space
        obs: dict[str, spaces.Space] = {
            "accuracy": spaces.Box(0.0, 1.0, (S, D), np.float32),
            "reference": spaces.Box(0.0, 1.0, (S,), np.float32),
            "budget_left": spaces.Box(0.0, 1.0, (1,), np.float32),
        }
        if self.observe_loss:
            obs["loss"] = spaces.Box(0.0, LOSS_MAX, (S, D), np.float32)
        if weights is not None:
            obs["target"] = spaces.Box(0.0, 1.0, (S, D), np.float32)
        if self.sources:
            obs["source_spent"] = spaces.Box(0.0, 1.0, (len(self.sources),), np.float32)
        self.observation_space = spaces.Dict(obs)
        self._spent_by_source = np.zeros(len(self.sources), np.int64)
        self._report: SkillReport | None = None
        self._initial_report: SkillReport | None = None
        self._spent = 0
        self._t = 0
        self._episode_seed = 0
        self._done = True
        self._broken: str | None = None
        self._totals: dict[str, float] = {}
        self._test_evaluator: Evaluator | None = None

    # ------------------------------------------------------------------ construction helpers
    def _make_student(self, settings: EnvConfig) -> Any:
        student, kwargs = settings.student, dict(settings.student_kwargs or {})
        if settings.v0_student:
            # v0's API: a dict (or StudentConfig) of the tiny student's config fields
            if isinstance(student, dict):
                kwargs = {**student, **kwargs}
            elif student is not None:
                kwargs["config"] = student
            student = "tiny"
        if settings.device is not None and isinstance(student, str):
            kwargs["device"] = settings.device
        return make_student(student, self.suite, **kwargs)

    @property
    def config(self) -> dict[str, Any]:
        """Every setting that determines the dynamics, defaults filled in (JSON-able): the
        constructor arguments that rebuild this env, ``TeachingEnv(**EnvConfig.rebuild_kwargs(env.config))``,
        when ``config["rebuildable"]``, and ``parts`` (each part's class; see :meth:`EnvConfig.record`)."""
        return json.loads(json.dumps(self._config))

    # ------------------------------------------------------------------ helpers
    def _held_out_requests(self, stream: int, n: int, only_weighted: bool = False
                           ) -> list[tuple[np.random.Generator, list[tuple[str, int, int]]]]:
        """The requests of a held-out set: one ``(rng, [(skill, difficulty, n)])`` per cell, skill-major,
        each cell drawn from its own stream ``(episode seed, stream, skill, difficulty)``; with
        ``only_weighted`` the cells of evaluation weight 0 are left out (each cell has its own
        stream: leaving one out changes no other)."""
        return [(rng_for(self._episode_seed, stream, i, d), [(s, d, n)])
                for i, s in enumerate(self.suite.skills) for d in range(self.suite.n_difficulties)
                if not (only_weighted and self.eval_weights is not None and self.eval_weights[i, d] <= 0)]

    def _cells_set(self, stream: int, n: int, split: str | None, only_weighted: bool = False) -> Sequence[Any]:
        """``n`` items of every cell (skill-major; the cells of weight > 0 only with ``only_weighted``),
        each cell from its own stream; distinct items of the split's part with ``split``. A suite with
        ``generate_many`` (arith-v2) draws every cell in one vectorised call, as arrays: the same items
        as one call per cell."""
        if split is not None and callable(getattr(self.suite, "generate_many", None)):
            parts = self.suite.generate_many(self._held_out_requests(stream, n, only_weighted), split=split,
                                             distinct=True)
            return ExampleArrays.concat(parts, self.suite.skills)
        out: list[Any] = []
        for i, s in enumerate(self.suite.skills):
            for d in range(self.suite.n_difficulties):
                if only_weighted and self.eval_weights is not None and self.eval_weights[i, d] <= 0:
                    continue  # each cell has its own stream: skipping one changes no other
                rng = rng_for(self._episode_seed, stream, i, d)
                if split is None:
                    out.extend(self.suite.generate(s, d, rng, n))
                else:
                    out.extend(self.suite.generate(s, d, rng, n, split=split, distinct=True))
        return out

    def _engine_reference(self) -> np.ndarray | None:
        return self.engine.reference_accuracy(self.suite) if hasattr(self.engine, "reference_accuracy") else None

    def _evaluator(self, examples: Sequence[Any], n_errors: int, reference: np.ndarray | None = None) -> Evaluator:
        """An evaluator of ``examples`` with the env's evaluation weights; the reference accuracy is
        ``reference``, else the engine's, else the suite's solver's on these items."""
        if reference is None:
            reference = self._engine_reference()
        return Evaluator(self.suite, examples, n_errors, reference=reference, want_loss=self.report_loss,
                         weights=self.eval_weights)

    @property
    def _test(self) -> Evaluator:
        """The hidden test set's evaluator, drawn when first needed (at the episode's end): its
        items depend on the episode seed only, so drawing it then gives the items a draw at reset
        would have given."""
        if self._test_evaluator is None:
            self._test_evaluator = self._evaluator(
                self._cells_set(STREAM_TEST, self.n_test_per_cell, "test" if self.split else None), 0)
        return self._test_evaluator

    def _obs(self) -> dict[str, np.ndarray]:
        if self._report is None:
            raise ConfigError("call reset() before reading an observation")
        obs = {
            "accuracy": self._report.accuracy.astype(np.float32),
            "reference": np.clip(self._report.reference, 0, 1).astype(np.float32),
            "budget_left": np.array([self.budget_left / self.budget], dtype=np.float32),
        }
        if self.observe_loss:
            loss = self._report.loss if self._report.loss is not None else np.zeros(self._report.accuracy.shape)
            obs["loss"] = np.clip(loss, 0, LOSS_MAX).astype(np.float32)
        if self.eval_weights is not None:
            obs["target"] = (self.eval_weights / self.eval_weights.max()).astype(np.float32)
        if self.sources:
            obs["source_spent"] = np.clip(self._spent_by_source / self.budget, 0, 1).astype(np.float32)
        return obs

    @property
    def budget_left(self) -> int:
        return self.budget - self._spent

    def decode_action(self, action: Any) -> Any:
        """The step's plan for ``action`` (raises :class:`InvalidActionError`). For the cell
        level this is the single :class:`~distillgym.types.PlanItem`, as in v0."""
        plan = self.level.decode(action, min(self.examples_per_step, self.budget_left))
        return plan.items[0] if self.level.name == "cell" else plan

    def static_info(self) -> dict[str, Any]:
        """What a teacher may know about the environment (no gold answers)."""
        info = {
            "suite": self.suite.name,
            "suite_description": self.suite.description,
            "skill_descriptions": dict(self.suite.skill_descriptions),
            "skills": list(self.suite.skills),
            "prerequisites": {s: list(p) for s, p in self.suite.prerequisites.items()},
            "n_difficulties": self.suite.n_difficulties,
            "examples_per_step": self.examples_per_step,
            "budget": self.budget,
            "level": self.level.name,
            "action": self.level.describe(),
            "split": self.split,
            "unpartitioned_cells": [list(c) for c in self.suite.unpartitioned_cells()] if self.split else None,
            "env_config": self.config,
        }
        if self.eval_weights is not None:
            w = self.eval_weights
            info["eval_weights"] = w.tolist()
            info["targets"] = [[s, d] for i, s in enumerate(self.suite.skills) for d in range(w.shape[1]) if w[i, d] > 0]
        if self.sources:
            info["sources"] = list(self.sources)
        if self.warm_start_sha256 is not None:
            info["warm_start"] = {"name": self.settings.warm_start, "sha256": self.warm_start_sha256}
        return info

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._begin_reset(seed)
        self._val = self._val_evaluator(self._cells_set(STREAM_VAL, self.n_val_per_cell, "val" if self.split else None,
                                                        self._val_only_weighted))
        report = self._val.evaluate(self.student, rng_for(self._episode_seed, STREAM_EPISODE, 0))
        return self._finish_reset(report)

    def _begin_reset(self, seed: int | None) -> None:
        """A reset's first half: seeding, the episode seed, the student's initial state, counters."""
        super().reset(seed=seed)
        self._episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        if self.student_init == "seed":
            init_seed = int(rng_for(self._episode_seed, STREAM_INIT).integers(0, 2**31 - 1))
            self.student.reinit(init_seed)
        else:
            self.student.restore(self._initial)
        self._spent, self._t, self._done, self._broken = 0, 0, False, None
        self._totals = {}
        self._spent_by_source = np.zeros(len(self.sources), np.int64)
        self._by_source_totals: dict[str, dict[str, int]] = {}
        self._report = self._initial_report = None
        self._test_evaluator = None

    @property
    def _val_only_weighted(self) -> bool:
        """Whether the validation set holds the target cells only (evaluation weights without
        ``validate_all_cells``)."""
        return not self.validate_all_cells and self.eval_weights is not None

    def _val_evaluator(self, examples: Sequence[Any]) -> Evaluator:
        """The episode's validation evaluator on ``examples`` (drawn by ``_cells_set(STREAM_VAL, ...)``).
        Without an engine reference, a validation set of the target cells only takes its reference
        accuracy from the test set (which has every cell)."""
        reference = self._engine_reference()
        if reference is None and self._val_only_weighted:
            reference = self._test.reference
        return self._evaluator(examples, self.n_errors, reference=reference)

    def _finish_reset(self, report: SkillReport, render: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """A reset's second half, from the starting evaluation: the observation and the reset info."""
        self._report = self._initial_report = report
        info = self.static_info()
        info.update(self._report_info(report, render))
        return self._obs(), info

    def _report_info(self, report: SkillReport, render: bool = True, budget_left: int | None = None) -> dict[str, Any]:
        """The report's part of ``info``; without ``render`` no ``"report"`` text (the native vector
        env builds it when read)."""
        left = self.budget_left if budget_left is None else budget_left
        info: dict[str, Any] = {"report": report.render(left)} if render else {}
        info.update({
            "errors": report.errors,
            "mean_accuracy": report.mean_accuracy,
            "skill_accuracy": report.skill_accuracy.tolist(),
            "budget_left": left,
        })
        if report.weights is not None:
            info["mean_accuracy_all_cells"] = report.mean_accuracy_all_cells
        if report.loss is not None:
            info["val_loss"] = _nan_to_none(report.loss)
        return info

    def _make_examples(self, plan: Any, rng: np.random.Generator) -> tuple[list[Any], EngineCost, int, dict]:
        """The plan's examples (verified, or from unverified sources), the cost, the budget charged, and action info."""
        if plan.lines is not None:
            t0 = time.perf_counter()
            checked = check_lines(self.suite, plan.lines, max_lines=plan.max_lines, check_leaks=bool(self.split),
                                  support=self.check_support, line_costs=plan.line_costs,
                                  unverified_prefix=plan.unverified_prefix)
            checked.cost.seconds = time.perf_counter() - t0
            extra = {"lines": checked.lines, "accepted": len(checked.examples), "rejected": checked.counts}
            extra["rejected"].pop("accepted")
            if plan.line_costs is not None:
                extra["units"] = checked.charged
                extra["unverified_wrong"] = checked.unverified_wrong
            return checked.examples, checked.cost, checked.charged, extra
        examples, cost = self.engine.generate(plan.items, rng, split=self._train_split)
        return self._charge(plan, examples, cost)

    @property
    def _train_split(self) -> str | None:
        return "train" if self.split else None

    def _charge(self, plan: Any, examples: Any, cost: EngineCost) -> tuple[Any, EngineCost, int, dict]:
        """An engine's examples of an item plan, their cost, the budget charged, and action info
        (the native vector env calls this with the examples of its batched engine call)."""
        charged = plan.charge if plan.charge is not None else sum(item.n for item in plan.items)
        return examples, cost, charged, {}

    def _source_costs(self, plan: Any, cost: EngineCost) -> dict[str, dict[str, int]]:
        """Per source: budget units spent this step, examples trained on, wrong ones among them."""
        units = plan.info.get("units_by_source") or {}  # source-mix; the open level's line check counts its own
        out = {}
        for s in self.sources:
            got = cost.by_source.get(s, {})
            out[s] = {"units": int(units.get(s, got.get("units", 0))), "examples": int(got.get("examples", 0)),
                      "wrong": int(got.get("wrong", 0))}
        return out

    # ------------------------------------------------------------------ the step's phases
    def _check_can_step(self) -> None:
        if self._broken is not None:
            raise ConfigError(f"the last step failed ({self._broken}); call reset() to start a new episode")
        if self._report is None or self._initial_report is None:
            raise ConfigError("call reset() before step()")
        if self._done:
            raise ConfigError("the episode has ended (budget spent); call reset() to start a new one")

    def _decode(self, action: Any) -> Any:
        """The step's plan (raises :class:`InvalidActionError`; nothing changes)."""
        return self.level.decode(action, min(self.examples_per_step, self.budget_left))

    def _train_rng(self, t: int) -> np.random.Generator:
        return rng_for(self._episode_seed, STREAM_TRAIN, t)

    def _report_rng(self, t: int) -> np.random.Generator:
        return rng_for(self._episode_seed, STREAM_EPISODE, t)

    def _ends(self, charged: int, t: int) -> bool:
        """Whether a step ``t`` that charges ``charged`` ends the episode (terminated or truncated)."""
        return self.budget_left - charged <= 0 or t >= self.max_steps

    def _train_failed(self, err: BaseException, t: int, n_examples: int) -> BaseException:
        """Mark the env broken after step ``t``'s training raised ``err``; the error to raise."""
        self._broken = f"{type(err).__name__} at step {t}"
        if not isinstance(err, DistillGymError):
            return err
        applied = getattr(err, "applied", None)
        changed = (
            "the student's weights were not changed"
            if applied == 0
            else f"{applied} optimiser step(s) had already changed the student's weights"
            if applied
            else "the student's weights may have changed"
        )
        msg = (
            f"{err} [env: step {t} failed while training on {n_examples} examples; {changed}; the env's "
            f"step counter, budget ({self.budget_left} left) and report were not advanced; call reset()]"
        )
        try:
            wrapped = type(err)(msg, *([applied] if applied is not None else []))
        except TypeError:  # an error class with another constructor
            wrapped = TrainingDivergedError(msg, applied or 0)
        return wrapped

    def _after_training_failed(self, err: BaseException, t: int, what: str) -> BaseException:
        """Mark the env broken after step ``t`` trained the student but failed ``what`` (evaluating,
        scoring the test set, computing the reward): the student has changed, the counters have not."""
        self._broken = f"{type(err).__name__} while {what} step {t}"
        note = (f"[env: step {t} trained the student but failed while {what} it; the env's step counter, "
                f"budget ({self.budget_left} left) and report were not advanced; call reset()]")
        if isinstance(err, DistillGymError):
            try:
                return type(err)(f"{err} {note}")
            except TypeError:
                pass
        if hasattr(err, "add_note"):
            err.add_note(note)
        return err

    def step(self, action: Any):
        t_start = time.perf_counter()
        self._check_can_step()
        plan = self._decode(action)
        t = self._t + 1
        rng = self._train_rng(t)
        examples, cost, charged, extra = self._make_examples(plan, rng)
        try:
            train = self.student.train(examples, rng)
        except Exception as err:
            wrapped = self._train_failed(err, t, len(examples))
            if wrapped is err:
                raise
            raise wrapped from err
        what = "evaluating"
        try:
            report = self._val.evaluate(self.student, self._report_rng(t))
            test = None
            if self._ends(charged, t):
                what = "scoring the test set of"
                t0 = time.perf_counter()
                test = self._test.evaluate(self.student)
                test.seconds = time.perf_counter() - t0
            what = "finishing"
            return self._commit(t, plan, extra, cost, charged, train, report, test, t_start)
        except Exception as err:
            wrapped = self._after_training_failed(err, t, what)
            if wrapped is err:
                raise
            raise wrapped from err

    def _commit(self, t: int, plan: Any, extra: dict, cost: EngineCost, charged: int, train: Any,
                report: SkillReport, test: SkillReport | None, t_start: float, render: bool = True,
                seconds: dict[str, float] | None = None):
        """Step ``t``'s result from its parts (the evaluation ``report``, and ``test`` when the step
        ends the episode): the reward and ``info`` are computed first, then the env's counters,
        budget and report advance together. Returns gymnasium's step tuple; without ``render`` the
        info has no ``"report"`` text (the native vector env builds it when read)."""
        spent = self._spent + charged
        left = self.budget - spent
        terminated = left <= 0
        truncated = not terminated and t >= self.max_steps
        done = terminated or truncated
        if done and test is None:
            raise ConfigError(f"step {t} ends the episode but no test report was given")
        prev = self._report
        # terminal: the episode ends here, by the budget or by max_steps (a truncated episode ends too)
        reward = float(self._reward_fn(self._initial_report, prev, report, done))

        info = self._report_info(report, render, budget_left=left)
        info["action"] = {**plan.info, **extra, "n": charged}
        info["train_loss"] = train.loss if math.isfinite(train.loss) else None  # None: nothing was trained
        if self.report_loss:
            S, D = len(self.suite.skills), self.suite.n_difficulties
            cell = np.full((S, D), np.nan)
            pos = self.__dict__.setdefault("_skill_pos", {name: i for i, name in enumerate(self.suite.skills)})
            for (skill, d), v in (train.cell_loss or {}).items():
                cell[pos[skill] if skill in pos else self.suite.skill_index(skill), d] = v
            info["train_cell_loss"] = _nan_to_none(cell)
        flops = float(getattr(train, "flops", 0.0) or 0.0)
        costs = {
            "examples": cost.examples,
            "charged": charged,
            "rejected": cost.rejected,
            "rejected_by_kind": dict(cost.rejected_by_kind),
            "tokens": train.tokens,
            "optimizer_steps": train.optimizer_steps,
            "student_flops": flops,
            "engine_tokens_in": cost.tokens_in,
            "engine_tokens_out": cost.tokens_out,
            "engine_calls": cost.calls,
        }
        totals = dict(self._totals)
        for k, v in costs.items():
            if k not in ("rejected_by_kind", "by_source"):
                totals[k] = totals.get(k, 0) + v
        by_source = self._source_costs(plan, cost) if self.sources else None
        spent_by_source, by_source_totals = self._spent_by_source, self._by_source_totals
        if by_source is not None:
            spent_by_source = spent_by_source + np.array([by_source[s]["units"] for s in self.sources], np.int64)
            by_source_totals = {s: dict(v) for s, v in by_source_totals.items()}
            for s, counts in by_source.items():
                tot = by_source_totals.setdefault(s, {})
                for k, v in counts.items():
                    tot[k] = tot.get(k, 0) + v
            costs["by_source"] = by_source
        info["costs"] = costs
        info["totals"] = dict(totals)
        if by_source is not None:
            info["totals"]["by_source"] = {s: dict(v) for s, v in by_source_totals.items()}
        phase = {"generate": cost.seconds, "train": train.seconds, "evaluate": report.seconds}
        if test is not None:
            phase["test"] = test.seconds
            info["final"] = {
                "test_accuracy": test.mean_accuracy,
                "test_accuracy_matrix": test.accuracy.round(6).tolist(),
                "test_skill_accuracy": test.skill_accuracy.round(6).tolist(),
                "reference_test_accuracy": float(test.reference.mean()),
                "val_accuracy_start": self._initial_report.mean_accuracy,  # type: ignore[union-attr]
                "val_accuracy_end": report.mean_accuracy,
                "examples": spent,
                "steps": t,
            }
            if self.eval_weights is not None:
                info["final"]["test_accuracy_all_cells"] = test.mean_accuracy_all_cells
            if test.loss is not None:
                info["final"]["test_loss_matrix"] = _nan_to_none(test.loss)
        phase.update(seconds or {})
        costs["seconds"] = _seconds(**phase, total=time.perf_counter() - t_start)
        # every part computed: the env advances
        self._t, self._spent, self._report, self._done, self._totals = t, spent, report, done, totals
        self._spent_by_source, self._by_source_totals = spent_by_source, by_source_totals
        return self._obs(), reward, terminated, truncated, info

    # ------------------------------------------------------------------ look-ahead
    def snapshot(self) -> dict[str, Any]:
        """The episode's whole state (student, counters, budget, report), for look-ahead: a step
        after :meth:`restore` of a snapshot is the step that would have followed it. The random
        streams need no saving: a step's generator is derived from the episode seed and the step
        index."""
        if self._report is None:
            raise ConfigError("call reset() before snapshot()")
        return {
            "student": self.student.snapshot(),
            "spent": self._spent,
            "t": self._t,
            "done": self._done,
            "broken": self._broken,
            "report": self._report,
            "totals": dict(self._totals),
            "episode_seed": self._episode_seed,
            "spent_by_source": self._spent_by_source.copy(),
            "by_source_totals": {s: dict(v) for s, v in self._by_source_totals.items()},
        }

    def restore(self, snap: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot` of this episode."""
        if snap.get("episode_seed") != self._episode_seed:
            raise ConfigError("that snapshot belongs to another episode (reset() since); take a new one")
        self.student.restore(snap["student"])
        self._spent, self._t, self._done, self._broken = snap["spent"], snap["t"], snap["done"], snap["broken"]
        self._report = snap["report"]
        self._totals = dict(snap["totals"])
        self._spent_by_source = np.array(snap.get("spent_by_source", self._spent_by_source * 0), np.int64)
        self._by_source_totals = {s: dict(v) for s, v in snap.get("by_source_totals", {}).items()}

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._report is None:
            return "(reset() not called yet)"
        return self._report.render(self.budget_left)
