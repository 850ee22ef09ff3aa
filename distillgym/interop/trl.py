"""A teaching environment as a TRL ``environment_factory``: GRPO trains an LLM teacher with tools.

TRL's contract (``GRPOTrainer(environment_factory=...)``, trl 1.x, marked experimental there; read
from trl 1.16's ``GRPOTrainer``): the factory is a callable with no arguments that returns an
environment instance; TRL makes one instance per rollout (pooled and reused across batches), calls
``reset(**row)`` with the dataset row's columns before each rollout, and appends the returned
string to the row's last user message; every public method of the class (a name not starting
with ``_``, other than ``reset`` and ``get_reward``) with type hints and a Google-style docstring
becomes a tool the model may call; a tool's return value goes back to the model as the tool
message, and an exception it raises goes back as ``{"error": message}``. ``get_reward()`` (no
argument, a float) is called once per finished rollout and is a reward source of weight 1, logged
under the class name; reward functions passed as ``reward_funcs`` also receive the rollouts'
instances as ``environments=``. The chat template must support tool calls (TRL checks it).

Here one rollout is one teaching episode (or its beginning: TRL bounds the tool calls with
``max_tool_calling_iterations`` and ``max_completion_length``, and tool messages count in the
completion length):

- ``reset(seed=..., **columns)`` starts an episode of the configured env: with a ``seed``
  column the episode seed is that seed, so every rollout of a GRPO group (the same row) starts
  from the same student and validation set; without one, each instance draws its seeds from
  ``(base seed, instance number, reset count)``. It returns the instructions (skills, levels,
  the tool, the budget) and the env's text report (``info["report"]``). The other columns are
  ignored.
- One tool per action level, each a step of the env that returns the step's reward, the mean
  validation accuracy, the budget left and (``report="full"``, default) the new report, or
  (``report="summary"``) only that first line: ``train_on(skill, difficulty)`` (cell level),
  ``train_on_mix(weights)`` (mix level; ``{"add:1": 2.0, "copy:0": 1.0}``, cells not named get
  weight 0), ``write_examples(examples)`` (open level; a list of lines such as ``"57+68=125"``).
  An invalid call (unknown skill, level out of range, a call after the episode ended) raises
  :class:`~distillgym.errors.InvalidActionError` with what was expected, which TRL shows the
  model; it does not step the env.
- ``get_reward()`` is the episode return so far: the sum of the env's step rewards (for the
  default ``delta_mean`` reward, the gain in mean validation accuracy since reset; 0 when the
  model called no tool). The hidden test set is scored by the env only at the episode's end and
  is never part of the reward. :func:`episode_return` is the same as a ``reward_funcs`` entry
  (pass one or the other, not both, or the return counts twice).

:func:`make_environment_factory` returns the class to pass: ``GRPOTrainer(...,
environment_factory=make_environment_factory("distillgym/ArithSkills-v1", budget=4096))``.
Nothing here imports trl: the adapter is plain Python that TRL calls (``pip install
"distillgym[trl]"`` installs trl for the trainer itself). See ``examples/trl_grpo.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError, check_choice, did_you_mean

__all__ = [
    "REPORT_MODES",
    "TeachingToolEnv",
    "CellTools",
    "MixTools",
    "OpenTools",
    "TOOL_CLASSES",
    "make_environment_factory",
    "episode_return",
]

REPORT_MODES = ("full", "summary")


class TeachingToolEnv:
    """Base class of the TRL environments: one teaching episode per rollout (see the module
    docstring). Configure it with :func:`make_environment_factory`, which sets the class
    attributes below on a subclass; the constructor takes no argument, as TRL requires, and
    builds the env on the first ``reset``.

    Attributes (class level): ``env_id`` (a registered env id), ``env_kwargs`` (its
    ``gym.make`` arguments), ``report`` (``"full"`` or ``"summary"``: what a tool returns),
    ``base_seed`` (the seeds of episodes reset without a ``seed`` column). Per instance after a
    reset: ``info`` (the env's latest ``info``), ``episode_return``, ``steps``, ``done``,
    ``history`` (one dict per tool call that stepped the env: action, reward, mean accuracy)."""

    level: ClassVar[str] = ""
    env_id: ClassVar[str] = "distillgym/ArithSkills-v1"
    env_kwargs: ClassVar[dict[str, Any]] = {}
    report: ClassVar[str] = "full"
    base_seed: ClassVar[int] = 0
    _instances: ClassVar[int] = 0

    def __init__(self) -> None:
        cls = type(self)
        self._number = cls._instances
        cls._instances += 1
        self._env: Any = None
        self._resets = 0
        self.info: dict[str, Any] = {}
        self.episode_return = 0.0
        self.steps = 0
        self.done = True
        self.history: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ TRL's interface
    def reset(self, seed: int | None = None, **columns: Any) -> str:
        """Start a new teaching episode; returns the instructions and the student's report."""
        import gymnasium as gym

        import distillgym  # noqa: F401  (registers the env ids)

        if self._env is None:
            self._env = gym.make(self.env_id, **self.env_kwargs)
        if seed is None:
            from distillgym.seeding import rng_for

            seed = int(rng_for(self.base_seed, self._number, self._resets).integers(0, 2**31 - 1))
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"the dataset's 'seed' column must hold integers >= 0, got {seed!r}")
        self._resets += 1
        self._obs, self.info = self._env.reset(seed=int(seed))
        self.episode_return, self.steps, self.done, self.history = 0.0, 0, False, []
        return self._instructions() + "\n\n" + str(self.info["report"])

    def get_reward(self) -> float:
        """The episode return so far (the sum of the env's step rewards)."""
        return float(self.episode_return)

    # ------------------------------------------------------------------ helpers (not tools)
    @property
    def env(self) -> Any:
        """The gymnasium env (built at the first ``reset``)."""
        if self._env is None:
            raise ConfigError("call reset() first: the env is built at the first reset")
        return self._env

    def _static(self) -> dict[str, Any]:
        return self.env.unwrapped.static_info()

    def _instructions(self) -> str:
        st = self._static()
        D = int(st["n_difficulties"])
        skills = ", ".join(f"{s} ({st['skill_descriptions'].get(s, s)})" for s in st["skills"])
        return (
            "You are the teacher of a small student language model that is learning arithmetic. "
            f"{self._tool_help(st)} Each call spends training budget ({st['budget']} examples in all, "
            f"at most {st['examples_per_step']} per call) and returns the student's new validation report. "
            "Your reward is the gain in the student's mean validation accuracy.\n"
            f"Skills: {skills}.\nDifficulty levels: 0 (easiest) to {D - 1} (hardest)."
        )

    def _tool_help(self, st: dict[str, Any]) -> str:
        raise NotImplementedError

    def _skill_index(self, skill: Any) -> int:
        skills = list(self._static()["skills"])
        lower = [s.lower() for s in skills]
        if not isinstance(skill, str) or skill.strip().lower() not in lower:
            raise InvalidActionError(f"unknown skill {skill!r}: {did_you_mean(str(skill), skills)}")
        return lower.index(skill.strip().lower())

    def _level(self, difficulty: Any) -> int:
        D = int(self._static()["n_difficulties"])
        if isinstance(difficulty, bool) or not isinstance(difficulty, (int, np.integer, float)) or (
            isinstance(difficulty, float) and not difficulty.is_integer()
        ):
            raise InvalidActionError(f"difficulty must be an integer from 0 to {D - 1}, got {difficulty!r}")
        d = int(difficulty)
        if not 0 <= d < D:
            raise InvalidActionError(f"difficulty must be an integer from 0 to {D - 1}, got {difficulty!r}")
        return d

    def _ready(self) -> None:
        """Raise :class:`InvalidActionError` unless an episode is running."""
        if self._env is None:
            raise InvalidActionError("no episode has started: call reset() first")
        if self.done:
            raise InvalidActionError("the episode is over (its budget is spent): do not call a tool again")

    def _step(self, action: Any, described: Any) -> str:
        self._ready()
        self._obs, reward, terminated, truncated, self.info = self._env.step(action)
        self.steps += 1
        self.episode_return += float(reward)
        self.done = bool(terminated or truncated)
        mean = float(self.info["mean_accuracy"])
        self.history.append({"action": described, "reward": float(reward), "mean_accuracy": mean})
        head = (
            f"Step {self.steps}: reward {reward:+.4f}, mean validation accuracy {mean:.4f}, "
            f"budget left {int(self.info['budget_left'])} examples."
        )
        if self.done:
            head += " The episode is over: do not call a tool again."
        if self.report == "summary":
            return head
        return head + "\n" + str(self.info["report"])


