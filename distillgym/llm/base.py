"""The one interface every LLM backend implements and its errors (the registry is in :mod:`distillgym.llm`).

An :class:`LLMBackend` does two things:

* ``complete(prompts, max_tokens, temperature=0.0, stop=None)`` returns one
  :class:`Completion` per prompt (``temperature=0`` is greedy decoding; ``stop`` strings end
  a completion and are not part of its text, as in the OpenAI API);
* ``choose(prompt, options)`` scores every option by the sum of the log-likelihoods of its
  tokens given the prompt and returns ``(argmax index, scores)``.

How an option's tokens are found (the same rule in every backend, so that their scores
agree; it is the usual one, as in lm-evaluation-harness): ``prompt`` and ``prompt + option``
are tokenized (with the tokenizer's usual special tokens, e.g. BOS); the option's tokens are
those of ``prompt + option`` after the longest common prefix of the two token sequences, so
a token merged across the boundary counts as the option's. The score is the sum of
``log p(token | all tokens before it)`` over them (the very first token of a text has no
log-likelihood and is never counted). When ``prompt`` ends where the tokenizer splits anyway
(a newline, with most tokenizers) this is exactly ``log p(option | prompt)``.

Importing this module (or ``distillgym.llm``) imports neither torch, transformers, openai nor
vllm: backends import them when they are built.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distillgym.errors import ConfigError, DistillGymError, check_int, check_number

__all__ = [
    "Completion",
    "LLMBackend",
    "LLMBackendError",
    "LLMTimeoutError",
    "LLMConnectionError",
    "common_prefix_len",
    "option_start",
]


class LLMBackendError(DistillGymError, RuntimeError):
    """A backend call failed (the server answered with an error, the model raised, the reply
    could not be read). The LLM teacher treats it as a failed decision and falls back."""


class LLMTimeoutError(LLMBackendError, TimeoutError):
    """A backend call took longer than its timeout."""


class LLMConnectionError(LLMBackendError, ConnectionError):
    """The backend's server could not be reached (refused, reset, DNS)."""


@dataclass
class Completion:
    """One completion: its text, prompt and completion token counts, and wall time.

    ``seconds`` is the wall time of the call that produced it divided by the number of prompts
    in that call, so that summing over completions gives the total time.
    ``finish_reason`` is ``"stop"`` (end of sequence or a stop string) or ``"length"``.
    """

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None


class LLMBackend(abc.ABC):
    """A language model behind ``complete`` and ``choose`` (see the module docstring).

    ``counters`` accumulates ``calls``, ``tokens_in``, ``tokens_out`` and ``seconds`` over
    every call (``choose`` counts the scored tokens as ``tokens_in``).
    """

    kind = "base"

    def __init__(self) -> None:
        self.model_name = ""
        self.counters: dict[str, float] = {"calls": 0, "tokens_in": 0, "tokens_out": 0, "seconds": 0.0}

    @abc.abstractmethod
    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> list[Completion]:
        """One completion per prompt, in order."""

    @abc.abstractmethod
    def choose(self, prompt: str, options: list[str]) -> tuple[int, list[float]]:
        """``(index of the most likely option, the options' summed token log-likelihoods)``."""

    def reseed(self, seed: int) -> None:
        """Restart the sampling random stream (only matters for ``temperature > 0``)."""
        return None

    def close(self) -> None:
        """Release the model or the connection pool (the backend is unusable afterwards)."""
        return None

    def __enter__(self) -> LLMBackend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers for subclasses
    def _count(self, tokens_in: int, tokens_out: int, seconds: float) -> None:
        c = self.counters
        c["calls"] += 1
        c["tokens_in"] += int(tokens_in)
        c["tokens_out"] += int(tokens_out)
        c["seconds"] += float(seconds)

    def _finish_complete(self, out: list[Completion], seconds: float) -> list[Completion]:
        """Give each completion an equal share of the call's wall time and count the call."""
        for c in out:
            c.seconds = seconds / len(out)
        self._count(sum(c.tokens_in for c in out), sum(c.tokens_out for c in out), seconds)
        return out

    def _finish_choose(self, scores: list[float], tokens_in: int, seconds: float) -> tuple[int, list[float]]:
        """Check the option scores, count the call, and return the best option (the first on ties)."""
        if not all(math.isfinite(x) for x in scores):
            raise LLMBackendError(f"non-finite option scores {scores}")
        self._count(tokens_in, 0, seconds)
        return max(range(len(scores)), key=lambda i: (scores[i], -i)), scores

    @staticmethod
    def _check_complete_args(prompts: Any, max_tokens: Any, temperature: Any, stop: Any) -> list[str]:
        if isinstance(prompts, str) or not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
            raise ConfigError(f"prompts must be a list of strings, got {type(prompts).__name__}")
        check_int("", "max_tokens", max_tokens, 0)
        check_number("", "temperature", temperature, 0)
        if stop is not None and (isinstance(stop, str) or not all(isinstance(s, str) and s for s in stop)):
            raise ConfigError(f"stop must be None or a list of non-empty strings, got {stop!r}")
        return list(prompts)

    @staticmethod
    def _check_choose_args(prompt: Any, options: Any) -> list[str]:
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt must be a string, got {type(prompt).__name__}")
        if isinstance(options, str) or not isinstance(options, Sequence) or not options:
            raise ConfigError("options must be a non-empty list of strings")
        if not all(isinstance(o, str) and o for o in options):
            raise ConfigError("every option must be a non-empty string")
        return list(options)


def truncate_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` cut before the earliest stop string, and whether one was found."""
    if not stop:
        return text, False
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def common_prefix_len(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def option_start(prompt_tokens: Sequence[Any], full_tokens: Sequence[Any]) -> int:
    """Index of the first token of ``full_tokens`` (``prompt + option``) that belongs to the
    option (see the module docstring); never 0, which has no log-likelihood."""
    return max(1, min(common_prefix_len(prompt_tokens, full_tokens), len(full_tokens) - 1))


class Stopwatch:
    """``with Stopwatch() as t: ...; t.seconds``"""

    def __enter__(self) -> Stopwatch:
        self.t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
