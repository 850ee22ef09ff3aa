"""The benchmark harness: run teachers on environments, record, compare and check the results.

- :mod:`~distillgym.harness.runner`: ``run_episode``, one teacher on one env for one seed;
- :mod:`~distillgym.harness.bench`: benchmarks (TOML files of envs x teachers x seeds; the shipped ones
  are in ``distillgym/harness/benchmarks/``), run resumably into a results directory;
- :mod:`~distillgym.harness.leaderboard`, :mod:`~distillgym.harness.stats`, :mod:`~distillgym.harness.plots`:
  what the results say, with their uncertainty;
- :mod:`~distillgym.harness.fingerprint`: what produced a result (machine, software, config hash);
- :mod:`~distillgym.harness.verify`: re-run recorded episodes and compare;
- :mod:`~distillgym.harness.cli`: the ``distillgym`` command.
"""
