"""``EnvConfig``: every argument of a teaching environment, typed, documented and validated in one place.

``TeachingEnv(**kwargs)``, ``TeachingEnv(EnvConfig(...))`` and ``gym.make(id, **kwargs)`` all go
through :meth:`EnvConfig.from_kwargs`, which rejects unknown names (with the closest valid one) and
checks every value that needs no part to be built. :meth:`EnvConfig.record` is the env's resolved
configuration (``env.config``: every default filled in, parts named), from which the results' config
hash is computed (:func:`distillgym.harness.fingerprint.config_hash`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError, check_bool, check_int, did_you_mean
from distillgym.registry import class_path, resolved_args

__all__ = ["EnvConfig", "SPLIT_MODES", "INIT_MODES", "RENDER_MODES", "RECORD_ONLY", "LATER_FIELDS"]

SPLIT_MODES = ("content", None)
LATER_FIELDS: dict[str, Any] = {"eval_weights": None, "validate_all_cells": True, "warm_start": None,
                                "level_kwargs": None}
"""Fields added after the v2 ids, with their defaults: :meth:`EnvConfig.record` lists one only when
it is set, so the records of ids that do not use them stay as they were."""
INIT_MODES = ("seed", "fixed")
RENDER_MODES = ("ansi",)


@dataclass
class EnvConfig:
    """The arguments of :class:`~distillgym.env.TeachingEnv` (and the keyword arguments of ``gym.make``)."""

    suite: Any = "arith-v1"
    """Task suite: a name in :data:`distillgym.tasks.SUITES` or a :class:`~distillgym.tasks.base.TaskSuite`."""
    student: Any = "tiny"
    """Student: a name in :data:`distillgym.students.STUDENTS`, a student object, or (as v0 took) a dict
    of the tiny student's ``StudentConfig`` fields or a ``StudentConfig``."""
    engine: Any = "procedural"
    """Data engine: a name in :data:`distillgym.engines.ENGINES` or an engine object."""
    level: str = "cell"
    """Action level: ``"cell"`` (one skill x difficulty), ``"mix"`` (a data mix) or ``"open"`` (written examples)."""
    reward: Any = "delta_mean"
    """Reward: a name in :data:`distillgym.rewards.REWARDS` or a callable ``f(initial, previous, report, terminal)``."""
    budget: int = 49152
    """Training examples charged per episode; the episode terminates when they are spent."""
    examples_per_step: int = 2048
    """Most examples one step trains on (the last step may be smaller)."""
    n_val_per_cell: int = 32
    """Validation items per (skill, difficulty) cell, drawn at reset; the observation is their accuracy."""
    n_test_per_cell: int = 64
    """Hidden test items per cell, scored only when the episode ends (``info["final"]``)."""
    n_errors: int = 8
    """Sampled wrong answers of the student shown in each report."""
    split: str | None = "content"
    """``"content"``: validation and test items from their own parts of the suite's item space; None
    (``ArithSkills-v0``): disjoint seed streams of the whole space."""
    student_init: str = "seed"
    """``"seed"``: initial weights drawn from the episode seed; ``"fixed"``: the same weights every episode."""
    observe_loss: bool | None = None
    """Add the validation loss per cell to the observation (None: True for the mix, source-mix and open levels)."""
    report_loss: bool = True
    """Measure the validation loss per cell (``info["val_loss"]``; needed by ``observe_loss``)."""
    check_support: bool = False
    """Open level: also reject, as ``off_grid``, a written line its cell's generator could never make
    (:meth:`~distillgym.tasks.base.TaskSuite.in_support`: an arithmetic chain whose running total goes
    below 0, such as ``1-5+9=5``). True in ``ArithOpen-v2``; False (the default, and ``ArithOpen-v1``):
    the check of the v1 ids, which accepted such lines, kept so that their numbers stay as they are.
    Recorded in ``env.config`` only when True, so the configurations (and hashes) of the ids before it
    are unchanged."""
    max_steps: int | None = None
    """Truncate after this many steps (None: 4 x the steps the budget needs)."""
    suite_kwargs: dict[str, Any] | None = None
    """Arguments of the suite's factory (a suite given by name only)."""
    student_kwargs: dict[str, Any] | None = None
    """Arguments of the student's factory (a student given by name only)."""
    engine_kwargs: dict[str, Any] | None = None
    """Arguments of the engine's factory (an engine given by name only)."""
    device: str | None = None
    """``"auto"``, ``"cpu"`` or ``"cuda"``, passed to a student given by name (None: the student's default)."""
    torch_threads: int | None = None
    """If set, ``torch.set_num_threads`` in this process (for vector-env workers)."""
    render_mode: str | None = None
    """None or ``"ansi"`` (``render()`` returns the text report)."""
    eval_weights: Any = None
    """Evaluation weight per cell (None: every cell weighs 1): a dict ``{skill: weight or [weight per
    difficulty]}`` (skills left out weigh 0) or an ``(n_skills, n_difficulties)`` nested list; non-negative,
    not all zero (:func:`distillgym.feedback.eval_weight_matrix`). Reward, ``info["mean_accuracy"]`` and
    ``info["final"]["test_accuracy"]`` are then weighted means over the target cells (weight > 0); the
    observation keeps every cell's accuracy and adds ``target``; the test scores every cell."""
    validate_all_cells: bool = True
    """With ``eval_weights``: evaluate cells of weight 0 on the validation set at every step too (their
    accuracy is in the observation, for teachers that need prerequisites). False skips them (their
    observed accuracy and loss are 0, not measured) to save evaluation time; the test scores every cell."""
    warm_start: str | None = None
    """A stored student snapshot to start every episode from (:mod:`distillgym.students.snapshots`: a
    registered name such as ``"arith-v2-l01"``, or a path to an ``.npz`` of weights): its weights, a fresh
    optimiser and warm-up and an empty replay buffer at each reset. Needs ``student_init="fixed"`` and a
    student with ``load_state`` (plain, tiny)."""
    level_kwargs: dict[str, Any] | None = None
    """Arguments of the action level: for ``open``, ``line_costs`` (``{"verified": c, "unverified": c}``,
    budget units per line) and ``unverified_prefix`` (default ``"~"``) (:class:`distillgym.levels.OpenLevel`).
    The ``source-mix`` level takes its sources and costs from the data engine (``engine_kwargs``)."""

    @classmethod
    def from_kwargs(cls, owner: str = "TeachingEnv", config: EnvConfig | None = None, **kwargs: Any) -> EnvConfig:
        """``config`` (default: the defaults) with ``kwargs`` replacing its fields, validated; an unknown
        name raises :class:`ConfigError` naming the closest field."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ConfigError(f"unknown {owner} argument(s) {unknown}: {did_you_mean(unknown[0], names)}")
        if config is not None and not isinstance(config, EnvConfig):
            raise ConfigError(f"{owner}'s first argument is an EnvConfig (the settings are keyword arguments), "
                              f"got {config!r}")
        cfg = dataclasses.replace(config, **kwargs) if config is not None else cls(**kwargs)
        cfg.validate(owner)
        return cfg

    def validate(self, owner: str = "TeachingEnv") -> None:
        """Check every field that needs no part built (the parts check their own arguments)."""
        from distillgym.rewards import REWARDS

        for name, low in (("budget", 1), ("examples_per_step", 1), ("n_val_per_cell", 1), ("n_test_per_cell", 1),
                          ("n_errors", 0)):
            check_int(owner, name, getattr(self, name), low)
        if self.max_steps is not None:
            check_int(owner, "max_steps", self.max_steps, 1)
        if self.torch_threads is not None:
            check_int(owner, "torch_threads", self.torch_threads, 1)
        if self.render_mode is not None and self.render_mode not in RENDER_MODES:
            raise ConfigError(f"render_mode must be None or one of {list(RENDER_MODES)}, got {self.render_mode!r}")
        check_bool(owner, "validate_all_cells", self.validate_all_cells)
        if self.warm_start is not None and not isinstance(self.warm_start, str):
            raise ConfigError(f"warm_start must be None, a snapshot name or an .npz path, got {self.warm_start!r}")
        if self.warm_start is not None and self.student_init != "fixed":
            raise ConfigError(
                f"warm_start={self.warm_start!r} starts every episode from stored weights, which "
                f"student_init={self.student_init!r} would replace; use student_init='fixed'"
            )
        if self.level_kwargs is not None and not isinstance(self.level_kwargs, dict):
            raise ConfigError(f"level_kwargs must be None or a dict, got {self.level_kwargs!r}")
        if self.split not in SPLIT_MODES:
            raise ConfigError(f"split must be 'content' or None, got {self.split!r}")
        if self.student_init not in INIT_MODES:
            raise ConfigError(f"student_init must be one of {list(INIT_MODES)}, got {self.student_init!r}")
        if isinstance(self.reward, str):
            if self.reward not in REWARDS:
                raise UnknownNameError(f"unknown reward {self.reward!r}: {did_you_mean(self.reward, REWARDS)}")
        elif not callable(self.reward):
            raise ConfigError(f"reward must be one of {list(REWARDS)} or a callable, got {self.reward!r}")

    @property
    def v0_student(self) -> bool:
        """The student is given as v0 took it: a dict (or ``StudentConfig``) of the tiny student's fields."""
        s = self.student
        return s is None or isinstance(s, dict) or type(s).__name__ == "StudentConfig"

    def resolved(self, level_name: str, owner: str = "TeachingEnv") -> EnvConfig:
        """A copy with the defaults that depend on other fields filled in: ``observe_loss`` (from the
        level) and ``max_steps`` (from the budget); integers as ``int``."""
        report = check_bool(owner, "report_loss", self.report_loss)
        observe = (level_name in ("mix", "open", "source-mix") if self.observe_loss is None
                   else check_bool("", "observe_loss", self.observe_loss))
        if observe and not report:
            raise ConfigError("observe_loss=True needs report_loss=True (the loss is measured by the evaluator)")
        budget, per_step = int(self.budget), int(self.examples_per_step)
        return dataclasses.replace(
            self, level=level_name, budget=budget, examples_per_step=per_step,
            n_val_per_cell=int(self.n_val_per_cell), n_test_per_cell=int(self.n_test_per_cell),
            n_errors=int(self.n_errors), observe_loss=observe, report_loss=report,
            check_support=check_bool(owner, "check_support", self.check_support),
            max_steps=int(self.max_steps) if self.max_steps is not None else 4 * -(-budget // per_step),
        )

    def record(self, suite: Any, student: Any, reward_name: str, engine: Any = None, reward: Any = None
               ) -> dict[str, Any]:
        """The env's resolved configuration (``env.config``; call on :meth:`resolved`): the arguments
        that rebuild the env, ``TeachingEnv(**EnvConfig.rebuild_kwargs(record))``, every default filled
        in, and (only when some part's class is defined outside distillgym) ``parts``: for each such part,
        its class and a SHA-256 of its module's source (the git commit in the fingerprint covers only
        distillgym's code). Without ``parts``, ``TeachingEnv(**{k: v for k, v in record.items() if k !=
        "rebuildable"})`` rebuilds the env as before.

        ``suite_kwargs``, ``student_kwargs`` and ``engine_kwargs`` are the *resolved* arguments of the
        built parts (:func:`distillgym.registry.resolved_args`: defaults filled in, read back from the
        part), for a part given by name or as an object, so the config hash changes when a part's
        default does. A part given as an object is named ``"module:Class"`` (and ``rebuildable`` is
        False). ``suite``, ``student``, ``engine`` and ``reward`` are the parts built from this config.

        The fields added for issue 21 (:data:`LATER_FIELDS`) appear only where they differ from their
        defaults, so the configs (and results hashes) of the ids registered before them are unchanged."""
        def name_of(part: Any) -> str:
            return part if isinstance(part, str) else class_path(part)

        student_name = self.student if isinstance(self.student, str) else ("tiny" if self.v0_student
                                                                           else name_of(self.student))
        parts: dict[str, Any] = {}
        for role, part in (("suite", suite), ("student", student), ("engine", engine),
                           ("reward", reward)):
            ident = _part_identity(part) if part is not None else None
            if ident is not None:
                parts[role] = ident
        record = {
            "suite": suite.name if isinstance(self.suite, str) else name_of(self.suite),
            "suite_kwargs": resolved_args(suite, self.suite_kwargs),
            "student": student_name,
            "student_kwargs": resolved_args(student, self.student_kwargs),
            "engine": name_of(self.engine),
            "engine_kwargs": resolved_args(engine, self.engine_kwargs) if engine is not None
            else dict(self.engine_kwargs or {}),
            "level": self.level,
            "reward": reward_name,
            "budget": self.budget,
            "examples_per_step": self.examples_per_step,
            "n_val_per_cell": self.n_val_per_cell,
            "n_test_per_cell": self.n_test_per_cell,
            "n_errors": self.n_errors,
            "split": self.split,
            "student_init": self.student_init,
            "observe_loss": self.observe_loss,
            "report_loss": self.report_loss,
            "max_steps": self.max_steps,
            "rebuildable": all(isinstance(p, (str, dict, type(None))) for p in (self.suite, self.engine))
            and (isinstance(self.student, str) or self.v0_student)
            and isinstance(self.reward, str),
            **{k: getattr(self, k) for k, default in LATER_FIELDS.items() if getattr(self, k) != default},
        }
        if self.check_support:  # only then, so that the ids that predate it keep their configs and hashes
            record["check_support"] = True
        if parts:  # only then: a config of distillgym's own parts keeps the keys it always had
            record["parts"] = parts
        return record

    @staticmethod
    def rebuild_kwargs(record: dict[str, Any]) -> dict[str, Any]:
        """The constructor arguments in a :meth:`record` (``env.config``): it without ``rebuildable``
        and ``parts``, which describe the env rather than configure it."""
        return {k: v for k, v in record.items() if k not in RECORD_ONLY}


RECORD_ONLY = ("rebuildable", "parts")
"""Keys of ``env.config`` that are not constructor arguments."""


def _part_identity(part: Any) -> dict[str, Any] | None:
    """``{"class": "module:QualName", "source_sha256": ...}`` of a built part (a function for a reward
    callable) whose class is not distillgym's own: the hash of its module's source file (the git commit
    in the fingerprint covers distillgym's code only). None for distillgym's own parts: their
    registered names identify them, and moving a class between modules must not change the hash."""
    import hashlib
    import inspect
    import os

    path = class_path(part)
    if path.startswith(("distillgym.", "distillgym:")):
        return None
    target = part if inspect.isclass(part) or inspect.isroutine(part) else type(part)
    module = inspect.getmodule(target)
    try:
        src = inspect.getsourcefile(module) if module is not None else None
    except TypeError:  # a builtin module
        src = None
    digest = None  # defined interactively (or a builtin): its code cannot be hashed
    if src and os.path.isfile(src):
        with open(src, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    return {"class": path, "source_sha256": digest}