class CellTools(TeachingToolEnv):
    """Tools of a cell-level env (``ArithSkills-v1``): ``train_on(skill, difficulty)``."""

    level = "cell"

    def _tool_help(self, st: dict[str, Any]) -> str:
        return "Call the tool train_on(skill, difficulty) to train the student on a batch of examples of one cell."

    def train_on(self, skill: str, difficulty: int) -> str:
        """Train the student on one batch of examples of one skill at one difficulty level.

        Args:
            skill: The skill's name, one of the skills in the report (for example "add").
            difficulty: The difficulty level, an integer from 0 (easiest) to the hardest level in the report.

        Returns:
            The step's reward, the new mean validation accuracy, the budget left and the new report.
        """
        self._ready()
        s, d = self._skill_index(skill), self._level(difficulty)
        return self._step(np.array([s, d]), {"skill": self._static()["skills"][s], "difficulty": d})


class MixTools(TeachingToolEnv):
    """Tools of a mix-level env (``ArithMix-v1``): ``train_on_mix(weights)``."""

    level = "mix"

    def _tool_help(self, st: dict[str, Any]) -> str:
        return (
            'Call the tool train_on_mix(weights) with weights per cell, keys "skill:level" (for example '
            '{"add:1": 2, "copy:0": 1}), to train the student on a batch split over those cells in proportion.'
        )

    def train_on_mix(self, weights: dict[str, float]) -> str:
        """Train the student on one batch of examples split over cells in proportion to weights.

        Args:
            weights: A weight (a number >= 0) per cell, keyed "skill:level", for example {"add:1": 2, "copy:0": 1}; cells not named get weight 0.

        Returns:
            The step's reward, the new mean validation accuracy, the budget left and the new report.
        """
        from distillgym.levels import mix_to_action

        self._ready()
        st = self._static()
        if not isinstance(weights, dict) or not weights:
            raise InvalidActionError(f'weights must be a non-empty object such as {{"add:1": 2, "copy:0": 1}}, got {weights!r}')
        p = np.zeros((len(st["skills"]), int(st["n_difficulties"])))
        for key, w in weights.items():
            skill, sep, lvl = str(key).rpartition(":")
            if not sep:
                raise InvalidActionError(f'a weight\'s key is "skill:level" (for example "add:1"), got {key!r}')
            try:
                level = int(lvl)
            except ValueError:
                raise InvalidActionError(f'a weight\'s key is "skill:level" with an integer level, got {key!r}') from None
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w < 0:
                raise InvalidActionError(f"the weight of {key!r} must be a finite number >= 0, got {w!r}")
            p[self._skill_index(skill), self._level(level)] += float(w)
        if p.sum() <= 0:
            raise InvalidActionError("at least one weight must be positive")
        return self._step(mix_to_action(p), {"weights": {str(k): float(v) for k, v in weights.items()}})


