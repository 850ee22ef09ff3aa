"""``distillgym/ArithSkills-v0``: teach a small transformer arithmetic, one data choice a step."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from distillgym.engines import ProceduralEngine
from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError, check_int, did_you_mean
from distillgym.feedback import Evaluator, SkillReport
from distillgym.seeding import STREAM_EPISODE, STREAM_TEST, STREAM_TRAIN, STREAM_VAL, rng_for
from distillgym.tasks import make_suite
from distillgym.types import PlanItem

__all__ = ["ArithSkillsEnv", "REWARDS", "PhaseSeconds"]


class PhaseSeconds(Mapping[str, float]):
    """Wall-clock seconds of one step, by phase (generate, train, evaluate, [test,] total).

    A read-only mapping (``secs["train"]``, ``dict(secs)``). Any two ``PhaseSeconds``
    compare equal: wall-clock time measures the machine, not the environment, so two
    steps with the same seed and action return equal ``info`` dicts (which gymnasium's
    determinism check asserts) while the timings are still reported."""

    def __init__(self, **seconds: float) -> None:
        self._seconds = {k: float(v) for k, v in seconds.items()}

    def __getitem__(self, key: str) -> float:
        return self._seconds[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._seconds)

    def __len__(self) -> int:
        return len(self._seconds)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhaseSeconds)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PhaseSeconds({', '.join(f'{k}={v:.3f}' for k, v in self._seconds.items())})"

RewardFn = Callable[[SkillReport, SkillReport, SkillReport, bool], float]


def _delta_mean(initial: SkillReport, prev: SkillReport, now: SkillReport, terminal: bool) -> float:
    return now.mean_accuracy - prev.mean_accuracy


def _sparse(initial: SkillReport, prev: SkillReport, now: SkillReport, terminal: bool) -> float:
    return now.mean_accuracy - initial.mean_accuracy if terminal else 0.0


def _delta_min_skill(initial: SkillReport, prev: SkillReport, now: SkillReport, terminal: bool) -> float:
    return float(now.skill_accuracy.min() - prev.skill_accuracy.min())


REWARDS: dict[str, RewardFn] = {
    "delta_mean": _delta_mean,
    "sparse": _sparse,
    "delta_min_skill": _delta_min_skill,
}

_STREAM_PRETRAIN = 5


class ArithSkillsEnv(gym.Env):
    """Teach a small causal transformer the built-in arithmetic skills.

    ## Description
    Each step the teacher picks one (skill, difficulty) cell. The procedural engine makes
    ``examples_per_step`` verified examples of it, the student (a small Llama
    config transformer, ~84k parameters, see :class:`distillgym.students.tiny.StudentConfig`) takes AdamW
    steps on them, and is then evaluated on a validation set of ``n_val_per_cell`` items per
    cell. The student starts every episode from the same weights (kept in memory).

    ## Action Space
    ``MultiDiscrete([n_skills, n_difficulties])``: ``[skill index, difficulty level]``; skill
    order is ``info["skills"]`` (for ``arith``: copy, successor, add, sub, mul, compare, chain).

    ## Observation Space
    ``Dict``:
    - ``accuracy``: ``Box(0, 1, (n_skills, n_difficulties), float32)``, validation exact match per cell;
    - ``reference``: ``Box(0, 1, (n_skills,), float32)``, the reference teacher's accuracy per skill;
    - ``budget_left``: ``Box(0, 1, (1,), float32)``, fraction of the example budget not yet spent.

    The text report (accuracy table, prerequisites, sampled errors with the student's own
    greedy answer) is in ``info["report"]`` and is what ``render()`` returns.

    ## Rewards
    ``reward="delta_mean"`` (default): ``r_t = A_t - A_{t-1}`` where ``A_t`` is the mean over
    all skill x difficulty cells of validation exact-match accuracy after step t (``A_0`` at
    reset), so the episode return is ``A_T - A_0``. Alternatives: ``"sparse"`` (0, then
    ``A_T - A_0`` on the last step) and ``"delta_min_skill"`` (change of the weakest skill's
    accuracy); or pass a callable ``f(initial_report, previous_report, report, terminal)``.

    ``info["costs"]`` reports the step's examples, rejected examples, training tokens and
    optimiser steps, and ``info["costs"]["seconds"]`` the wall-clock seconds by phase (a
    :class:`PhaseSeconds` mapping, equal to any other so that info stays deterministic).

    ## Episode End
    Terminates when ``budget`` examples have been spent (the last step may use fewer than
    ``examples_per_step``). Then ``info["final"]`` holds the accuracy on a hidden test set of
    ``n_test_per_cell`` items per cell, drawn from a seed stream disjoint from validation
    and never shown to the teacher. No truncation.

    ## Arguments
    - ``suite``: task suite name (``"arith"``).
    - ``budget``: training examples per episode (default 49152, i.e. 24 steps).
    - ``examples_per_step``: examples per action (default 2048).
    - ``n_val_per_cell`` / ``n_test_per_cell``: validation / test items per cell (32 / 64).
    - ``n_errors``: sampled errors in each report (8).
    - ``reward``: a name in ``REWARDS`` or a callable (see Rewards).
    - ``student``: a dict of :class:`StudentConfig` fields (or a ``StudentConfig``).
    - ``device``: ``"auto"`` (cuda when present), ``"cpu"`` or ``"cuda"``; overrides ``student``.
    - ``render_mode``: ``None`` or ``"ansi"``.

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        suite: str = "arith",
        budget: int = 49152,
        examples_per_step: int = 2048,
        n_val_per_cell: int = 32,
        n_test_per_cell: int = 64,
        n_errors: int = 8,
        reward: str | RewardFn = "delta_mean",
        student: dict[str, Any] | Any | None = None,
        device: str | None = None,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        from distillgym.students.tiny import StudentConfig, TinyStudent

        if unknown:
            import inspect

            valid = [p for p in inspect.signature(ArithSkillsEnv.__init__).parameters if p not in ("self", "unknown")]
            bad = sorted(unknown)
            raise ConfigError(f"unknown ArithSkillsEnv argument(s) {bad}: {did_you_mean(bad[0], valid)}")

        for name, v, low in (
            ("budget", budget, 1),
            ("examples_per_step", examples_per_step, 1),
            ("n_val_per_cell", n_val_per_cell, 1),
            ("n_test_per_cell", n_test_per_cell, 1),
            ("n_errors", n_errors, 0),
        ):
            check_int("ArithSkillsEnv", name, v, low)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if isinstance(reward, str):
            if reward not in REWARDS:
                raise UnknownNameError(f"unknown reward {reward!r}: {did_you_mean(reward, REWARDS)}")
            self.reward_name, self._reward_fn = reward, REWARDS[reward]
        elif callable(reward):
            self.reward_name, self._reward_fn = getattr(reward, "__name__", "custom"), reward
        else:
            raise ConfigError(f"reward must be one of {list(REWARDS)} or a callable, got {reward!r}")

        self.suite = make_suite(suite)
        self.budget = int(budget)
        self.examples_per_step = int(examples_per_step)
        self.n_val_per_cell = int(n_val_per_cell)
        self.n_test_per_cell = int(n_test_per_cell)
        self.n_errors = int(n_errors)
        self.render_mode = render_mode
        if isinstance(student, StudentConfig):
            cfg = student
        elif student is None or isinstance(student, dict):
            cfg = StudentConfig.from_dict(student)
        else:
            raise ConfigError(f"student must be a dict of StudentConfig fields or a StudentConfig, got {type(student)}")
        if device is not None:
            cfg.device = device
        cfg.validate()

        self.engine = ProceduralEngine(self.suite)
        self.student = TinyStudent(cfg, self.suite.alphabet)
        self._initial_state = self._base_weights()

        S, D = len(self.suite.skills), self.suite.n_difficulties
        self.action_space = spaces.MultiDiscrete([S, D])
        self.observation_space = spaces.Dict(
            {
                "accuracy": spaces.Box(0.0, 1.0, (S, D), np.float32),
                "reference": spaces.Box(0.0, 1.0, (S,), np.float32),
                "budget_left": spaces.Box(0.0, 1.0, (1,), np.float32),
            }
        )
        self._report: SkillReport | None = None
        self._initial_report: SkillReport | None = None
        self._spent = 0
        self._t = 0
        self._episode_seed = 0
        self._done = True

    # ------------------------------------------------------------------ base student
    def _base_weights(self) -> dict[str, Any]:
        """Weights every episode starts from: the initial model, or a base pre-trained once
        (``StudentConfig.pretrain_examples``) and cached on disk keyed by its config."""
        import torch

        from distillgym.students.tiny import cache_dir

        cfg = self.student.config
        if cfg.pretrain_examples == 0:
            return self.student.state()
        path = Path(cache_dir()) / f"base-{self.suite.name}-{cfg.key(self.suite.alphabet)}.pt"
        if path.exists():
            try:
                state = torch.load(path, map_location=self.student.device, weights_only=True)
                self.student.load_state(state)
                return self.student.state()
            except Exception:  # a corrupt cache file is rebuilt, never trusted
                path.unlink(missing_ok=True)
        D = min(cfg.pretrain_max_difficulty, self.suite.n_difficulties - 1)
        cells = [(s, d) for s in self.suite.skills for d in range(D + 1)]
        rng = rng_for(cfg.init_seed, _STREAM_PRETRAIN)
        plan = [PlanItem(s, d, cfg.pretrain_examples // len(cells)) for s, d in cells]
        examples, _ = self.engine.generate(plan, rng)
        self.student.train(examples, rng)
        state = self.student.state()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{id(self)}")
        torch.save({k: v.cpu() for k, v in state.items()}, tmp)
        tmp.replace(path)
        return state

    # ------------------------------------------------------------------ helpers
    def _cells_set(self, stream: int, n: int) -> list[Any]:
        out = []
        for i, s in enumerate(self.suite.skills):
            for d in range(self.suite.n_difficulties):
                out.extend(self.suite.generate(s, d, rng_for(self._episode_seed, stream, i, d), n))
        return out

    def _obs(self) -> dict[str, np.ndarray]:
        assert self._report is not None
        return {
            "accuracy": self._report.accuracy.astype(np.float32),
            "reference": np.clip(self._report.reference, 0, 1).astype(np.float32),
            "budget_left": np.array([self.budget_left / self.budget], dtype=np.float32),
        }

    @property
    def budget_left(self) -> int:
        return self.budget - self._spent

    def decode_action(self, action: Any) -> PlanItem:
        """``[skill, difficulty]`` → :class:`PlanItem`; raises :class:`InvalidActionError`."""
        S, D = len(self.suite.skills), self.suite.n_difficulties
        try:
            a = np.asarray(action)
            ok = a.shape == (2,) and np.issubdtype(a.dtype, np.integer) or (
                a.shape == (2,) and np.all(np.mod(a, 1) == 0)
            )
        except Exception:
            ok = False
        if not ok:
            raise InvalidActionError(
                f"action must be [skill index, difficulty] (two integers), got {action!r}; "
                f"skills are {list(self.suite.skills)}, difficulties 0..{D - 1}"
            )
        s, d = int(a[0]), int(a[1])
        if not (0 <= s < S and 0 <= d < D):
            raise InvalidActionError(
                f"action {[s, d]} is out of range: skill index must be in 0..{S - 1} "
                f"({', '.join(f'{i}={n}' for i, n in enumerate(self.suite.skills))}) and difficulty in 0..{D - 1}"
            )
        return PlanItem(self.suite.skills[s], d, min(self.examples_per_step, self.budget_left))

    def static_info(self) -> dict[str, Any]:
        """What a teacher may know about the environment (no gold answers)."""
        return {
            "suite": self.suite.name,
            "skills": list(self.suite.skills),
            "prerequisites": {s: list(p) for s, p in self.suite.prerequisites.items()},
            "n_difficulties": self.suite.n_difficulties,
            "examples_per_step": self.examples_per_step,
            "budget": self.budget,
        }

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._episode_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.student.load_state(self._initial_state)
        self._spent, self._t, self._done = 0, 0, False
        self._val = Evaluator(self.suite, self._cells_set(STREAM_VAL, self.n_val_per_cell), self.n_errors)
        self._test = Evaluator(self.suite, self._cells_set(STREAM_TEST, self.n_test_per_cell), 0)
        self._report = self._val.evaluate(self.student, rng_for(self._episode_seed, STREAM_EPISODE, 0))
        self._initial_report = self._report
        info = self.static_info()
        info.update(self._report_info(self._report))
        return self._obs(), info

    def _report_info(self, report: SkillReport) -> dict[str, Any]:
        return {
            "report": report.render(self.budget_left),
            "errors": report.errors,
            "mean_accuracy": report.mean_accuracy,
            "skill_accuracy": report.skill_accuracy.tolist(),
            "budget_left": self.budget_left,
        }

    def step(self, action: Any):
        if self._report is None or self._initial_report is None:
            raise ConfigError("call reset() before step()")
        if self._done:
            raise ConfigError("the episode has ended (budget spent); call reset() to start a new one")
        t_start = time.perf_counter()
        item = self.decode_action(action)
        self._t += 1
        rng = rng_for(self._episode_seed, STREAM_TRAIN, self._t)

        examples, cost = self.engine.generate([item], rng)
        train = self.student.train(examples, rng)
        self._spent += item.n
        prev = self._report
        self._report = self._val.evaluate(self.student, rng_for(self._episode_seed, STREAM_EPISODE, self._t))
        terminated = self.budget_left <= 0
        self._done = terminated
        reward = float(self._reward_fn(self._initial_report, prev, self._report, terminated))

        info = self._report_info(self._report)
        info["action"] = {"skill": item.skill, "difficulty": item.difficulty, "n": item.n}
        info["train_loss"] = train.loss
        info["costs"] = {
            "examples": cost.examples,
            "rejected": cost.rejected,
            "tokens": train.tokens,
            "optimizer_steps": train.optimizer_steps,
        }
        seconds = {"generate": cost.seconds, "train": train.seconds, "evaluate": self._report.seconds}
        if terminated:
            t0 = time.perf_counter()
            test = self._test.evaluate(self.student)
            seconds["test"] = time.perf_counter() - t0
            info["final"] = {
                "test_accuracy": test.mean_accuracy,
                "test_accuracy_matrix": test.accuracy.round(6).tolist(),
                "test_skill_accuracy": test.skill_accuracy.round(6).tolist(),
                "reference_test_accuracy": float(test.reference.mean()),
                "val_accuracy_start": self._initial_report.mean_accuracy,
                "val_accuracy_end": self._report.mean_accuracy,
                "examples": self._spent,
                "steps": self._t,
            }
        info["costs"]["seconds"] = PhaseSeconds(**seconds, total=time.perf_counter() - t_start)
        return self._obs(), reward, terminated, False, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        if self._report is None:
            return "(reset() not called yet)"
        return self._report.render(self.budget_left)
