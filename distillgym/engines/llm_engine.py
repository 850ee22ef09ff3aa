"""The LLM data engine: a language model writes the training examples, the suite checks them.

:class:`LLMEngine` implements the :class:`~distillgym.engines.base.DataEngine` protocol with
the three generation strategies compared in "Balancing Cost and Effectiveness of Synthetic
Data Generation Strategies for LLMs" (Chan et al., 2024):

* ``"new-question"``: the model writes a whole example (prompt and answer);
* ``"answer"`` (answer augmentation): the prompt is drawn from the suite's train part and the
  model writes its answer;
* ``"rephrase"`` (question rephrasing): the model rewrites a train-part prompt into a new one
  of the same kind; the answer is recomputed by the suite's solver (the model writes none).

**The prompts.** Every generation gets a few-shot prompt: a header that says what the skill
asks (``suite.skill_descriptions``, else the skill name) and at which level, then ``shots``
examples of the planned cell drawn from the suite's train part (``split``), one per line as
``suite.format_line`` writes them (``57+68=125``; a fresh set per generation, or with
``shared_shots``, the default for answer, one set per plan item), then what the model continues:

* new-question: nothing (the model writes the next line);
* answer: the source prompt (``57+68=``; the model writes the rest of the line);
* rephrase: the shots are shown as ``old -> new`` pairs of two train prompts of the cell, and
  the prompt ends with ``source ->`` (the model writes the new prompt).

A continuation of a few-shot list, not a chat request: measured with SmolLM2-135M-Instruct,
no chat-form reply parsed at all, while list continuation does (issue 9: none of 32 chat replies for one
two-digit addition parsed; 27 of 64 list continuations did).
Replies come in batches of ``batch_size`` prompts per backend call, sampled at
``temperature`` (default 0.8 for new-question and rephrase, where samples must differ, and 0,
greedy, for answer, where the prompt already differs and the model's best answer is wanted).
New-question and rephrase use no stop string (a batch runs as long as its longest row
anyway) and take the first non-empty line of a reply; answer stops at the first newline and
takes the reply's first line (a reply that starts a new line has no answer).

**Budget and outcome.** A :class:`~distillgym.types.PlanItem`'s ``n`` is the number of
*generations* (teacher queries, the budget unit of the study above), not of examples: ``n``
generations are made and those that pass every check are the examples that reach the
student, so ``EngineCost.examples <= n``. ``EngineCost.calls`` counts generations (so
``examples / calls`` is the verified fraction); ``tokens_in`` / ``tokens_out`` are the model's
tokens read and written; ``seconds`` is wall time; ``stats["batches"]`` counts backend calls.

**Checks.** Each generation gets exactly one verdict, so ``examples + rejected == calls``:

1. ``malformed`` (an empty reply, and for ``rephrase`` a reply with no prompt the solver reads);
2. ``copied``: new-question wrote a line shown in its own prompt, or rephrase returned its
   source or a shown prompt (the model added nothing; such a line is real train-part data
   but is not counted as the model's);
3. then :func:`distillgym.tasks.checks.check_lines` on the line: ``overlong``, ``malformed``,
   ``off_grid`` (no cell, or outside its generator's support: a chain that goes below 0; since
   issue 20, which changes no registered id: ``ArithSkills-LLMData-v1`` writes answers to the
   generator's own prompts), ``leak_val`` / ``leak_test`` (the prompt lies in the validation or test part;
   checked when ``split="train"``), ``wrong``, ``duplicate`` (a prompt already accepted in this
   call);
4. ``off_cell``: a correct example of another cell than the planned one (the teacher's
   action decides the cell, so it is dropped).

Nothing unverified reaches the caller: every returned example is ``verified=True`` with the
suite's recomputed gold answer and ``source="llm:<strategy>"``.

**Reference accuracy.** The engine's accuracy on skill k is how often the model's written
answers are right: among generations of k (as planned) that reached the answer check,
``correct / (correct + wrong)``, where ``correct`` counts the lines the check passed (accepted,
``duplicate`` and ``off_cell``) and ``copied`` lines count for neither. It is the teacher
accuracy P_T(k) that IOA's gap ``D(k) = (P_T(k) - P_S(k)) / P_T(k)`` compares the student with
(for ``rephrase`` it is 1: the solver writes the answers). It is estimated as
``(correct + a) / (correct + wrong + a + b)`` with the prior ``prior = (a, b) = (1, 1)``
(Laplace's rule: 0.5 before any generation) from one of two sets of generations, chosen by
``reference``:

* ``"running"``: every generation this engine has made so far (``tally``; ``reset_tally()``
  forgets them, back to the prior). It changes as the engine works, so an environment that
  reads it at each ``reset`` would not replay an episode from its seed alone.
* ``"calibrated"`` (default): ``calibration`` generations per cell (default 8) made once, on
  the first call, from the engine's own ``seed`` (not from any episode's), through the same
  code path; fixed from then on, so every episode sees the same reference and the engine's
  first reference is already measured. The counts are kept per process and in
  ``$DISTILLGYM_CACHE/llm-engine/`` keyed by the model (its resolved directory and its files'
  sizes and times), the suite, the strategy, shots, temperature, calibration and seed, so
  another process with the same settings reads them instead of generating again (with the
  transformers backend on the same machine the generations, hence the counts, are the same).
  ``calibration_tally`` holds them; ``stats["calibration_seconds"]`` what they cost here.

**Determinism.** The backend is reseeded from ``rng`` at the start of every ``generate``
call, and shots and sources are drawn from ``rng``, so the same ``rng`` state gives the same
examples (bit for bit with the transformers backend on the same machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_bool, check_choice, check_int, check_number
from distillgym.seeding import rng_for
from distillgym.tasks.base import TaskSuite
from distillgym.types import EngineCost, Example, PlanItem

__all__ = ["LLMEngine", "STRATEGIES", "VERDICTS", "REFERENCES"]

STRATEGIES = ("new-question", "answer", "rephrase")
REFERENCES = ("calibrated", "running")
STREAM_CALIBRATION = 11
"""The seed stream of the calibration draws: ``rng_for(seed, STREAM_CALIBRATION, skill, level)``."""
_CALIBRATION_VERSION = 1  # bump when prompts or checks change, so cached counts are not reused
_CALIBRATIONS: dict[str, dict[tuple[str, int], Counter[str]]] = {}
_CAL_LOCK = threading.Lock()
VERDICTS = (
    "ok",
    "malformed",
    "copied",
    "overlong",
    "off_grid",
    "leak_val",
    "leak_test",
    "wrong",
    "duplicate",
    "off_cell",
)
"""Every verdict a generation can get (``ok``: it became an example)."""

_CORRECT = ("ok", "duplicate", "off_cell")  # lines whose answer passed the check


class LLMEngine:
    """A language model writes the training examples of a plan; see the module docstring.

    Arguments:
    - ``suite``: the task suite (it needs ``solve`` and ``classify`` to check written lines).
    - ``model``: a named model (``"smollm2"``) or a model directory (transformers, vllm), or a
      served model name (openai); ignored when ``backend`` is an object.
    - ``strategy``: ``"new-question"``, ``"answer"`` or ``"rephrase"``.
    - ``backend``: ``"transformers"`` (default), ``"openai"``, ``"vllm"``, or an
      :class:`~distillgym.llm.base.LLMBackend` instance (used as is).
    - ``shots``: train-part examples shown in each prompt (>= 1).
    - ``temperature``: sampling temperature (0 is greedy: the same prompt gives the same reply);
      None: 0 for answer, 0.8 for new-question and rephrase.
    - ``batch_size``: prompts per backend call.
    - ``shared_shots``: show one set of shots to every generation of a plan item (its prompts then
      share a prefix, which the transformers backend runs once: for answer about 5 times less
      compute) instead of a fresh set per generation; None: True for answer (the sources differ
      anyway), False for new-question and rephrase (varied prompts give varied examples).
    - ``prior``: ``(a, b)``, pseudo-counts of right and wrong answers behind the reference
      accuracy (see the module docstring).
    - ``reference``: ``"calibrated"`` or ``"running"`` (see the module docstring).
    - ``calibration``: generations per cell behind the calibrated reference (>= 1).
    - ``seed``: seed of the calibration draws.
    - ``backend_kwargs``: more arguments for the backend (``device``, ``dtype``, ...).
    """

    name = "llm"

    def __init__(
        self,
        suite: TaskSuite,
        model: str | None = "smollm2",
        strategy: str = "new-question",
        backend: Any = "transformers",
        shots: int = 4,
        temperature: float | None = None,
        batch_size: int = 64,
        shared_shots: bool | None = None,
        prior: tuple[float, float] = (1.0, 1.0),
        reference: str = "calibrated",
        calibration: int = 8,
        seed: int = 0,
        backend_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from distillgym.llm import BACKENDS, make_backend

        if not isinstance(suite, TaskSuite):
            raise ConfigError(f"LLMEngine needs a TaskSuite, got {type(suite).__name__}")
        self.suite = suite
        self.strategy = check_choice("LLMEngine strategy", strategy, STRATEGIES)
        self.shots = check_int("LLMEngine", "shots", shots, 1)
        if temperature is None:
            temperature = 0.0 if strategy == "answer" else 0.8
        self.temperature = check_number("LLMEngine", "temperature", temperature, 0)
        self.shared_shots = (strategy == "answer") if shared_shots is None else check_bool("LLMEngine", "shared_shots",
                                                                                              shared_shots)
        self.reference = check_choice("LLMEngine reference", reference, REFERENCES)
        self.calibration = check_int("LLMEngine", "calibration", calibration, 1)
        self.seed = check_int("LLMEngine", "seed", seed, 0)
        self.batch_size = check_int("LLMEngine", "batch_size", batch_size, 1)
        if not (isinstance(prior, (tuple, list)) and len(prior) == 2):
            raise ConfigError(f"LLMEngine prior must be a pair (right, wrong) of pseudo-counts, got {prior!r}")
        a = check_number("LLMEngine", "prior[0] (right answers)", prior[0], 0, open_low=True)
        b = check_number("LLMEngine", "prior[1] (wrong answers)", prior[1], 0, open_low=True)
        self.prior = (a, b)
        if backend_kwargs is not None and not isinstance(backend_kwargs, dict):
            raise ConfigError(f"LLMEngine backend_kwargs must be a dict, got {type(backend_kwargs).__name__}")
        if isinstance(backend, str):
            check_choice("LLM backend", backend, BACKENDS)
            kwargs = dict(backend_kwargs or {})
            if "api_key" in kwargs:
                raise ConfigError("LLMEngine does not take api_key in backend_kwargs; set OPENAI_API_KEY instead")
            if model is not None:
                kwargs.setdefault("model", model)
            if backend in ("transformers", "vllm") and not kwargs.get("model"):
                raise ConfigError(
                    f"LLMEngine(backend={backend!r}) needs model=: a named model such as 'smollm2' or a model directory"
                )
            self.backend = make_backend(backend, **kwargs)
            self._model_spec: str | None = str(kwargs["model"]) if backend != "openai" else None
        elif callable(getattr(backend, "complete", None)):
            if backend_kwargs:
                raise ConfigError("backend_kwargs are for a backend given by name, not for a backend object")
            self.backend = backend
            self._model_spec = None
        else:
            raise ConfigError(f"LLMEngine backend must be a name in {sorted(BACKENDS)} or an LLMBackend, got {backend!r}")
        self.model_name = str(getattr(self.backend, "model_name", "") or model or "")
        self._given = {"model": model, "backend": backend if isinstance(backend, str) else None,
                       "backend_kwargs": dict(backend_kwargs or {})}
        self.tally: dict[tuple[str, int], Counter[str]] = {}
        self.calibration_tally: dict[tuple[str, int], Counter[str]] | None = None
        self.stats: dict[str, float] = {"batches": 0, "generations": 0, "seconds": 0.0, "calibration_seconds": 0.0}

    def resolved_config(self) -> dict[str, Any]:
        """The constructor arguments with every default resolved: the temperature and shared shots that
        depend on the strategy, and ``backend_kwargs`` with the backend's own defaults filled in from its
        signature (``model`` is the engine's; a credential is never among them). For a backend given by
        name it rebuilds the engine: ``LLMEngine(suite, **engine.resolved_config())``; for a backend
        object, ``backend`` is its class and ``backend_kwargs`` what it reads back."""
        import inspect

        from distillgym.llm import backend_class
        from distillgym.registry import class_path, resolved_args

        given = self._given
        if given["backend"] is not None:
            sig = inspect.signature(backend_class(given["backend"]))
            kwargs = dict(given["backend_kwargs"])
            try:
                bound = sig.bind_partial(**kwargs)
            except TypeError:  # the backend refused them when it was built; record what was given
                backend_kwargs = kwargs
            else:
                bound.apply_defaults()
                backend_kwargs = {k: v for k, v in bound.arguments.items()
                                  if sig.parameters[k].kind not in (inspect.Parameter.VAR_KEYWORD,
                                                                   inspect.Parameter.VAR_POSITIONAL)}
                backend_kwargs.update(bound.arguments.get(next((k for k, p in sig.parameters.items()
                                                                if p.kind is inspect.Parameter.VAR_KEYWORD), ""), {}))
            backend_kwargs.pop("model", None)
            if backend_kwargs.get("api_key", 0) is None:
                backend_kwargs.pop("api_key")  # the openai backend reads OPENAI_API_KEY
            backend: Any = given["backend"]
        else:
            backend, backend_kwargs = class_path(self.backend), resolved_args(self.backend)
        return {
            "model": given["model"], "strategy": self.strategy, "backend": backend, "shots": self.shots,
            "temperature": self.temperature, "batch_size": self.batch_size, "shared_shots": self.shared_shots,
            "prior": list(self.prior), "reference": self.reference, "calibration": self.calibration,
            "seed": self.seed, "backend_kwargs": backend_kwargs,
        }

    def __repr__(self) -> str:
        return f"LLMEngine(suite={self.suite.name!r}, model={self.model_name!r}, strategy={self.strategy!r})"

    # ------------------------------------------------------------------ prompts
    def header(self, skill: str, level: int) -> str:
        """The first line of every prompt for a cell: what the skill asks, and the level."""
        what = self.suite.skill_descriptions.get(skill, "")
        what = what.split(":")[0].strip() if what else skill  # "the sum of two numbers: 57+68= -> 125"
        what = what[:1].upper() + what[1:]
        top = self.suite.n_difficulties - 1
        if self.strategy == "rephrase":
            return f"{what} (level {level} of 0-{top}). Each problem rewritten as a new problem of the same kind:\n"
        return f"{what} (level {level} of 0-{top}). Examples:\n"

    def _draw(self, skill: str, level: int, rng: np.random.Generator, n: int, split: str | None,
              avoid: str | None = None) -> list[Example]:
        """``n`` distinct train-part items of a cell, none with the prompt ``avoid``."""
        items = self.suite.generate(skill, level, rng, n + 1, split=split, distinct=True)
        keep = [e for e in items if e.prompt != avoid]
        return keep[:n]

    def _jobs(self, item: PlanItem, rng: np.random.Generator, split: str | None) -> list[dict[str, Any]]:
        """One job per generation: the prompt text, what it showed, and its source prompt."""
        skill, level, n = item.skill, int(item.difficulty), int(item.n)
        head = self.header(skill, level)
        fmt = self.suite.format_line
        common: list[Example] | None = None
        if self.shared_shots and n:
            common = self.suite.generate(skill, level, rng, self.shots, split=split, distinct=True)
        sources: list[Example] = []
        if self.strategy != "new-question" and n:
            taken = {e.prompt for e in common or ()}
            sources = [e for e in self.suite.generate(skill, level, rng, n + len(taken), split=split, distinct=True)
                       if e.prompt not in taken][:n]
            sources += self.suite.generate(skill, level, rng, n - len(sources), split=split)  # a tiny cell only
        jobs = []
        for i in range(n):
            src = sources[i].prompt if sources else None
            if common is not None and self.strategy != "rephrase":
                text = head + "".join(fmt(e) + "\n" for e in common) + (src or "")
                shown = {fmt(e) for e in common} if self.strategy == "new-question" else set()
            elif common is not None:
                pairs = list(zip(common[0::2], common[1::2], strict=False))
                text = head + "".join(f"{a.prompt} -> {b.prompt}\n" for a, b in pairs) + f"{src} ->"
                shown = {e.prompt for e in common}
            elif self.strategy == "rephrase":
                pool = self._draw(skill, level, rng, 2 * self.shots, split, avoid=src)
                pairs = list(zip(pool[0::2], pool[1::2], strict=False))
                text = head + "".join(f"{a.prompt} -> {b.prompt}\n" for a, b in pairs) + f"{src} ->"
                shown = {e.prompt for e in pool}
            else:
                shots = self._draw(skill, level, rng, self.shots, split, avoid=src)
                text = head + "".join(fmt(e) + "\n" for e in shots) + (src or "")
                shown = {fmt(e) for e in shots} if self.strategy == "new-question" else set()
            jobs.append({"skill": skill, "level": level, "prompt": text, "shown": shown, "source": src})
        return jobs

    def max_tokens(self) -> int:
        """New tokens per reply: enough for the longest line the suite allows (a token holds at
        least one character), plus room for a leading space or newline."""
        s = self.suite
        if self.strategy == "answer":
            return s.max_answer_len + 2
        if self.strategy == "rephrase":
            return s.max_prompt_len + 3
        return s.max_line_len + 2

    # ------------------------------------------------------------------ the reply
    def _line(self, job: dict[str, Any], reply: str) -> tuple[str | None, str | None]:
        """``(line to check, None)`` or ``(None, verdict)`` for a verdict decided before the check."""
        if self.strategy == "answer":
            first = reply.split("\n", 1)[0].strip()
            return (job["source"] + first, None) if first else (None, "malformed")
        line = next((x.strip() for x in reply.split("\n") if x.strip()), "")
        if not line:
            return None, "malformed"
        if self.strategy == "new-question":
            return (None, "copied") if line in job["shown"] else (line, None)
        sep = self.suite.answer_separator  # rephrase: keep the new prompt, recompute its answer
        cut = line.find(sep)
        prompt = line[: cut + len(sep)] if cut >= 0 else line + sep
        if prompt == job["source"] or prompt in job["shown"]:
            return None, "copied"
        try:
            gold = self.suite.solve(prompt)
        except Exception:  # noqa: BLE001 - the suite's parser refuses the prompt
            return None, "malformed"
        return prompt + gold, None

    # ------------------------------------------------------------------ DataEngine
    def generate(
        self, plan: Sequence[PlanItem], rng: np.random.Generator, split: str | None = "train"
    ) -> tuple[list[Example], EngineCost]:
        """The verified examples the model wrote for ``plan`` (``n`` generations per item) and
        their cost; see the module docstring."""
        out, cost = self._run(plan, rng, split, self.tally)
        self.stats["generations"] += cost.calls
        self.stats["seconds"] += cost.seconds
        return out, cost

    def _run(
        self, plan: Sequence[PlanItem], rng: np.random.Generator, split: str | None,
        tally: dict[tuple[str, int], Counter[str]],
    ) -> tuple[list[Example], EngineCost]:
        from distillgym.tasks.checks import check_lines

        t0 = time.perf_counter()
        if split not in (None, "train"):
            raise ConfigError(f"the LLM engine writes training data: split must be 'train' or None, got {split!r}")
        jobs: list[dict[str, Any]] = []
        for item in plan:
            if isinstance(item.n, bool) or not isinstance(item.n, (int, np.integer)) or item.n < 0:
                raise ConfigError(f"plan item {item} asks for n={item.n!r}; n must be an integer >= 0")
            self.suite.check_cell(item.skill, item.difficulty)
            jobs.extend(self._jobs(item, rng, split))
        cost = EngineCost()
        out: list[Example] = []
        if jobs and hasattr(self.backend, "reseed"):
            self.backend.reseed(int(rng.integers(0, 2**31 - 1)))
        accepted: set[str] = set()
        source = f"llm:{self.strategy}"
        check_leaks = split == "train"
        stop = ["\n"] if self.strategy == "answer" else None
        for lo in range(0, len(jobs), self.batch_size):
            batch = jobs[lo : lo + self.batch_size]
            replies = self.backend.complete([j["prompt"] for j in batch], self.max_tokens(), self.temperature, stop)
            if len(replies) != len(batch):
                raise ConfigError(f"the backend returned {len(replies)} completions for {len(batch)} prompts")
            self.stats["batches"] += 1
            for job, reply in zip(batch, replies, strict=True):
                cost.tokens_in += int(reply.tokens_in)
                cost.tokens_out += int(reply.tokens_out)
                line, verdict = self._line(job, reply.text or "")
                example = None
                if line is not None:
                    check = check_lines(self.suite, [line], source=source, seen=accepted, check_leaks=check_leaks)
                    verdict = check.verdicts[0][1] if check.verdicts else "malformed"
                    if verdict == "ok":
                        example = check.examples[0]
                        if (example.skill, example.difficulty) != (job["skill"], job["level"]):
                            verdict, example = "off_cell", None
                if example is not None:
                    accepted.add(example.prompt)
                    out.append(example)
                else:
                    cost.reject(str(verdict))
                tally.setdefault((job["skill"], job["level"]), Counter())[str(verdict)] += 1
        cost.calls = len(jobs)
        cost.examples = len(out)
        cost.tokens = sum(len(e.prompt) + len(e.answer) for e in out)
        cost.seconds = time.perf_counter() - t0
        return out, cost

    # ------------------------------------------------------------------ reference accuracy
    def reference_accuracy(self, suite: TaskSuite | None = None) -> np.ndarray:
        """Per skill of ``suite`` (default: the engine's), the estimated accuracy of the model's
        answers from the calibration or the running tally (see the module docstring); the
        prior for a skill with no judged generation. The first call of a calibrated engine
        runs the calibration (``calibration`` generations per cell) unless it is cached."""
        suite = suite or self.suite
        tally = self.calibrate() if self.reference == "calibrated" else self.tally
        return self._estimate(tally, suite)

    def running_accuracy(self, suite: TaskSuite | None = None) -> np.ndarray:
        """The estimate from every generation so far (``reference="running"``'s reference)."""
        return self._estimate(self.tally, suite or self.suite)

    def _estimate(self, tally: dict[tuple[str, int], Counter[str]], suite: TaskSuite) -> np.ndarray:
        a, b = self.prior
        out = np.empty(len(suite.skills))
        for i, skill in enumerate(suite.skills):
            right = wrong = 0
            for (s, _), c in tally.items():
                if s == skill:
                    right += sum(c[k] for k in _CORRECT)
                    wrong += c["wrong"]
            out[i] = (right + a) / (right + wrong + a + b)
        return out

    def calibrate(self) -> dict[tuple[str, int], Counter[str]]:
        """The calibration verdicts per cell: from this process's memory, the disk cache, or
        ``calibration`` generations per cell made now (see the module docstring)."""
        if self.calibration_tally is not None:
            return self.calibration_tally
        key = self._calibration_key()
        with _CAL_LOCK:
            counts = _CALIBRATIONS.get(key) if key else None
            path = self._calibration_path(key) if key else None
            if counts is None and path is not None and path.is_file():
                try:
                    data = json.loads(path.read_text())
                    counts = {(c["skill"], int(c["level"])): Counter(c["verdicts"]) for c in data["cells"]}
                except (OSError, ValueError, KeyError, TypeError):
                    counts = None  # a damaged cache file is regenerated, never trusted
            if counts is None:
                t0 = time.perf_counter()
                counts = {}
                split = "train" if self.suite.partition is not None else None
                for i, skill in enumerate(self.suite.skills):
                    for d in range(self.suite.n_difficulties):
                        rng = rng_for(self.seed, STREAM_CALIBRATION, i, d)
                        self._run([PlanItem(skill, d, self.calibration)], rng, split, counts)
                self.stats["calibration_seconds"] += time.perf_counter() - t0
                if path is not None:
                    self._save_calibration(path, counts)
            if key:
                _CALIBRATIONS[key] = counts
        self.calibration_tally = counts
        return counts

    def _calibration_key(self) -> str | None:
        """A digest of everything the calibration counts depend on, or None when the model
        cannot be identified (a backend object, a served model): then it is kept per engine."""
        if self._model_spec is None:
            return None
        from distillgym.llm.models import resolve_model

        try:
            path = resolve_model(self._model_spec)
        except Exception:  # noqa: BLE001 - e.g. a vLLM hub id: no local directory to fingerprint
            return None
        files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file())
        what = {
            "version": _CALIBRATION_VERSION, "backend": getattr(self.backend, "kind", ""), "model": str(path.resolve()),
            "files": files, "suite": self.suite.name, "strategy": self.strategy, "shots": self.shots,
            "temperature": self.temperature, "calibration": self.calibration, "seed": self.seed,
            "max_tokens": self.max_tokens(), "shared_shots": self.shared_shots,
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]

    @staticmethod
    def _calibration_path(key: str) -> Path:
        from distillgym.runtime import cache_dir

        return Path(cache_dir()) / "llm-engine" / f"calibration-{key}.json"

    def _save_calibration(self, path: Path, counts: dict[tuple[str, int], Counter[str]]) -> None:
        data = {
            "model": self.model_name, "suite": self.suite.name, "strategy": self.strategy,
            "calibration": self.calibration, "seed": self.seed,
            "cells": [{"skill": s, "level": d, "verdicts": dict(c)} for (s, d), c in sorted(counts.items())],
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
            tmp.write_text(json.dumps(data, indent=1))
            tmp.replace(path)
        except OSError:  # a read-only cache only costs a recalibration in the next process
            pass

    def verified_fraction(self, skill: str | None = None, level: int | None = None) -> float:
        """Generations that became examples, over all generations so far (of a skill or cell)."""
        cells = [c for k, c in self.tally.items() if (skill is None or k[0] == skill) and (level is None or k[1] == level)]
        total = sum(sum(c.values()) for c in cells)
        return sum(c["ok"] for c in cells) / total if total else float("nan")

    def reset_tally(self) -> None:
        """Forget every verdict so far: the reference accuracy returns to the prior."""
        self.tally.clear()