class OpenTools(TeachingToolEnv):
    """Tools of an open-level env (``ArithOpen-v1``): ``write_examples(examples)``."""

    level = "open"

    def _tool_help(self, st: dict[str, Any]) -> str:
        return (
            "Call the tool write_examples(examples) with a list of training examples, each a line such as "
            '"57+68=125" (prompt then answer); wrong, malformed, repeated and held-out examples are rejected '
            "and still cost budget."
        )

    def write_examples(self, examples: list[str]) -> str:
        """Train the student on examples you write, one example per string such as "57+68=125".

        Args:
            examples: The training examples, each the prompt followed by its answer (for example "57+68=125" or "c4071=4071").

        Returns:
            The step's reward, the accepted and rejected counts, the new mean validation accuracy, the budget left and the new report.
        """
        self._ready()
        if isinstance(examples, str):
            examples = examples.split("\n")
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise InvalidActionError(f'examples must be a list of strings such as ["57+68=125"], got {examples!r}')
        text = self._step("\n".join(examples), {"lines": len(examples)})
        a = self.info.get("action") or {}
        rejected = {k: v for k, v in (a.get("rejected") or {}).items() if v}
        self.history[-1].update(accepted=a.get("accepted", 0), rejected=rejected)
        head, sep, rest = text.partition("\n")
        note = f" Accepted {a.get('accepted', 0)} of {a.get('lines', 0)} lines; rejected: {rejected or 'none'}."
        return head + note + sep + rest


TOOL_CLASSES: dict[str, type[TeachingToolEnv]] = {"cell": CellTools, "mix": MixTools, "open": OpenTools}


def _env_level(env_id: str, env_kwargs: dict[str, Any]) -> str:
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the env ids)

    if env_id not in gym.registry:
        ours = sorted(k for k in gym.registry if k.startswith("distillgym/"))
        raise UnknownNameError(f"unknown env id {env_id!r}: {did_you_mean(env_id, ours)}")
    level = env_kwargs.get("level", gym.spec(env_id).kwargs.get("level", "cell"))
    return check_choice("action level", level, TOOL_CLASSES)


def make_environment_factory(
    env: str = "distillgym/ArithSkills-v1",
    report: str = "full",
    base_seed: int = 0,
    **env_kwargs: Any,
) -> type[TeachingToolEnv]:
    """The class to pass as TRL's ``environment_factory`` for ``env`` (a registered id) made with
    ``env_kwargs``: a subclass of the level's tool class (:data:`TOOL_CLASSES`) named after the id
    (``ArithSkills_v1_TeachingTools``, the name TRL logs its reward under). ``report`` is what a
    tool returns (``"full"``: the first line and the new report; ``"summary"``: the first line
    only); ``base_seed`` seeds episodes reset without a ``seed`` column."""
    check_choice("report mode", report, REPORT_MODES)
    if isinstance(base_seed, bool) or not isinstance(base_seed, int) or base_seed < 0:
        raise ConfigError(f"base_seed must be an integer >= 0, got {base_seed!r}")
    level = _env_level(env, env_kwargs)
    base = TOOL_CLASSES[level]
    name = env.split("/")[-1].replace("-", "_").replace(".", "_") + "_TeachingTools"
    attrs = {
        "env_id": env,
        "env_kwargs": dict(env_kwargs),
        "report": report,
        "base_seed": int(base_seed),
        "_instances": 0,
        "__doc__": f"TRL environment of {env} ({level} level) with {dict(env_kwargs)}; see {base.__name__}.",
        "__module__": __name__,
    }
    return type(name, (base,), attrs)


def episode_return(environments: list[TeachingToolEnv], **kwargs: Any) -> list[float]:
    """A TRL reward function: each rollout's episode return (``environments`` is the rollouts'
    instances, which TRL passes to reward functions; the other arguments are ignored)."""
    return [float(e.get_reward()) for e in environments]
