"""Adapters to other libraries' environment interfaces (optional extras, imported on use).

- :mod:`distillgym.interop.sb3`: a Stable-Baselines3 ``VecEnv`` over the native vector env
  (``pip install "distillgym[sb3]"``).
"""

__all__: list[str] = []
