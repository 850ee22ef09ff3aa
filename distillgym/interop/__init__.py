"""Adapters to other libraries' environment interfaces, as optional extras imported on use.

(The Stable-Baselines3 ``VecEnv`` over the native vector env is a teacher trainer's part:
:mod:`distillgym.train.sb3_vec_env`.)

- :mod:`distillgym.interop.trl`: a teaching env as a TRL ``environment_factory`` (GRPO with
  tools): ``make_environment_factory("distillgym/ArithSkills-v1", budget=...)`` returns a class
  whose instances TRL resets and whose public methods become the model's tools
  (``pip install "distillgym[trl]"``).
- :mod:`distillgym.interop.openenv`: a teaching env served with OpenEnv (``openenv-core``:
  FastAPI over WebSocket, typed pydantic actions and observations) and its client,
  ``python -m distillgym.interop.openenv --env distillgym/ArithOpen-v1 --port 8000``
  (``pip install "distillgym[openenv]"``).

Importing this package imports none of trl or openenv (and ``__all__`` is empty, so that
``from distillgym.interop import *`` does not import them either): import the module you use.
:mod:`~distillgym.interop.trl` imports trl only when a trainer needs it; importing
:mod:`~distillgym.interop.openenv` imports openenv (its classes subclass openenv's).
"""

__all__: list[str] = []
