"""LLM teacher: a language model reads the skill report and picks the next (skill, difficulty).

Each step the teacher writes one prompt (see :meth:`LLMTeacher.build_prompt`): the task (the
env's reset ``info["suite_description"]``), the skills (names, and what each asks from
``info["skill_descriptions"]`` when the env gives it; without these two keys the prompt
says "arithmetic skills" and lists the names only, as v0 did), the difficulty range, the
budget, the environment's text report (``info["report"]``: accuracy per skill x difficulty,
reference accuracy and gap, prerequisites, sampled errors with the student's own answers)
and the teacher's last few choices with the change in mean accuracy they brought. It ends by
asking for the next action as one JSON object, shown by an example (the first skill, level 0;
placeholders such as ``<level 0-3>`` were copied into replies by SmolLM2-135M)::

    {"skill": "copy", "difficulty": 0}

Two modes:

* ``mode="generate"`` (default): the model completes the prompt. With ``prefill=True``
  (default) the prompt ends with the reply's opening, ``{"skill": "``, so that the model only
  has to continue the object (SmolLM2-135M-Instruct in chat form wrote Python code instead),
  and the reply is read with that opening in front. The reply is parsed
  leniently: the first JSON object anywhere in it that has the keys ``skill`` and
  ``difficulty`` is used (surrounding text, code fences and other objects are ignored; a
  Python-style dict with single quotes is accepted too); the skill name is
  matched case-insensitively; the difficulty may be an integer, an integral float, or a
  string such as ``"2"`` or ``"L2"``. An unparsable or invalid reply (no object, unknown
  skill, difficulty out of range) is counted in ``stats["invalid_replies"]``; the teacher then
  re-prompts up to ``max_retries`` times, appending the bad reply and a message that says
  what was wrong and restates the format; after that it takes the fallback action.
* ``mode="choose"``: every cell is written as an option string in the same JSON format
  (``{"skill": "add", "difficulty": 1}``) and the backend's ``choose`` picks the one with the
  highest summed token log-likelihood after the prompt. The answer is always a valid action.

Fallback (``fallback=``): ``"uniform"`` (default) takes the next cell of a uniform teacher's
cycle (a fresh seeded shuffle of all cells per cycle, the ``uniform`` baseline's own rule),
so a teacher whose LLM always fails is exactly the uniform baseline; ``"lowest-accuracy"``
takes the cell with the lowest validation accuracy (ties: lowest difficulty, then skill
order).

The LLM never ends an episode: any exception a backend call raises (a timeout, a refused
connection, an error reply, the model failing) is counted in ``stats["backend_errors"]``
and the decision falls back at once (no re-prompt: transport retries are the backend's
business, e.g. the openai client's ``max_retries``). Errors in the teacher's own
configuration are raised when the teacher is built (an unknown mode or fallback) or at its
first ``reset``, which builds the backend (no model given, a model directory that does not
exist, a missing optional package); ``LLMTeacher()`` itself needs no argument.

Model and key: ``model="smollm2"`` (or any name :func:`distillgym.llm.models.resolve_model`
knows) works with the transformers and vllm backends; the model is loaded once per process
and shared by every teacher, episode and engine that uses it. With ``backend="openai"`` the
API key comes from ``OPENAI_API_KEY`` only: ``backend_kwargs`` may not hold ``api_key``, so
that no suite file or results record ever does, and the key appears in nothing the teacher
exposes (``stats``, ``last_decision``, ``repr``, error text).

``stats`` (reset with each episode; the runner copies it into the results) counts
``decisions``, ``prompts`` (backend calls), ``invalid_replies``, ``retries`` (corrective
re-prompts), ``fallbacks``, ``backend_errors``, ``tokens_in``, ``tokens_out``, ``seconds``
(wall time spent in backend calls) and ``seconds_per_decision``. ``last_decision`` describes
the latest act().
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, check_bool, check_choice, check_int, check_number, did_you_mean
from distillgym.teachers.base import BackendOwner, BaseTeacher

__all__ = ["LLMTeacher", "parse_reply", "ReplyError", "MAX_REPLY_CHARS"]

MODES = ("generate", "choose")
FALLBACKS = ("uniform", "lowest-accuracy")
PREFILL = '{"skill": "'
"""The opening of a reply that ``prefill=True`` writes for the model (generate mode)."""
_STAT_KEYS = ("decisions", "prompts", "invalid_replies", "retries", "fallbacks", "backend_errors", "tokens_in",
              "tokens_out", "seconds", "seconds_per_decision")


class ReplyError(ValueError):
    """A reply that does not name a valid action; the message says why (it is shown to the
    model in the corrective re-prompt)."""


MAX_REPLY_CHARS = 20_000
"""Only the first this many characters of a reply are searched for the object (a valid reply is a few
dozen; a model that writes a megabyte of preamble gets an invalid reply, not a stalled episode)."""
_RETRY_ECHO = 2_000
"""At most this many characters of an invalid reply are repeated in the corrective re-prompt."""
_MAX_OBJECTS = 200
"""At most this many candidate objects are tried per reply."""


def _short(value: object, width: int = 80) -> str:
    """``repr(value)`` cut to ``width`` characters (a reply's value shown in an error message)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - e.g. a huge int's repr beyond Python's digit limit
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width else text[: width - 3] + "..."


def _objects(text: str):
    """Every JSON object in ``text`` (from each ``{``, nested ones too), then Python-style
    dicts without nesting (``{'skill': 'add', 'difficulty': 1}``); at most :data:`_MAX_OBJECTS`
    attempts of each kind. Deep nesting, huge numbers and other malformed input are skipped."""
    dec = json.JSONDecoder()
    for k, m in enumerate(re.finditer(r"\{", text)):
        if k >= _MAX_OBJECTS:
            break
        try:
            obj, _ = dec.raw_decode(text, m.start())
        except (ValueError, RecursionError, MemoryError):  # RecursionError: ~1,000 nested brackets
            continue
        if isinstance(obj, dict):
            yield obj
    for k, m in enumerate(re.finditer(r"\{[^{}]*\}", text)):
        if k >= _MAX_OBJECTS:
            break
        try:
            obj = ast.literal_eval(m.group(0))
        except Exception:  # noqa: BLE001 - ValueError, SyntaxError, RecursionError, TypeError ({[]}: unhashable) ...
            continue
        if isinstance(obj, dict):
            yield obj


def parse_reply(text: str, skills: list[str], n_difficulties: int) -> tuple[int, int]:
    """``(skill index, difficulty)`` from a model's reply: the first object in it that has
    the keys ``skill`` and ``difficulty`` (see the module docstring for what else is
    tolerated); raises :class:`ReplyError` saying what is wrong, for any reply (only its first
    :data:`MAX_REPLY_CHARS` characters are read; the message quotes at most a short piece of it)."""
    if not isinstance(text, str):
        raise ReplyError(f"the reply must be text, got {type(text).__name__}")
    text = text[:MAX_REPLY_CHARS]
    seen = None
    obj = None
    for cand in _objects(text):
        keys = {str(k).strip().lower(): v for k, v in cand.items()}
        if "skill" in keys and "difficulty" in keys:
            obj = keys
            break
        seen = seen or cand
    if obj is None and seen is None:
        raise ReplyError('no JSON object found; expected {"skill": "<name>", "difficulty": <integer>}')
    if obj is None:
        keys = sorted(_short(str(k), 40) for k in list(seen)[:10])
        raise ReplyError(f'the object must have the keys "skill" and "difficulty", got {keys}')
    skill, diff = obj["skill"], obj["difficulty"]
    lower = [s.lower() for s in skills]
    if not isinstance(skill, str) or skill.strip().lower() not in lower:
        name = skill[:40] if isinstance(skill, str) else _short(skill, 40)
        raise ReplyError(f"unknown skill {_short(skill, 60)}: {did_you_mean(name, skills)}")
    s = lower.index(skill.strip().lower())
    d: int | None = None
    if isinstance(diff, bool):
        d = None
    elif isinstance(diff, int):
        d = diff
    elif isinstance(diff, float) and math.isfinite(diff) and diff.is_integer():
        d = int(diff)
    elif isinstance(diff, str) and len(diff) <= 40:
        m = re.fullmatch(r"\s*[lL]?\s*(\d{1,9})\s*", diff)
        d = int(m.group(1)) if m else None
    if d is None or not 0 <= d < n_difficulties:
        raise ReplyError(f"difficulty must be an integer from 0 to {n_difficulties - 1}, got {_short(diff, 60)}")
    return s, d


class LLMTeacher(BackendOwner, BaseTeacher):
    """A teacher that asks a language model for each (skill, difficulty); see the module
    docstring for the prompt, the reply format, the retries and the fallback.

    Arguments:
    - ``backend``: ``"transformers"``, ``"openai"``, ``"vllm"``, or an
      :class:`~distillgym.llm.base.LLMBackend` instance (used as is, not closed by the teacher).
    - ``model``: the model directory or a named model such as ``"smollm2"`` (transformers,
      vllm), or the served model name (openai; ``None`` takes the server's first model).
    - ``base_url``: the server for ``backend="openai"`` (e.g. ``http://127.0.0.1:8000/v1``).
    - ``mode``: ``"generate"`` or ``"choose"``.
    - ``max_retries``: corrective re-prompts after an invalid reply (generate mode).
    - ``max_tokens``, ``temperature``, ``stop``: decoding of replies (generate mode).
    - ``fallback``: ``"uniform"`` or ``"lowest-accuracy"``.
    - ``history``: how many of the teacher's own past choices the prompt lists.
    - ``prefill``: end the generate-mode prompt with the reply's opening ``{"skill": "``.
    - ``backend_kwargs``: more constructor arguments for the backend (``device``, ``timeout``,
      ``max_retries`` of the HTTP client, ``chat``, ...); never ``api_key`` (use ``OPENAI_API_KEY``).
    """

    name = "llm"
    suite_description: str | None = None
    skill_descriptions: dict[str, str] = {}

    def __init__(
        self,
        backend: Any = "transformers",
        model: str | None = None,
        base_url: str | None = None,
        mode: str = "generate",
        max_retries: int = 2,
        max_tokens: int = 64,
        temperature: float = 0.0,
        fallback: str = "uniform",
        history: int = 5,
        stop: list[str] | None = None,
        backend_kwargs: dict[str, Any] | None = None,
        prefill: bool = True,
    ) -> None:
        from distillgym.llm import BACKENDS

        check_choice("LLMTeacher mode", mode, MODES)
        check_choice("LLMTeacher fallback", fallback, FALLBACKS)
        if isinstance(backend, str):
            check_choice("LLM backend", backend, BACKENDS)
            if base_url is not None and backend != "openai":
                raise ConfigError(f"base_url is for backend='openai', not {backend!r}")
        elif not (callable(getattr(backend, "complete", None)) and callable(getattr(backend, "choose", None))):
            raise ConfigError(f"backend must be a name in {sorted(BACKENDS)} or an LLMBackend, got {backend!r}")
        for n, v, low in (("max_retries", max_retries, 0), ("max_tokens", max_tokens, 1), ("history", history, 0)):
            check_int("LLMTeacher", n, v, low)
        check_number("LLMTeacher", "temperature", temperature, 0)
        if stop is not None and (isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop)):
            raise ConfigError(f"LLMTeacher stop must be None or a list of non-empty strings, got {stop!r}")
        if backend_kwargs is not None and not isinstance(backend_kwargs, dict):
            raise ConfigError(f"LLMTeacher backend_kwargs must be a dict, got {type(backend_kwargs).__name__}")
        if backend_kwargs and "api_key" in backend_kwargs:
            raise ConfigError(
                "LLMTeacher does not take api_key in backend_kwargs (it would end up in suite files and results); "
                "set the environment variable OPENAI_API_KEY instead"
            )
        self.backend_spec = backend
        self.model = model
        from distillgym.llm.openai_backend import mask_url

        self._base_url = base_url  # user:password in the URL stay private; base_url shows them masked
        self.base_url = mask_url(base_url) if isinstance(base_url, str) else base_url
        self.mode = mode
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.temperature = float(temperature)
        self.fallback = fallback
        self.history = history
        self.stop = list(stop) if stop else None
        self.prefill = check_bool("LLMTeacher", "prefill", prefill)
        self.backend_kwargs = dict(backend_kwargs or {})
        self._init_backend(backend)
        self.stats: dict[str, float] = dict.fromkeys(_STAT_KEYS, 0)

    # ------------------------------------------------------------------ set-up
    @property
    def backend(self) -> Any:
        """The LLM backend, built on first use from the constructor's arguments."""
        if self._backend is None:
            from distillgym.llm import make_backend

            if self.backend_spec in ("transformers", "vllm") and not (self.model or self.backend_kwargs.get("model")):
                raise ConfigError(
                    f"LLMTeacher(backend={self.backend_spec!r}) needs model=PATH, a local model directory, or a "
                    "named model such as model='smollm2' (or backend='openai' with base_url=... of a running server)"
                )
            kwargs = dict(self.backend_kwargs)
            if self.model is not None:
                kwargs.setdefault("model", self.model)
            if self._base_url is not None:
                kwargs.setdefault("base_url", self._base_url)
            self._backend = make_backend(self.backend_spec, **kwargs)
        return self._backend

    def __repr__(self) -> str:
        spec = self.backend_spec if isinstance(self.backend_spec, str) else type(self.backend_spec).__name__
        return f"LLMTeacher(backend={spec!r}, model={self.model!r}, mode={self.mode!r})"

    def reset(self, action_space: Any, info: dict[str, Any], seed: int | None = None) -> None:
        super().reset(action_space, info, seed)
        from distillgym.teachers.simple import UniformTeacher

        backend = self.backend  # configuration errors surface here, before the first step
        if seed is not None and hasattr(backend, "reseed"):
            backend.reseed(int(seed))
        self.examples_per_step = info.get("examples_per_step")
        self.budget = info.get("budget")
        desc = info.get("suite_description")
        self.suite_description = desc.strip() if isinstance(desc, str) and desc.strip() else None
        sd = info.get("skill_descriptions")
        self.skill_descriptions = (
            {str(k): str(v) for k, v in sd.items() if isinstance(v, str) and v.strip()} if isinstance(sd, dict) else {}
        )
        self._uniform = UniformTeacher(order="shuffled")
        self._uniform.reset(action_space, info, seed)
        self._history: list[str] = []
        self._pending: tuple[str, int, float] | None = None
        self.stats = dict.fromkeys(_STAT_KEYS, 0)
        self.stats["seconds"] = 0.0
        self.stats["seconds_per_decision"] = 0.0

    # ------------------------------------------------------------------ the prompt
    def options(self) -> list[str]:
        """Every action as a reply string (the options of ``mode="choose"``), in cell order."""
        return [json.dumps({"skill": s, "difficulty": d}) for s in self.skills for d in range(self.n_difficulties)]

    def build_prompt(self, observation: Any, info: dict[str, Any]) -> str:
        D = self.n_difficulties
        report = info.get("report") or self._report_from(observation)
        left = info.get("budget_left")
        if left is not None and self.examples_per_step:
            steps = -(-int(left) // int(self.examples_per_step))
            budget = f"{left} training examples left of {self.budget} ({steps} more choices)"
        else:
            budget = "unknown"
        per = f"{self.examples_per_step} examples" if self.examples_per_step else "a batch of examples"
        hist = "\n".join(f"  {h}" for h in self._history[-self.history :]) if self.history else ""
        if self.suite_description:
            task = [f"You are the teacher of a small language model that is learning this task: {self.suite_description}"]
        else:
            task = ["You are the teacher of a small language model that is learning arithmetic skills."]
        if self.skill_descriptions:
            skills = ["Skills:"] + [
                f"  {s}: {self.skill_descriptions[s]}" if s in self.skill_descriptions else f"  {s}" for s in self.skills
            ]
        else:
            skills = [f"Skills: {', '.join(self.skills)}"]
        lines = [
            *task,
            f"At each step you choose ONE skill and ONE difficulty level; the student is then trained on {per} "
            "of that skill at that level and evaluated again.",
            "Your goal: the highest mean accuracy over all skills and levels when the budget runs out. "
            "A skill is easier to learn once the skills it needs (its prerequisites) are learned.",
            "",
            *skills,
            f"Difficulty levels: 0 (easiest) to {D - 1} (hardest)",
            f"Budget: {budget}",
            "",
            "Student report (validation accuracy per skill and level; 'needs' = prerequisites, 'all' = the skill's "
            "mean, 'ref' = a reference solver's accuracy, 'gap' = relative shortfall from ref):",
            report,
            "",
            "Your recent choices (oldest first):",
            hist or "  none yet",
            "",
            self._format_line(),
            "Next choice (JSON):",
            "",
        ]
        return "\n".join(lines)

    def _report_from(self, observation: Any) -> str:
        acc = np.asarray(observation["accuracy"], dtype=float) if isinstance(observation, dict) else None
        if acc is None:
            return "(no report)"
        rows = [f"{s:<10} " + " ".join(f"{a:5.2f}" for a in acc[i]) for i, s in enumerate(self.skills)]
        return "\n".join(rows)

    def _format_line(self) -> str:
        """The reply format, shown by a concrete example: SmolLM2-135M copied placeholders such as
        ``<level 0-3>`` into its replies, but follows an example's form (and does not copy its values)."""
        example = json.dumps({"skill": self.skills[0], "difficulty": 0})
        return (
            f"Reply with one JSON object only, for example {example}: a skill name from the list and a level "
            f"from 0 to {self.n_difficulties - 1}."
        )

    def _corrective(self, reason: str) -> str:
        names = ", ".join(f'"{s}"' for s in self.skills)
        return (
            f"\n\nThat reply is not valid: {reason}.\n"
            f"The skill must be one of {names}. {self._format_line()}\nNext choice (JSON):\n"
        )

    # ------------------------------------------------------------------ acting
    def _fallback(self, observation: Any, info: dict[str, Any]) -> tuple[int, int]:
        if self.fallback == "lowest-accuracy" and isinstance(observation, dict) and "accuracy" in observation:
            acc = np.asarray(observation["accuracy"], dtype=float)
            s, d = min(self.cells, key=lambda c: (acc[c[0], c[1]], c[1], c[0]))
            return int(s), int(d)
        a = self._uniform.act(observation, info)
        return int(a[0]), int(a[1])

    def _error_text(self, err: BaseException) -> str:
        """``"Type: message"`` of a backend error, scrubbed of the backend's API key."""
        text = f"{type(err).__name__}: {err}"[:1000]
        scrub = getattr(self._backend, "_scrub", None)
        return scrub(text) if callable(scrub) else text

    def _backend_call(self, fn: Any) -> Any:
        self.stats["prompts"] += 1
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.stats["seconds"] += time.perf_counter() - t0

    def _generate(self, prompt: str) -> tuple[tuple[int, int] | None, dict[str, Any]]:
        head = PREFILL if self.prefill else ""
        text, note = prompt + head, {"attempts": 0, "reply": None, "error": None}
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
            note["attempts"] = attempt + 1
            try:
                comp = self._backend_call(
                    lambda t=text: self.backend.complete([t], self.max_tokens, self.temperature, self.stop)[0]
                )
            except Exception as err:  # the LLM never ends the episode
                self.stats["backend_errors"] += 1
                note["error"] = self._error_text(err)
                return None, note
            self.stats["tokens_in"] += comp.tokens_in
            self.stats["tokens_out"] += comp.tokens_out
            reply = head + comp.text
            note["reply"] = reply[:500]
            try:
                return parse_reply(reply, self.skills, self.n_difficulties), note
            except Exception as err:  # ReplyError; anything else is a parser bug, and still never ends the episode
                self.stats["invalid_replies"] += 1
                note["error"] = str(err) if isinstance(err, ReplyError) else f"{type(err).__name__} parsing the reply"
                # the re-prompt repeats the reply (at most _RETRY_ECHO characters of it: a runaway reply must
                # not grow every later prompt) and says what was wrong
                text = text + comp.text[:_RETRY_ECHO] + self._corrective(note["error"]) + head
        return None, note

    def _choose(self, prompt: str) -> tuple[tuple[int, int] | None, dict[str, Any]]:
        note: dict[str, Any] = {"attempts": 1, "reply": None, "error": None}
        counters = getattr(self.backend, "counters", None)
        before = dict(counters) if isinstance(counters, dict) else None
        try:
            idx, scores = self._backend_call(lambda: self.backend.choose(prompt, self.options()))
            s, d = self.cells[int(idx)]
        except Exception as err:
            self.stats["backend_errors"] += 1
            note["error"] = self._error_text(err)
            return None, note
        if before is not None:
            self.stats["tokens_in"] += int(counters.get("tokens_in", 0) - before.get("tokens_in", 0))
        note["reply"] = self.options()[int(idx)]
        note["score"] = float(scores[int(idx)])
        return (int(s), int(d)), note

    def act(self, observation: Any, info: dict[str, Any]) -> np.ndarray:
        self.stats["decisions"] += 1
        prompt = self.build_prompt(observation, info)
        action, note = self._choose(prompt) if self.mode == "choose" else self._generate(prompt)
        source = "llm"
        if action is None:
            self.stats["fallbacks"] += 1
            action, source = self._fallback(observation, info), "fallback"
        self.stats["seconds_per_decision"] = self.stats["seconds"] / self.stats["decisions"]
        s, d = action
        self.last_decision = {"source": source, "skill": self.skills[s], "difficulty": d, **note}
        self._pending = (self.skills[s], d, float(info.get("mean_accuracy", float("nan"))))
        return np.array([s, d])

    def update(self, observation: Any, reward: float, terminated: bool, truncated: bool, info: dict[str, Any]) -> None:
        if self._pending is not None:
            skill, d, before = self._pending
            after = float(info.get("mean_accuracy", float("nan")))
            self._history.append(f"{skill} L{d}: mean accuracy {before:.3f} -> {after:.3f}")
            self._pending = None
