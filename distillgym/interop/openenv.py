"""A teaching environment served with OpenEnv, and its client.

OpenEnv (the ``openenv-core`` package, 0.3.x) serves an environment over FastAPI: a server-side
:class:`openenv.core.env_server.interfaces.Environment` with ``reset(seed=None, episode_id=None)
-> Observation``, ``step(action, timeout_s=None) -> Observation`` and a ``state`` property, typed
with pydantic models (``Action``, ``Observation`` carrying ``done``, ``reward`` and ``metadata``,
``State``); each WebSocket connection (``/ws``) is a session with its own environment instance.
The client is an async :class:`openenv.core.env_client.EnvClient`; ``.sync()`` wraps it for
synchronous code.

Here:

- :class:`TeachingAction`: exactly one of ``skill`` + ``difficulty`` (cell level), ``mix`` (mix
  level: the ``(n_skills, n_difficulties)`` action in [-1, 1], see
  :func:`distillgym.levels.mix_to_action`) or ``text`` (open level: one example per line). An
  action of another level than the served env's is refused with
  :class:`~distillgym.errors.InvalidActionError` (the client raises ``RuntimeError("Server
  error: ...")`` with its message).
- :class:`TeachingObservation`: the env's text ``report``, ``accuracy`` (per skill x level),
  ``reference``, ``loss`` (mix and open levels), ``budget_left``, ``mean_accuracy``, ``step``, and
  ``info``, the env's whole ``info`` dict as JSON (``final`` with the hidden test accuracy at the
  episode's end, ``costs``, ``action`` with the rejected lines by kind, ...). OpenEnv's
  serialisation drops an observation's ``metadata``, so everything the client needs is in fields.
- :class:`TeachingState`: ``episode_id``, ``step_count``, ``env_id``, ``seed``, ``level``,
  ``budget_left``, ``done``, ``episode_return``.
- :class:`DistillGymEnvironment`: the server-side environment; it builds the gymnasium env
  (``gym.make(env_id, **env_kwargs)``) at its first ``reset``, since OpenEnv also makes throw-away
  instances for ``/metadata`` and ``/state``. ``reset(seed)`` is the env's ``reset(seed=seed)``
  (same seed, same episode, bit for bit on the same machine); without a seed the env draws one
  and ``state.seed`` is None. ``timeout_s`` is accepted and ignored: a training step cannot be
  interrupted part way. :meth:`DistillGymEnvironment.configured` makes the no-argument class
  OpenEnv's server takes as its factory.
- :func:`make_app` (the FastAPI app, via OpenEnv's ``create_app``), :func:`serve` (uvicorn), and
  the command line ``python -m distillgym.interop.openenv --env distillgym/ArithOpen-v1 --port
  8000 --env-kwargs '{"budget": 4096}'``.
- :class:`DistillGymClient`: ``DistillGymClient(base_url="http://127.0.0.1:8000").sync()``, then
  ``reset(seed=0)`` and ``step(TeachingAction(...))`` return ``StepResult`` objects whose
  ``observation`` is a :class:`TeachingObservation`.

Importing this module imports openenv (and FastAPI); ``pip install "distillgym[openenv]"``.
See ``examples/openenv_client.py``.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any, ClassVar

import numpy as np

from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError, did_you_mean, require

require("openenv", "serving an environment with OpenEnv", "openenv")

from openenv.core.client_types import StepResult  # noqa: E402
from openenv.core.env_client import EnvClient  # noqa: E402
from openenv.core.env_server.interfaces import Environment  # noqa: E402
from openenv.core.env_server.types import Action, EnvironmentMetadata, Observation, State  # noqa: E402
from pydantic import Field, model_validator  # noqa: E402

__all__ = [
    "TeachingAction",
    "TeachingObservation",
    "TeachingState",
    "DistillGymEnvironment",
    "DistillGymClient",
    "make_app",
    "serve",
    "main",
]


class TeachingAction(Action):
    """One step's action: a cell (``skill`` and ``difficulty``), a ``mix`` or written ``text``."""

    skill: str | None = Field(default=None, description="cell level: the skill's name, e.g. 'add'")
    difficulty: int | None = Field(default=None, ge=0, description="cell level: the difficulty level, 0 = easiest")
    mix: list[list[float]] | None = Field(
        default=None, description="mix level: (n_skills x n_difficulties) values in [-1, 1]; weight = (a + 1) / 2"
    )
    text: str | None = Field(default=None, description="open level: one example per line, e.g. '57+68=125'")

    @model_validator(mode="after")
    def _one_kind(self) -> TeachingAction:
        cell = self.skill is not None or self.difficulty is not None
        if cell and (self.skill is None or self.difficulty is None):
            raise ValueError("a cell action needs both 'skill' and 'difficulty'")
        kinds = [k for k, on in (("cell", cell), ("mix", self.mix is not None), ("text", self.text is not None)) if on]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of: 'skill' and 'difficulty' (cell level), 'mix' (mix level) or 'text' (open level); "
                f"got {kinds or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """``"cell"``, ``"mix"`` or ``"open"``."""
        return "cell" if self.skill is not None else "mix" if self.mix is not None else "open"


class TeachingObservation(Observation):
    """The student's report after a reset or a step (see the module docstring)."""

    report: str = Field(default="", description="the env's text report (accuracy table, sampled errors)")
    accuracy: list[list[float]] = Field(default_factory=list, description="validation accuracy per skill x level")
    reference: list[float] = Field(default_factory=list, description="reference accuracy per skill")
    loss: list[list[float]] | None = Field(
        default=None, description="validation loss per skill x level (nats), for envs that observe it (mix, open)"
    )
    budget_left: int = Field(default=0, description="examples of budget not yet spent")
    mean_accuracy: float = Field(default=0.0, description="mean validation accuracy over all cells")
    step: int = Field(default=0, description="steps taken in this episode")
    info: dict[str, Any] = Field(default_factory=dict, description="the env's whole info dict, as JSON")


