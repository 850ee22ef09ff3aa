"""The data-generation agent's problems (issue 21): four ids where what the teacher chooses matters.

On ``ArithMix-v2`` the equal mix is within noise of every teacher found so far: every cell counts
the same, every example is verified, and nothing is forgotten. Each id below breaks one of those
on purpose, as a data-generation agent meets it: a *target* that differs from the pool, *sources*
of different quality and cost, and a student that *forgets*. All four are built on the ``arith-v2``
parts (the plain student, the vectorised suite), so ``gymnasium.make_vec(id, num_envs=N)`` gives
the native vector env (one population of students), and each is a thin registration of
:class:`distillgym.env.TeachingEnv`: its defaults are :data:`DEFAULTS` (and
``distillgym.envs.ENV_DEFAULTS``), and every one can be overridden with ``gym.make`` keyword
arguments. The figures quoted are the lead's prototype measurements (``/work/proto_exp``, plain
student population, 3-4 seeds, 2-core EPYC, 1 torch thread) and this helper's small checks
(``benchmarks/README.md``, "The data-generation agent's ids"); the confirmed headroom of each id is
measured by ``distillgym headroom`` (issue 21, section 1).

distillgym/ArithTarget-v1
=========================
**Description.** ``ArithMix-v2`` (cold plain student, initial weights from the episode seed) whose
score counts only the *target* cells: add and sub at every difficulty (8 of the 28 cells, weight 1
each, ``eval_weights={"add": 1, "sub": 1}``). The action still covers every cell, and the targets
have prerequisites (copy and successor before add, add before sub): trained on add and sub alone the
student learns far less than with its prerequisites (lead's prototype at 24,576 examples: 0.033 against
0.091 for the equal mix), so a teacher has to teach them, and then stop.

**Action.** ``Box(-1, 1, (7, 4), float32)``, the mix level (:class:`distillgym.levels.MixLevel`).

**Observation.** ``accuracy`` (7 x 4, every cell, validated each step: ``validate_all_cells=True``, so
teachers see the prerequisites), ``reference``, ``budget_left``, ``loss`` and ``target`` (7 x 4, the
weights over their largest: 1 on add and sub).

**Reward.** The change of the *weighted* mean validation accuracy (the mean over the 8 target cells);
``info["mean_accuracy"]`` is that mean, ``info["mean_accuracy_all_cells"]`` the plain one;
``info["final"]["test_accuracy"]`` the target mean on the test set, which still scores every cell
(``test_accuracy_matrix``; ``test_accuracy_all_cells``). The text report marks targets with ``*``.

**Episode end.** After 49,152 examples, 24 steps of 2,048 (truncation after 96 steps cannot happen).

**Arguments.** As ``ArithMix-v2``, plus ``eval_weights`` and ``validate_all_cells``. Prototype (budget
49,152, 3-4 seeds): the equal mix reaches a target mean of 0.345; the fixed mix "add and sub 1,
copy and successor 0.3, the rest 0" 0.555 (+0.21); three steps of copy and successor L0-L1, then add and
sub with copy and successor at 0.1: 0.594 (+0.25, sd 0.12).

distillgym/ArithSources-v1
==========================
**Description.** The teacher buys each cell's data from three sources (:mod:`distillgym.engines.sources`):
``verified`` (checked answers, 4 budget units per example), ``buggy`` (a systematic bug per skill,
1 unit: addition without carry, subtraction without borrow, multiplication without carry, successor
without carry propagation, comparison by the leading digits, a chain without its last operation, copy
collapsing repeated digits; firing rates per cell in :data:`distillgym.tasks.arith_bugs.FIRING_RATES`)
and ``noisy`` (wrong with probability 0.5, one digit or the sign changed, 1 unit). Unverified answers
reach the student. The student is *warm*: it starts every episode from the stored snapshot
``arith-v2-l01`` (:mod:`distillgym.students.snapshots`: difficulties 0 and 1 of every skill learnt,
12 of the 14 cells at >= 0.9 in the lead's prototype), with a fresh optimiser and no warm-up
(``warmup_steps=0``), so wrong data can undo what it knows. With a cold student nothing beat the
equal mix by much (it is starved for any data, and even a no-carry bug helps at first); with the warm
one the lead measured: equal mix 0.435, verified only 0.554 (+0.118, sd 0.008), noisy only 0.509, buggy
only 0.368, and per cell verified protects add, sub, mul, compare and chain while noisy is better for
copy and successor at difficulty 3.

**Action.** ``Box(-1, 1, (7, 4, 3), float32)``, the source-mix level
(:class:`distillgym.levels.SourceMixLevel`): weights ``(a + 1) / 2`` over cells x sources (sources in
the order ``info["sources"]``); the step's 2,048 units are allocated by largest remainder, each
(cell, source) gets ``floor(units / cost)`` examples, each source's leftover units are pooled (whole
examples to the largest leftovers) and the rest, fewer than 4 units, is charged unused.

**Observation.** ``accuracy``, ``reference``, ``budget_left``, ``loss`` and ``source_spent`` (3: the share
of the budget spent on each source).

**Reward.** The change of mean validation accuracy over all 28 cells. ``info["costs"]["by_source"]``:
per source the units spent, the examples trained on and the wrong ones among them.

**Episode end.** After 49,152 units, 24 steps of 2,048 units (every step charges its units whole).

**Arguments.** ``engine_kwargs`` ``sources``, ``costs`` (units per example), ``noise`` (the noisy wrong
rate); ``warm_start`` (a snapshot name or ``.npz`` path), ``student_kwargs`` (``warmup_steps``,
``replay_capacity``: 65,536 here, the whole episode).

distillgym/ArithSourcesOpen-v1
==============================
**Description.** The open level of the sources problem: the teacher writes its examples
(``57+68=125``, one per line) and submits each either *verified*, charged 4 units and checked (a wrong
one is dropped, as on ``ArithOpen-v1``), or *unverified* with a leading ``~`` (``~57+68=125``),
charged 1 unit and trained on as written, right or wrong (format, grid, generator-support
(``check_support``, as ``ArithOpen-v2``), leak and duplicate checks still apply). The warm student of ``ArithSources-v1``. A writer that is always right should write every line
unverified; a fallible one (a language model) must decide what its answers are worth checking.

**Action.** ``Text`` (the suite's alphabet, newline and ``~``), at most 2,048 units of lines per step
(:class:`distillgym.levels.OpenLevel` with ``line_costs``); lines past the step's units are not read.

**Observation.** ``accuracy``, ``reference``, ``budget_left``, ``loss``, ``source_spent`` (2: verified,
unverified).

**Reward.** The change of mean validation accuracy over all cells. ``info["action"]`` counts the lines
by verdict and ``unverified_wrong``; ``info["costs"]["by_source"]`` units, examples and wrong ones per kind.

**Episode end.** When 49,152 units are spent (steps of up to 2,048), or after 96 steps (a writer that
spends less).

**Arguments.** ``level_kwargs`` ``line_costs`` and ``unverified_prefix``; the rest as ``ArithSources-v1``.
``scripted-writer`` plays it with ``unverified=True`` (every line with ``~``, four times as many lines)
or ``False`` (verified lines).

distillgym/ArithForget-v1
=========================
**Description.** The warm student (``arith-v2-l01``) with a bounded replay buffer of 4,096 rows (two
steps' worth) and no warm-up: what it learns at difficulties 2 and 3 pushes out what it knew at 0 and
1 unless those are revisited. Lead's prototype: the equal mix 0.665; the equal mix over difficulties 2-3
only 0.339 (-0.326: difficulties 0-1 are forgotten to about 0); 2-3 plus 0.2 weight on 0-1: -0.029;
error-proportional: +0.009. The equal mix rehearses every cell every step, the classic remedy for
forgetting, so this id may show little headroom over it; it measures whether a teacher that
specialises pays for it.

**Action.** ``Box(-1, 1, (7, 4), float32)``, the mix level.

**Observation.** As ``ArithMix-v2``.

**Reward.** The change of mean validation accuracy over all 28 cells.

**Episode end.** After 49,152 examples, 24 steps of 2,048.

**Arguments.** ``student_kwargs`` ``replay_capacity`` (4,096) and ``warmup_steps`` (0), ``warm_start``.

Version History
===============
- v1 (all four): first versions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DEFAULTS", "WARM_START"]

WARM_START = "arith-v2-l01"
"""The stored snapshot the warm ids start from."""

_V2 = dict(suite="arith-v2", split="content", student="plain")
_WARM = dict(student_init="fixed", warm_start=WARM_START)

DEFAULTS: dict[str, dict[str, Any]] = {
    "distillgym/ArithTarget-v1": dict(
        **_V2, engine="vectorized", student_init="seed", level="mix",
        eval_weights={"add": 1.0, "sub": 1.0}, validate_all_cells=True,
    ),
    "distillgym/ArithSources-v1": dict(
        **_V2, **_WARM, engine="sources", level="source-mix",
        engine_kwargs=dict(sources=["verified", "buggy", "noisy"], costs=[4, 1, 1], noise=0.5),
        student_kwargs=dict(warmup_steps=0),
    ),
    "distillgym/ArithSourcesOpen-v1": dict(
        **_V2, **_WARM, engine="vectorized", level="open",
        level_kwargs=dict(line_costs={"verified": 4, "unverified": 1}, unverified_prefix="~"), check_support=True,
        student_kwargs=dict(warmup_steps=0),
    ),
    "distillgym/ArithForget-v1": dict(
        **_V2, **_WARM, engine="vectorized", level="mix",
        student_kwargs=dict(warmup_steps=0, replay_capacity=4096),
    ),
}
"""Each id's defaults (on top of :class:`~distillgym.config.EnvConfig`'s: budget 49,152 in steps of
2,048, 32 validation and 64 test items per cell, the ``delta_mean`` reward)."""
