"""An OpenAI-compatible HTTP server as an :class:`~distillgym.llm.base.LLMBackend`.

Works with ``vllm serve MODEL`` (``base_url="http://127.0.0.1:8000/v1"``), with this
package's own ``python -m distillgym.llm.server``, and with any server that implements the
``/v1/completions`` endpoint. Uses the ``openai`` package (``pip install "distillgym[llm]"``),
imported when the backend is built.

* ``complete`` sends one ``/v1/completions`` request per prompt (concurrently, so a
  batching server such as vLLM batches them), or ``/v1/chat/completions`` with ``chat=True``
  (each prompt becomes one user message).
* ``choose`` sends one ``/v1/completions`` request with ``echo=True, logprobs=1,
  max_tokens=0`` and the prompts ``[prompt, prompt + option for each option]``, and reads
  the prompt tokens' log-probabilities (vLLM and the package's server support this). The
  option's tokens are those after the longest common prefix of the token strings of
  ``prompt`` and ``prompt + option`` (see :mod:`distillgym.llm.base`). Fallback: a server that
  rejects ``max_tokens=0`` is asked again with ``max_tokens=1`` (the one generated token,
  last in each list, is dropped); a server that returns no prompt log-probabilities at all (OpenAI's own chat
  models) makes ``choose`` raise :class:`LLMBackendError`: use ``mode="generate"`` there.
  ``choose`` always uses the completions endpoint on the raw prompt, even with ``chat=True``.

API key and server: ``api_key`` and ``base_url`` default to the environment variables
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (the openai client's own), then to ``"EMPTY"`` and
``http://127.0.0.1:8000/v1``. Pass keys through the environment, not as arguments, so that
no configuration record holds them. The key is kept only inside the openai client: it is in no
public attribute, not in ``repr``, ``counters`` or ``base_url`` (user:password in the URL is
masked there too), and every error message is scrubbed of it before it is raised.

Errors: a request that takes longer than ``timeout`` seconds raises :class:`LLMTimeoutError`;
an unreachable server :class:`LLMConnectionError`; an error reply :class:`LLMBackendError`
(all :class:`~distillgym.errors.DistillGymError`), after ``max_retries`` retries by the
client. Worst case a call takes about ``timeout * (max_retries + 1)`` plus the client's short
back-off between tries.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from distillgym.errors import ConfigError, check_int, check_number, require
from distillgym.llm.base import (
    Completion,
    LLMBackend,
    LLMBackendError,
    LLMConnectionError,
    LLMTimeoutError,
    Stopwatch,
    option_start,
)

__all__ = ["OpenAIBackend", "DEFAULT_BASE_URL", "mask_url"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"


def mask_url(url: str) -> str:
    """``url`` with any ``user:password@`` part replaced by ``***@``."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1***@", url)


