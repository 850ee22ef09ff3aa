"""``llm-writer``: a language model writes the training examples (DataEnvGym's open-ended agent).

A teacher for the open action level (``ArithOpen-v1``). Each step:

1. **Cells.** It picks the student's weakest unmastered cells by the scripted writer's rule
   (:class:`~distillgym.teachers.writer.ScriptedWriter`: per skill the lowest level below
   ``mastery``, weighted by ``1 - accuracy + floor``) and splits the step's ``samples_per_step``
   continuations over them (largest-remainder rounding, as the mix level allocates). The targeting
   is the scripted writer's own, so the two differ only in who writes the lines.
2. **Prompts.** One prompt per continuation, a few-shot list for its cell::

       A student model is learning arithmetic. On add level 0 (the sum of two numbers) its accuracy is 0.12.
       Some of its mistakes:
       37+5= it answered 3, the right answer is 42
       Correct examples of the sum of two numbers, one per line:
       12+35=47
       4+61=65
       ...

   The first lines are the report for that cell: its validation accuracy and up to
   ``n_errors`` of the student's sampled errors on it (``info["errors"]``, with the student's
   own greedy answer and the gold answer; these are validation items, so a model that copies one
   writes a line the env rejects as ``leak_val``). Then ``shots`` CORRECT example lines of the cell
   drawn with the suite's own generator from the *train* part (fresh ones per prompt, with the
   teacher's seeded generator), the list the model continues. The whole report (about 400
   SmolLM2 tokens, for every cell) is not repeated in every prompt: with no prefix sharing in
   ``complete`` it would triple the step's cost.
3. **Sampling.** All prompts go to the backend in one batched ``complete`` call (``max_tokens``
   new tokens each, ``temperature``, stop at a blank line). Why a few-shot continuation: the
   issue's measurement with SmolLM2-135M-Instruct found that none of 32 chat-form replies parsed as
   an example, while 27 of 64 continuations of a four-line list did.
4. **Lines.** Every line of every continuation is sent to the env, unfiltered (the env checks
   them: wrong, malformed, off-grid, leaking and duplicate lines are rejected, counted by kind in
   ``info["action"]["rejected"]``, and charged). The one exception is a continuation's last line
   when the continuation was cut by ``max_tokens`` (``finish_reason == "length"``): that line is
   unfinished, is not sent, and is counted in ``stats["lines_cut"]``. The writer never checks an
   answer itself.

**Cost, and the choice of 12 continuations of 40 tokens per step.** A step sends far fewer lines
than ``examples_per_step`` (about 3.5 lines per continuation, so about 40 per step), so on
``ArithOpen-v1`` the budget (49,152 lines) is never spent and the episode is truncated at the env's
``max_steps`` (96 steps): the model's cost is 96 batched calls, and the number of continuations per
call sets it: a call's cost is a fixed part (decoding ``max_tokens`` tokens) plus a part linear in
the continuations, and 12 continuations keep a SmolLM2 episode within about 15 CPU minutes
(the measurements: benchmarks/README.md, "Timings behind the defaults").
``samples_per_step`` scales the variable part linearly, ``max_tokens`` both parts.

``stats`` (reset with the teacher, read by the runner into the episode's costs): ``decisions``,
``calls`` (backend calls), ``prompts`` (continuations sampled), ``tokens_in``, ``tokens_out``,
``seconds`` (wall time in the backend), ``cpu_seconds`` (this process's CPU time in the backend),
``seconds_per_decision``, ``lines`` (lines sent), ``lines_cut``, ``lines_over_limit`` (whole lines left
out so that the action fits the env's ``Text`` space: only a backend that returns far more text than
``max_tokens`` allows can reach it), ``backend_errors``. A backend call
that raises never ends the episode: the step sends no line (nothing is charged) and the error is
counted.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_choice, check_int, check_number
from distillgym.levels import allocate
from distillgym.teachers.base import BackendOwner, BaseTeacher
from distillgym.teachers.writer import ScriptedWriter

__all__ = ["LLMWriter"]

_STAT_KEYS = (
    "decisions", "calls", "prompts", "tokens_in", "tokens_out", "seconds", "cpu_seconds",
    "seconds_per_decision", "lines", "lines_cut", "lines_over_limit", "backend_errors",
)


class LLMWriter(BackendOwner, BaseTeacher):
    """A language model continues few-shot lists of examples for the weakest cells (see the
    module docstring for the cells, the prompt, the lines sent and the cost).

    Arguments:
    - ``backend``: ``"transformers"``, ``"openai"``, ``"vllm"``, or an
      :class:`~distillgym.llm.base.LLMBackend` instance (used as is, not closed by the writer).
    - ``model``: a named model (``"smollm2"``, resolved with
      :func:`distillgym.llm.models.resolve_model`) or a model directory (transformers, vllm), or the
      served model name (openai).
    - ``base_url``: the server for ``backend="openai"``.
    - ``samples_per_step``: continuations sampled per step (12; see the module docstring).
    - ``max_tokens``: new tokens per continuation (40; about 10 per line with SmolLM2's tokenizer).
    - ``temperature``: sampling temperature (0.7; greedy decoding at 0 writes the same lines for
      prompts that share their shots).
    - ``shots``: correct example lines per prompt (4).
    - ``n_errors``: the student's errors on the cell shown per prompt (2; 0 shows none).
    - ``mastery``, ``floor``: the cell rule of the scripted writer.
    - ``backend_kwargs``: more constructor arguments of the backend (``device``, ``dtype``, ...).
    """

    name = "llm-writer"
    levels = ("open",)

    def __init__(
        self,
        backend: Any = "transformers",
        model: str | None = "smollm2",
        base_url: str | None = None,
        samples_per_step: int = 12,
        max_tokens: int = 40,
        temperature: float = 0.7,
        shots: int = 4,
        n_errors: int = 2,
        mastery: float = 0.9,
        floor: float = 0.1,
        backend_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from distillgym.llm import BACKENDS

        if isinstance(backend, str):
            check_choice("LLMWriter backend", backend, BACKENDS)
            if base_url is not None and backend != "openai":
                raise ConfigError(f"LLMWriter: base_url is for backend='openai', not {backend!r}")
        elif not callable(getattr(backend, "complete", None)):
            raise ConfigError(f"LLMWriter backend must be a name in {sorted(BACKENDS)} or an LLMBackend, got {backend!r}")
        for n, v, low in (("samples_per_step", samples_per_step, 1), ("max_tokens", max_tokens, 1),
                          ("shots", shots, 1), ("n_errors", n_errors, 0)):
            check_int("LLMWriter", n, v, low)
        check_number("LLMWriter", "temperature", temperature, 0)
        self.backend_spec = backend
        self.model = model
        self.base_url = base_url
        self.samples_per_step = int(samples_per_step)
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.shots = int(shots)
        self.n_errors = int(n_errors)
        self.targeting = ScriptedWriter(mastery=mastery, floor=floor)
        self.backend_kwargs = dict(backend_kwargs or {})
        self._init_backend(backend)
        self.stats: dict[str, float] = dict.fromkeys(_STAT_KEYS, 0)

    # ------------------------------------------------------------------ set-up
    @property
    def backend(self) -> Any:
        """The LLM backend, built on first use (a named model is resolved to its directory)."""
        if self._backend is None:
            from distillgym.llm import make_backend

            kwargs = dict(self.backend_kwargs)
            model = self.model if self.model is not None else kwargs.pop("model", None)
            if self.backend_spec in ("transformers", "vllm"):
                if not model:
                    raise ConfigError(
                        f"LLMWriter(backend={self.backend_spec!r}) needs model='smollm2' or a local model directory"
                    )
                from distillgym.llm.models import resolve_model

                model = str(resolve_model(model))
            if model is not None:
                kwargs["model"] = model
            if self.base_url is not None:
                kwargs.setdefault("base_url", self.base_url)
            self._backend = make_backend(self.backend_spec, **kwargs)
        return self._backend

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        from distillgym.tasks import make_suite

        super().reset(action_space, info, seed)
        if info.get("level", "open") != "open":
            raise ConfigError(f"llm-writer writes examples for the open level, got an env of level {info.get('level')!r}")
        self.suite = make_suite(info["suite"])
        self.examples_per_step = int(info["examples_per_step"])
        self.max_chars = int(getattr(action_space, "max_length", 0) or 0)  # the Text space's limit (0: none)
        self.descriptions = {s: self._describe(s, info) for s in self.skills}
        backend = self.backend  # configuration errors surface here, before the first step
        if seed is not None and hasattr(backend, "reseed"):
            backend.reseed(int(seed))
        self.stats = dict.fromkeys(_STAT_KEYS, 0)
        self.stats["seconds"] = self.stats["cpu_seconds"] = self.stats["seconds_per_decision"] = 0.0

    @staticmethod
    def _describe(skill: str, info: dict[str, Any]) -> str:
        """The skill's description without its example (``"the sum of two numbers"``)."""
        text = str((info.get("skill_descriptions") or {}).get(skill, "") or skill)
        return text.split(":")[0].strip() or skill

    # ------------------------------------------------------------------ prompts
    def build_prompt(self, s: int, d: int, acc: float, errors: list[dict[str, Any]]) -> str:
        """The few-shot prompt for cell ``(skill index s, level d)`` (see the module docstring)."""
        skill = self.skills[s]
        desc = self.descriptions[skill]
        lines = [f"A student model is learning arithmetic. On {skill} level {d} ({desc}) its accuracy is {acc:.2f}."]
        mine = [e for e in errors if e.get("skill") == skill and int(e.get("difficulty", -1)) == d][: self.n_errors]
        if mine:
            lines.append("Some of its mistakes:")
            lines += [f"{e['prompt']} it answered {e['student']}, the right answer is {e['gold']}" for e in mine]
        lines.append(f"Correct examples of {desc}, one per line:")
        items = self.suite.generate(skill, d, self.rng, self.shots, split="train", distinct=True)
        lines += [self.suite.format_line(e) for e in items]
        return "\n".join(lines) + "\n"

    def plan(self, acc: np.ndarray) -> list[tuple[int, int]]:
        """The cell of each of the step's continuations, in skill-major order."""
        counts = allocate(self.targeting.weights(acc), self.samples_per_step)
        return [(s, d) for s in range(counts.shape[0]) for d in range(counts.shape[1]) for _ in range(int(counts[s, d]))]

    @staticmethod
    def lines_of(text: str, cut: bool) -> tuple[list[str], int]:
        """The non-empty lines of a continuation, without its last line when it was ``cut`` by
        ``max_tokens``; returns ``(lines, 1 if a line was dropped else 0)``."""
        parts = text.split("\n")
        dropped = 0
        if cut and parts and parts[-1].strip():
            parts, dropped = parts[:-1], 1
        return [p.strip() for p in parts if p.strip()], dropped

    # ------------------------------------------------------------------ acting
    def act(self, observation: Any, info: dict[str, Any]) -> str:
        acc = np.asarray(observation["accuracy"], dtype=float)
        self.stats["decisions"] += 1
        cells = self.plan(acc)
        errors = list(info.get("errors") or [])
        prompts = [self.build_prompt(s, d, float(acc[s, d]), errors) for s, d in cells]
        self.stats["prompts"] += len(prompts)
        self.stats["calls"] += 1
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            outs = self.backend.complete(prompts, self.max_tokens, self.temperature, ["\n\n"])
        except Exception as err:  # the model never ends the episode
            self.stats["backend_errors"] += 1
            self.last_decision = {"error": f"{type(err).__name__}: {err}", "cells": cells}
            return ""
        finally:
            self.stats["seconds"] += time.perf_counter() - t0
            self.stats["cpu_seconds"] += time.process_time() - c0
            self.stats["seconds_per_decision"] = self.stats["seconds"] / self.stats["decisions"]
        lines: list[str] = []
        for c in outs:
            self.stats["tokens_in"] += int(c.tokens_in)
            self.stats["tokens_out"] += int(c.tokens_out)
            got, dropped = self.lines_of(c.text, c.finish_reason == "length")
            lines += got
            self.stats["lines_cut"] += dropped
        if self.max_chars:  # the action must fit the Text space; whole lines only
            total, keep = 0, 0
            for line in lines:
                total += len(line) + (1 if keep else 0)
                if total > self.max_chars:
                    break
                keep += 1
            self.stats["lines_over_limit"] += len(lines) - keep
            lines = lines[:keep]
        self.stats["lines"] += len(lines)
        self.last_decision = {
            "cells": [[self.skills[s], d] for s, d in dict.fromkeys(cells)],
            "prompts": len(prompts),
            "lines": len(lines),
        }
        return "\n".join(lines)
