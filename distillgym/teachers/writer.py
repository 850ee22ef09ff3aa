"""``scripted-writer``: a teacher for the open-ended level that writes correct examples itself.

The baseline an LLM writer must beat on ``ArithOpen-v1``. Each step it reads the observed
validation accuracy and writes the step's lines for the student's weakest cells:

1. **Frontier.** For each skill, the frontier level is its lowest level whose validation
   accuracy is below ``mastery`` (0.9); a skill whose every level is mastered has its top
   level as frontier. Levels above the frontier are not written for yet (their prerequisite,
   the level below, is not learned), levels below it are learned (the student's replay buffer
   keeps them).
2. **Weakness.** The frontier cell of skill k gets weight ``(1 - acc[k, L_k]) + floor``
   (``floor`` = 0.1 keeps a nearly mastered frontier alive); the step's lines are allocated in
   proportion, by the same largest-remainder rule as the mix level.
3. **Writing.** Each cell's lines are items of the suite's own generator drawn from the *train*
   part only (so nothing it writes leaks), distinct within the step (the env rejects repeated
   prompts in one step), with the teacher's own seeded generator, written with
   ``suite.format_line`` (``57+68=125``). When a cell's train part has fewer distinct items than
   the lines given to it, the writer writes only the distinct ones (a shorter, cheaper step)
   rather than repeats the env would reject and charge. Everything it writes is correct by
   construction; ``info["action"]["rejected"]`` stays at zero.
4. **Verified or unverified** (an open level with line costs, ``ArithSourcesOpen-v1``): with
   ``unverified=False`` (default) every line is submitted verified; with ``unverified=True`` every
   line is written with the level's unverified prefix (``~57+68=125``), cheaper per line, so the step
   holds ``units // cost`` lines of whichever kind. Its lines are right either way (a perfect writer
   loses nothing by skipping the check); the flag is there to play and compare the two kinds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_bool, check_number
from distillgym.levels import allocate
from distillgym.teachers.base import BaseTeacher

__all__ = ["ScriptedWriter"]


class ScriptedWriter(BaseTeacher):
    """Writes correct train-part examples for each skill's weakest unmastered level (see the module docstring)."""

    name = "scripted-writer"
    levels = ("open",)

    def __init__(self, mastery: float = 0.9, floor: float = 0.1, unverified: bool = False) -> None:
        self.mastery = check_number("ScriptedWriter", "mastery", mastery, 0, 1)
        self.floor = check_number("ScriptedWriter", "floor", floor, 0)
        self.unverified = check_bool("ScriptedWriter", "unverified", unverified)

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        from distillgym.tasks import make_suite

        super().reset(action_space, info, seed)
        self.suite = make_suite(info["suite"])
        self.examples_per_step = int(info["examples_per_step"])
        action = info.get("action") or {}
        costs = action.get("line_costs")
        if self.unverified and not costs:
            raise ConfigError("ScriptedWriter(unverified=True) needs an open level that takes unverified lines "
                              "(level_kwargs line_costs, e.g. distillgym/ArithSourcesOpen-v1)")
        kind = "unverified" if self.unverified else "verified"
        self.line_cost = int(costs[kind]) if costs else 1
        self.prefix = str(action.get("unverified_prefix") or "") if self.unverified else ""

    def weights(self, acc: np.ndarray) -> np.ndarray:
        """(S, D) line weights from the validation accuracy (steps 1 and 2 of the docstring)."""
        w = np.zeros_like(acc, dtype=float)
        for k in range(acc.shape[0]):
            below = np.flatnonzero(acc[k] < self.mastery)
            level = int(below[0]) if len(below) else acc.shape[1] - 1
            w[k, level] = (1.0 - acc[k, level]) + self.floor
        return w

    def act(self, observation: Any, info: dict[str, Any]) -> str:
        acc = np.asarray(observation["accuracy"], dtype=float)
        units = min(self.examples_per_step, int(info.get("budget_left", self.examples_per_step)))
        counts = allocate(self.weights(acc), units // self.line_cost)
        lines: list[str] = []
        for s, skill in enumerate(self.skills):
            for d in range(self.n_difficulties):
                if counts[s, d]:
                    items = self.suite.generate(skill, d, self.rng, int(counts[s, d]), split="train", distinct=True)
                    unique = {e.prompt: e for e in items}.values()  # a small cell cannot give more
                    lines.extend(self.prefix + self.suite.format_line(e) for e in unique)
        self.last_decision = {"lines": counts.tolist()}
        return "\n".join(lines)