class OpenAIBackend(LLMBackend):
    """A model behind an OpenAI-compatible server.

    Arguments:
    - ``model``: the served model's name; ``None`` takes the first one ``/v1/models`` lists.
    - ``base_url``: e.g. ``"http://127.0.0.1:8000/v1"``; default ``$OPENAI_BASE_URL``, else that one.
    - ``api_key``: default ``$OPENAI_API_KEY``, else ``"EMPTY"`` (local servers need none).
    - ``timeout``: seconds per request (connect, read, write) before :class:`LLMTimeoutError`.
    - ``max_retries``: the client's retries on connection errors, timeouts, 429 and 5xx.
    - ``chat``: ``complete`` uses ``/v1/chat/completions`` (one user message per prompt).
    - ``seed``: sent with every request (``reseed`` changes it); servers that honour it
      (vLLM does) repeat sampled completions.
    - ``max_workers``: concurrent requests in ``complete``.
    """

    kind = "openai"

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        chat: bool = False,
        seed: int | None = 0,
        max_workers: int = 8,
    ) -> None:
        super().__init__()
        openai = require("openai", "the 'openai' backend", "llm")
        check_number("", "timeout (seconds)", timeout, 0, open_low=True)
        check_int("", "max_retries", max_retries, 0)
        if base_url is None:
            base_url = os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            shown = mask_url(base_url) if isinstance(base_url, str) else type(base_url).__name__
            raise ConfigError(f"base_url must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {shown!r}")
        if api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY") or "EMPTY"
        if not isinstance(api_key, str):
            raise ConfigError(f"api_key must be a string, got a {type(api_key).__name__}")
        self._openai = openai
        self.base_url = mask_url(base_url)  # for messages and records; the client has the real one
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.chat = bool(chat)
        self.seed = seed
        self.max_workers = max(1, int(max_workers))
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=self.timeout,
                                    max_retries=max_retries)
        del api_key  # from here on only the client holds the key
        self._model = model
        self.model_name = model or ""
        self._echo_max_tokens = 0  # becomes 1 for servers that refuse max_tokens=0

    # ------------------------------------------------------------------ helpers
    @property
    def model(self) -> str:
        """The model name, asked of ``/v1/models`` the first time when not given."""
        if not self._model:
            models = self._call(lambda: self.client.models.list())
            data = list(getattr(models, "data", []) or [])
            if not data:
                raise LLMBackendError(f"the server at {self.base_url} lists no models; pass model=NAME")
            self._model = self.model_name = data[0].id
        return self._model

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model_name!r}, base_url={self.base_url!r}, chat={self.chat})"

    def _scrub(self, text: str) -> str:
        """``text`` with the API key (and the real URL's user:password) masked."""
        key = str(getattr(self.client, "api_key", "") or "")
        if len(key) >= 4 and key != "EMPTY":
            text = text.replace(key, "***")
        real = str(getattr(self.client, "base_url", "") or "")
        if real and mask_url(real) != real:
            text = text.replace(real, mask_url(real)).replace(real.rstrip("/"), mask_url(real.rstrip("/")))
        return text

    def _call(self, fn: Any) -> Any:
        """``fn()`` with the openai package's exceptions turned into ours (scrubbed of the key)."""
        oa = self._openai
        try:
            return fn()
        except oa.APITimeoutError as err:
            cls = LLMTimeoutError
            msg = f"no reply from {self.base_url} within {self.timeout:g} s (after {self.max_retries} retries): {err}"
        except oa.APIConnectionError as err:
            msg, cls = f"cannot reach {self.base_url}: {err}", LLMConnectionError
        except oa.APIStatusError as err:
            msg, cls = f"{self.base_url} answered HTTP {err.status_code}: {err.message}", LLMBackendError
        except oa.OpenAIError as err:
            msg, cls = f"{type(err).__name__} from {self.base_url}: {err}", LLMBackendError
        raise cls(self._scrub(msg)) from None

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ API
    def _one(self, prompt: str, max_tokens: int, temperature: float, stop: list[str] | None) -> Completion:
        extra: dict[str, Any] = {} if self.seed is None else {"seed": self.seed}
        if stop:
            extra["stop"] = stop
        with Stopwatch() as sw:
            if self.chat:
                r = self._call(lambda: self.client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                    temperature=temperature, **extra))
                text = r.choices[0].message.content or ""
            else:
                r = self._call(lambda: self.client.completions.create(
                    model=self.model, prompt=prompt, max_tokens=max_tokens, temperature=temperature, **extra))
                text = r.choices[0].text or ""
        usage = getattr(r, "usage", None)
        return Completion(
            text=text,
            tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
            tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
            seconds=sw.seconds,
            finish_reason=r.choices[0].finish_reason,
        )

    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> list[Completion]:
        prompts = self._check_complete_args(prompts, max_tokens, temperature, stop)
        if not prompts:
            return []
        with Stopwatch() as sw:
            if len(prompts) == 1:
                out = [self._one(prompts[0], max_tokens, float(temperature), stop)]
            else:
                with ThreadPoolExecutor(min(self.max_workers, len(prompts))) as pool:
                    out = list(pool.map(lambda p: self._one(p, max_tokens, float(temperature), stop), prompts))
        return self._finish_complete(out, sw.seconds)

    def _echo(self, texts: list[str]) -> Any:
        def ask(n: int) -> Any:
            return self._call(lambda: self.client.completions.create(
                model=self.model, prompt=texts, echo=True, logprobs=1, max_tokens=n, temperature=0.0))

        if self._echo_max_tokens == 0:
            try:
                return ask(0)
            except LLMBackendError as err:
                if isinstance(err, (LLMTimeoutError, LLMConnectionError)):
                    raise
                self._echo_max_tokens = 1  # e.g. "max_tokens must be at least 1"
        return ask(1)

    def choose(self, prompt: str, options: list[str]) -> tuple[int, list[float]]:
        options = self._check_choose_args(prompt, options)
        texts = [prompt] + [prompt + o for o in options]
        with Stopwatch() as sw:
            r = self._echo(texts)
        choices = sorted(r.choices, key=lambda c: c.index)
        if len(choices) != len(texts):
            raise LLMBackendError(f"asked to score {len(texts)} texts, the server returned {len(choices)} choices")
        rows = []
        for c in choices:
            lp = c.logprobs
            if lp is None or not lp.tokens or lp.token_logprobs is None:
                raise LLMBackendError(
                    f"{self.base_url} returned no prompt log-probabilities for echo=True, logprobs=1; "
                    "choose() needs a server that supports them (vLLM does): use mode='generate' instead"
                )
            tokens, lps = list(lp.tokens), list(lp.token_logprobs)
            if self._echo_max_tokens and len(tokens) > 1:  # drop the one generated token
                tokens, lps = tokens[:-1], lps[:-1]
            rows.append((tokens, lps))
        ctx = rows[0][0]
        scores = []
        for tokens, lps in rows[1:]:
            first = option_start(ctx, tokens)
            vals = [x for x in lps[first:] if x is not None]
            scores.append(float(sum(vals)))
        usage = getattr(r, "usage", None)
        return self._finish_choose(scores, int(getattr(usage, "prompt_tokens", 0) or 0), sw.seconds)