class TeachingState(State):
    """The session's episode: OpenEnv's ``episode_id`` and ``step_count`` and the env's counters."""

    env_id: str = ""
    seed: int | None = None
    level: str = ""
    budget_left: int = 0
    done: bool = True
    episode_return: float = 0.0


def _json(obj: Any) -> Any:
    """``obj`` as plain JSON values (numpy scalars and arrays converted, non-finite floats to None)."""

    def default(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.tolist()
        if isinstance(x, np.generic):
            return x.item()
        return str(x)

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return clean(json.loads(json.dumps(obj, default=default)))


class DistillGymEnvironment(Environment[TeachingAction, TeachingObservation, TeachingState]):
    """A distillgym env as an OpenEnv server environment (see the module docstring).

    Class attributes set by :meth:`configured`: ``env_id`` and ``env_kwargs`` (``gym.make``'s)."""

    SUPPORTS_CONCURRENT_SESSIONS: ClassVar[bool] = True  # every instance owns its env and student
    env_id: ClassVar[str] = "distillgym/ArithSkills-v1"
    env_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self._env: Any = None
        self._state = TeachingState(env_id=self.env_id)

    @classmethod
    def configured(cls, env: str = "distillgym/ArithSkills-v1", **env_kwargs: Any) -> type[DistillGymEnvironment]:
        """A subclass whose no-argument constructor serves ``env`` made with ``env_kwargs``."""
        import gymnasium as gym

        import distillgym  # noqa: F401  (registers the env ids)

        if env not in gym.registry:
            ours = sorted(k for k in gym.registry if k.startswith("distillgym/"))
            raise UnknownNameError(f"unknown env id {env!r}: {did_you_mean(env, ours)}")
        name = env.split("/")[-1].replace("-", "_").replace(".", "_") + "_OpenEnv"
        return type(name, (cls,), {"env_id": env, "env_kwargs": dict(env_kwargs), "__module__": __name__})

    # ------------------------------------------------------------------ OpenEnv interface
    @property
    def env(self) -> Any:
        """The gymnasium env, built on first use."""
        if self._env is None:
            import gymnasium as gym

            import distillgym  # noqa: F401

            self._env = gym.make(self.env_id, **self.env_kwargs)
        return self._env

    def reset(self, seed: int | None = None, episode_id: str | None = None, **kwargs: Any) -> TeachingObservation:
        """Start an episode (``seed``: the env's reset seed; ``episode_id``: kept in the state)."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"seed must be None or an integer >= 0, got {seed!r}")
        obs, info = self.env.reset(seed=seed)
        level = str(info.get("level", ""))
        self._state = TeachingState(
            episode_id=episode_id or str(uuid.uuid4()), step_count=0, env_id=self.env_id, seed=seed, level=level,
            budget_left=int(info["budget_left"]), done=False, episode_return=0.0,
        )
        return self._observation(obs, info, reward=None, done=False)

    def step(self, action: TeachingAction, timeout_s: float | None = None, **kwargs: Any) -> TeachingObservation:
        """One env step with ``action`` (``timeout_s`` is ignored: a step cannot be interrupted)."""
        if self._env is None or self._state.done:
            raise ConfigError("no episode is running: call reset() first (after the last step, reset() again)")
        if not isinstance(action, TeachingAction):
            action = TeachingAction.model_validate(action)
        level = self._state.level
        if action.kind != level:
            raise InvalidActionError(
                f"this env ({self.env_id}) takes {level}-level actions, got {'an' if action.kind == 'open' else 'a'} "
                f"{action.kind} action; "
                + {"cell": "send 'skill' and 'difficulty'", "mix": "send 'mix'", "open": "send 'text'"}[level]
            )
        obs, reward, terminated, truncated, info = self.env.step(self._to_gym(action))
        done = bool(terminated or truncated)
        st = self._state
        st.step_count += 1
        st.budget_left = int(info["budget_left"])
        st.done = done
        st.episode_return = float(st.episode_return + reward)
        return self._observation(obs, info, reward=float(reward), done=done)

    @property
    def state(self) -> TeachingState:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        from distillgym import __version__

        return EnvironmentMetadata(
            name=self.env_id,
            description=f"distillgym teaching environment {self.env_id}: each step's action chooses a student "
            f"language model's next training data ({json.dumps(self.env_kwargs)})",
            version=str(__version__),
        )

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    # ------------------------------------------------------------------ helpers
    def _to_gym(self, action: TeachingAction) -> Any:
        if action.kind == "open":
            return action.text
        if action.kind == "mix":
            try:
                return np.asarray(action.mix, dtype=np.float32)
            except ValueError:
                raise InvalidActionError("'mix' must be a rectangular list of lists of numbers") from None
        skills = list(self.env.unwrapped.suite.skills)
        if action.skill not in skills:
            raise InvalidActionError(f"unknown skill {action.skill!r}: {did_you_mean(str(action.skill), skills)}")
        return np.array([skills.index(action.skill), int(action.difficulty)])

    def _observation(self, obs: dict[str, Any], info: dict[str, Any], reward: float | None, done: bool):
        return TeachingObservation(
            done=done,
            reward=reward,
            report=str(info.get("report", "")),
            accuracy=np.asarray(obs["accuracy"], dtype=float).round(6).tolist(),
            reference=np.asarray(obs["reference"], dtype=float).round(6).tolist(),
            loss=np.asarray(obs["loss"], dtype=float).round(6).tolist() if "loss" in obs else None,
            budget_left=int(info["budget_left"]),
            mean_accuracy=float(info["mean_accuracy"]),
            step=self._state.step_count,
            info=_json(info),
        )


class DistillGymClient(EnvClient[TeachingAction, TeachingObservation, TeachingState]):
    """The client of a served teaching env: ``DistillGymClient(base_url=URL).sync()`` for
    synchronous use (``with client: client.reset(seed=0); client.step(TeachingAction(...))``)."""

    def _step_payload(self, action: TeachingAction) -> dict[str, Any]:
        return action.model_dump(exclude_none=True)

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[TeachingObservation]:
        obs = TeachingObservation(
            **(payload.get("observation") or {}), done=bool(payload.get("done", False)), reward=payload.get("reward")
        )
        return StepResult(observation=obs, reward=payload.get("reward"), done=bool(payload.get("done", False)))

    def _parse_state(self, payload: dict[str, Any]) -> TeachingState:
        return TeachingState(**payload)


def make_app(env: str = "distillgym/ArithSkills-v1", max_concurrent_envs: int = 1, **env_kwargs: Any) -> Any:
    """The FastAPI app serving ``env`` (made with ``env_kwargs``): OpenEnv's HTTP endpoints
    (``/health``, ``/schema``, ``/metadata``, ``/reset``, ``/step``, ``/state``) and the
    ``/ws`` WebSocket sessions, at most ``max_concurrent_envs`` at a time (each its own env)."""
    from openenv.core.env_server.http_server import create_app

    from distillgym.errors import check_int

    check_int("make_app", "max_concurrent_envs", max_concurrent_envs, 1)
    factory = DistillGymEnvironment.configured(env, **env_kwargs)
    return create_app(factory, TeachingAction, TeachingObservation, env_name=env.split("/")[-1],
                      max_concurrent_envs=max_concurrent_envs)


def serve(env: str = "distillgym/ArithSkills-v1", host: str = "127.0.0.1", port: int = 8000,
          max_concurrent_envs: int = 1, **env_kwargs: Any) -> None:
    """Serve ``env`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(make_app(env, max_concurrent_envs, **env_kwargs), host=host, port=int(port), log_level="warning")


def main(argv: list[str] | None = None) -> None:
    """``python -m distillgym.interop.openenv [--env ID] [--host H] [--port P] [--env-kwargs JSON]
    [--max-concurrent-envs N] [--threads T]``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m distillgym.interop.openenv", description=main.__doc__)
    ap.add_argument("--env", default="distillgym/ArithSkills-v1", help="a registered env id")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--env-kwargs", default="{}", help="JSON object of gym.make arguments, e.g. '{\"budget\": 4096}'")
    ap.add_argument("--max-concurrent-envs", type=int, default=1, help="WebSocket sessions at once")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the server process")
    args = ap.parse_args(argv)
    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r} ({err})") from None
    if not isinstance(env_kwargs, dict):
        raise ConfigError(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    import torch

    torch.set_num_threads(max(1, int(args.threads)))
    serve(args.env, args.host, args.port, args.max_concurrent_envs, **env_kwargs)


if __name__ == "__main__":
    main()
