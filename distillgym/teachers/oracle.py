"""``oracle-lookahead``: a greedy one-step look-ahead reference. **Not a valid teacher: it peeks.**

At every step it snapshots the environment (``TeachingEnv.snapshot()``), plays each candidate action
for one real step (data generated, the student trained, the validation set scored), restores the
snapshot after each, and returns the candidate with the best validation accuracy after the step.
The runner then plays that action, which trains exactly what the look-ahead of it trained (the
env's step is a function of its snapshot and the action), so the episode is the one a teacher that
always knew the best next action would produce. It reads the validation score of steps it has not
taken, which no teacher can; it never reads the hidden test set (a look-ahead of the last step
scores it, as every last step does, and the oracle ignores it).

It is an upper bound on *one-step greedy* choice among its candidates, not on every curriculum: a
teacher that plans several steps ahead can beat it. Its episodes are marked ``reference_row: true``
in results files, so the leaderboard shows them as a reference row and leaves them out of the
ranking and the Holm family. Its cost is real: each step trains the student once per candidate
plus once for the chosen action (29 or 30 steps of training per step on the arithmetic envs), and
the look-ahead's student tokens, FLOPs and engine calls are counted in the episode's ``costs``
(through ``stats``; see :mod:`distillgym.harness.runner`).

Candidates (``candidates``):

- ``"cells"``: every (skill, difficulty) cell, in skill-major order: the cell action on a cell env,
  the one-hot mix on a mix env, the cell's lines on an open env; on a source-mix env every (cell,
  source) pair (the one-hot action: the step's units on that cell from that source), cell-major;
- ``"cells+stratified"``: those and the equal mix over every cell (over cells x sources on a
  source-mix env; mix, source-mix and open envs only);
- ``"auto"`` (default): ``"cells"`` on a cell env, ``"cells+stratified"`` on the others.

On an open env a candidate's lines are written as the plan adapters write them
(:class:`distillgym.teachers.adapters.PlanToText`): the step's line count allocated over the
candidate's cells by largest remainders, each line from the suite's own generator on the *train*
part, distinct within the step, from a generator seeded by (episode seed, step, candidate); with
line costs (``ArithSourcesOpen-v1``) as many verified lines as the step's units buy.

Ties on validation accuracy (common early, when every candidate scores 0) are broken by the lower
mean validation loss when the env reports it (``tie_break="val_loss"``, default; every v1 env does),
then by candidate order; ``tie_break="first"`` uses candidate order only. A candidate whose step
raises a distillgym error (a diverged student) is skipped and counted in ``stats["lookahead_failed"]``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, DistillGymError, check_choice
from distillgym.teachers.base import BaseTeacher

__all__ = ["OracleLookahead", "CANDIDATE_SETS"]

CANDIDATE_SETS = ("auto", "cells", "cells+stratified")
TIE_BREAKS = ("val_loss", "first")
_STREAM_ORACLE = 79  # the open level's candidate lines: rng_for(seed, 79, step, candidate)


def _mean_loss(info: dict[str, Any]) -> float:
    """Mean validation loss over cells with a value (nan when the env reports none)."""
    v = info.get("val_loss")
    if not v:
        return math.nan
    xs = [float(x) for row in v for x in row if x is not None]
    return float(np.mean(xs)) if xs else math.nan


class OracleLookahead(BaseTeacher):
    """Reference only (not a valid teacher: it peeks): greedy one-step look-ahead over every cell."""

    name = "oracle-lookahead"
    levels = ("cell", "mix", "open", "source-mix")
    needs_env = True
    """The runner gives it the env (``bind_env``) before ``reset``."""
    reference_row = True
    """Its episodes are a reference row in the leaderboard, never ranked."""

    def __init__(self, candidates: str = "auto", tie_break: str = "val_loss") -> None:
        self.candidates = check_choice("oracle candidate set", candidates, CANDIDATE_SETS)
        self.tie_break = check_choice("oracle tie_break", tie_break, TIE_BREAKS)
        self._env: Any = None
        self.stats: dict[str, float] = {}

    def bind_env(self, env: Any) -> None:
        """Give the oracle the (unwrapped) env it will peek into; it needs ``snapshot``, ``restore``
        and ``step``."""
        env = getattr(env, "unwrapped", env)
        for attr in ("snapshot", "restore", "step"):
            if not callable(getattr(env, attr, None)):
                raise ConfigError(
                    f"oracle-lookahead needs an env with snapshot() and restore() (distillgym.env.TeachingEnv); "
                    f"{type(env).__name__} has no {attr}()"
                )
        self._env = env

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        if self._env is None:
            raise ConfigError(
                "oracle-lookahead needs the environment itself (it snapshots it and tries every candidate): run it "
                "with distillgym.harness.runner.run_episode or `distillgym bench`, or call teacher.bind_env(env) before reset"
            )
        self.level = str(info.get("level", "cell"))
        mode = self.candidates
        if mode == "auto":
            mode = "cells" if self.level == "cell" else "cells+stratified"
        if mode == "cells+stratified" and self.level == "cell":
            raise ConfigError("oracle-lookahead: candidates='cells+stratified' needs a mix or open env; a cell env "
                              "has no mixed step (use 'cells' or 'auto')")
        self.mode = mode
        self.seed = 0 if seed is None else int(seed)
        self.stats = {
            "lookahead_steps": 0, "lookahead_failed": 0, "lookahead_examples": 0, "lookahead_seconds": 0.0,
            "student_tokens": 0, "student_flops": 0.0, "engine_tokens_in": 0, "engine_tokens_out": 0,
            "engine_calls": 0,
        }

    # ------------------------------------------------------------------ candidates
    def _weights(self) -> list[tuple[str, np.ndarray]]:
        shape = (len(self.skills), self.n_difficulties)
        out = []
        for s, d in self.cells:
            w = np.zeros(shape)
            w[s, d] = 1.0
            out.append((f"{self.skills[s]} L{d}", w))
        if self.mode == "cells+stratified":
            out.append(("stratified", np.ones(shape)))
        return out

    def _write(self, weights: np.ndarray, n: int, rng: np.random.Generator) -> str:
        """``n`` lines allocated over ``weights``' cells, each from the train part, distinct within the step."""
        from distillgym.levels import allocate

        suite = self._env.suite
        counts = allocate(weights, n)
        lines: list[str] = []
        for s, skill in enumerate(self.skills):
            for d in range(self.n_difficulties):
                if counts[s, d]:
                    items = suite.generate(skill, d, rng, int(counts[s, d]), split="train", distinct=True)
                    lines += [suite.format_line(e) for e in {e.prompt: e for e in items}.values()]
        return "\n".join(lines)

    def candidate_actions(self, t: int) -> list[tuple[str, Any]]:
        """Step ``t``'s candidates as ``(label, action)`` in the env's action space, in the order tried."""
        from distillgym.levels import mix_to_action
        from distillgym.seeding import rng_for

        if self.level == "cell":
            return [(f"{self.skills[s]} L{d}", np.array([s, d])) for s, d in self.cells]
        if self.level == "mix":
            return [(label, mix_to_action(w)) for label, w in self._weights()]
        if self.level == "source-mix":
            sources = list(self._env.sources)
            out = []
            for label, w in self._weights():
                if label == "stratified":
                    out.append((label, mix_to_action(np.ones((*w.shape, len(sources))))))
                    continue
                for k, src in enumerate(sources):
                    v = np.zeros((*w.shape, len(sources)))
                    v[:, :, k] = w
                    out.append((f"{label} {src}", mix_to_action(v)))
            return out
        if self.level == "open":
            env = self._env
            cost = int((getattr(env.level, "line_costs", None) or {}).get("verified", 1))
            n = min(int(env.examples_per_step), int(env.budget_left)) // cost
            return [(label, self._write(w, n, rng_for(self.seed, _STREAM_ORACLE, t, k)))
                    for k, (label, w) in enumerate(self._weights())]
        raise ConfigError(f"oracle-lookahead: unknown action level {self.level!r}")

    # ------------------------------------------------------------------ the look-ahead
    def lookahead(self) -> list[dict[str, Any]]:
        """Try every candidate for one step from the env's current state and restore it after each.
        Returns one record per candidate: ``label``, ``action``, ``val_accuracy``, ``val_loss`` (mean;
        nan when not reported), ``failed`` (the error, or None)."""
        env = self._env
        snap = env.snapshot()
        out = []
        t0 = time.perf_counter()
        try:
            for label, action in self.candidate_actions(int(snap["t"]) + 1):
                env.restore(snap)
                rec: dict[str, Any] = {"label": label, "action": action, "val_accuracy": -math.inf,
                                       "val_loss": math.nan, "failed": None}
                try:
                    _, _, _, _, info = env.step(action)
                except DistillGymError as err:
                    rec["failed"] = f"{type(err).__name__}: {err}"
                    self.stats["lookahead_failed"] += 1
                else:
                    rec["val_accuracy"] = float(info["mean_accuracy"])
                    rec["val_loss"] = _mean_loss(info)
                    c = info.get("costs") or {}
                    self.stats["lookahead_examples"] += int(c.get("examples", 0))
                    self.stats["student_tokens"] += int(c.get("tokens", 0))
                    self.stats["student_flops"] += float(c.get("student_flops", 0.0))
                    self.stats["engine_tokens_in"] += int(c.get("engine_tokens_in", 0))
                    self.stats["engine_tokens_out"] += int(c.get("engine_tokens_out", 0))
                    self.stats["engine_calls"] += int(c.get("engine_calls", 0))
                self.stats["lookahead_steps"] += 1
                out.append(rec)
        finally:
            env.restore(snap)
            self.stats["lookahead_seconds"] += time.perf_counter() - t0
        return out

    def best(self, records: list[dict[str, Any]]) -> int:
        """Index of the best record: highest validation accuracy, then (``tie_break="val_loss"``)
        lowest mean validation loss, then the first in candidate order."""
        def key(i: int) -> tuple[float, float, int]:
            r = records[i]
            loss = r["val_loss"] if self.tie_break == "val_loss" and not math.isnan(r["val_loss"]) else math.inf
            return (-r["val_accuracy"], loss, i)

        return min(range(len(records)), key=key)

    def act(self, observation: Any, info: dict[str, Any]) -> Any:
        if self._env is None:
            raise ConfigError("oracle-lookahead has no env: call bind_env(env) and reset() first")
        records = self.lookahead()
        ok = [r for r in records if r["failed"] is None]
        if not ok:
            raise ConfigError(f"oracle-lookahead: every candidate step failed at this step; first: {records[0]['failed']}")
        k = self.best(records)
        self.last_decision = {
            "candidate": records[k]["label"],
            "val_accuracy": records[k]["val_accuracy"],
            "scores": {r["label"]: r["val_accuracy"] for r in records},
        }
        action = records[k]["action"]
        if self.level == "cell":
            self._last = int(action[0]) * self.n_difficulties + int(action[1])
        return action
