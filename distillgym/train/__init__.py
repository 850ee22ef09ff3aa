"""Teacher trainers: train a teacher policy on the environments.

- :mod:`distillgym.train.ppo`: ``train_teacher``, Stable-Baselines3 PPO on N envs (worker processes
  or one native vector env); ``distillgym train-teacher`` is its command line;
- :mod:`distillgym.train.features`: the observation features a learned policy sees (``cells-v1``);
- :mod:`distillgym.train.policies`: the SB3 parts (the feature wrapper for vector envs, the cell-wise
  policy, the training log) and :func:`~distillgym.train.policies.load_ppo`, which loads a saved policy;
- :mod:`distillgym.train.sb3_vec_env`: the native population vector env as an SB3 ``VecEnv``;
- :mod:`distillgym.train.cem`: ``train_cem``, the cross-entropy method over a small policy, every
  generation's (candidate, training seed) pairs one population of students
  (``distillgym train-teacher --algo cem``);
- :mod:`distillgym.train.mix_policy`: that policy (linear scores of per-cell, or per cell x source,
  features, softmaxed into a mix; zero weights are the equal mix) and its features (``percell-v1``).

A trained policy plays as the teacher ``ppo:PATH`` (:mod:`distillgym.teachers.ppo`) or ``cem:PATH``
(:mod:`distillgym.teachers.cem`). Nothing here is
imported by ``import distillgym``; SB3 is an optional extra (``pip install "distillgym[sb3]"``).
"""
