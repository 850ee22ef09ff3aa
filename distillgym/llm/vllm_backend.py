"""vLLM's offline engine (``vllm.LLM``) as an :class:`~distillgym.llm.base.LLMBackend`.

Needs a GPU and ``pip install "distillgym[vllm]"``; vllm is imported when the backend is
built, and its absence raises :class:`~distillgym.errors.DependencyMissingError`. A named
model (``"smollm2"``) is resolved to its local directory by
:func:`~distillgym.llm.models.resolve_model`. Engines are kept once per process (keyed by
their arguments), so a teacher rebuilt for each episode reuses the loaded one. Prompts
are tokenized here with the engine's tokenizer and passed as token ids
(``{"prompt_token_ids": [...]}``), so that ``chat=True`` templates and ``choose``'s option
boundary are the same as in the transformers backend.

* ``complete``: one ``LLM.generate`` call for all prompts with
  ``SamplingParams(max_tokens, temperature, stop, seed)``; each prompt gets its own seed from
  this backend's seeded stream, so sampled runs repeat.
* ``choose``: one ``LLM.generate`` call over ``prompt + option`` for every option with
  ``SamplingParams(max_tokens=1, prompt_logprobs=1)``; ``RequestOutput.prompt_logprobs`` holds,
  per prompt position, a mapping ``token id -> Logprob`` that includes the actual token
  (``None`` at position 0). The generated token is ignored.
"""

from __future__ import annotations

import random
from typing import Any

from distillgym.errors import ConfigError, require
from distillgym.llm.base import Completion, LLMBackend, LLMBackendError, Stopwatch, option_start

__all__ = ["VLLMBackend"]

_ENGINES: dict[str, Any] = {}  # repr of vllm.LLM's arguments -> the engine (one per process)


class VLLMBackend(LLMBackend):
    """A model run by vLLM in this process.

    Arguments:
    - ``model``: a local directory or a model id vLLM can load.
    - ``seed``: engine seed and the root of per-request sampling seeds.
    - ``chat``: wrap prompts in the tokenizer's chat template (one user message).
    - ``dtype``, ``gpu_memory_utilization``, ``max_model_len``, ``tensor_parallel_size`` and
      any other ``engine_kwargs``: passed to ``vllm.LLM``.
    """

    kind = "vllm"

    def __init__(
        self,
        model: str,
        seed: int = 0,
        chat: bool = False,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        **engine_kwargs: Any,
    ) -> None:
        super().__init__()
        vllm = require("vllm", "the 'vllm' backend", "vllm", " (Linux with a CUDA GPU)")
        if not model:
            raise ConfigError("the vllm backend needs model=PATH or a model id")
        from distillgym.llm.models import NAMED_MODELS, resolve_model

        self._vllm = vllm
        path = str(resolve_model(model)) if str(model) in NAMED_MODELS else str(model)
        kwargs = dict(model=path, seed=int(seed), dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                      tensor_parallel_size=tensor_parallel_size, **engine_kwargs)
        if max_model_len is not None:
            kwargs["max_model_len"] = int(max_model_len)
        key = repr(sorted(kwargs.items()))
        if key not in _ENGINES:
            _ENGINES[key] = vllm.LLM(**kwargs)
        self.llm = _ENGINES[key]
        self.tokenizer = self.llm.get_tokenizer()
        self.model_name = str(model)
        self.chat = bool(chat)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.seed = int(seed)
        self._rng = random.Random(self.seed)

    def close(self) -> None:
        """Drop this backend's reference (the process keeps the engine for later backends)."""
        self.llm = None

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.model_name!r}, chat={self.chat})"

    def _ids(self, text: str) -> list[int]:
        if self.chat:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def _generate(self, prompts: list[dict[str, Any]], params: Any) -> list[Any]:
        if self.llm is None:
            raise LLMBackendError("this backend was closed")
        try:
            return list(self.llm.generate(prompts, params, use_tqdm=False))
        except (ValueError, RuntimeError) as err:  # e.g. a prompt longer than max_model_len
            raise LLMBackendError(f"vllm: {err}") from None

    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> list[Completion]:
        prompts = self._check_complete_args(prompts, max_tokens, temperature, stop)
        if not prompts:
            return []
        if max_tokens == 0:
            return [Completion("", len(self._ids(p)), 0, 0.0, "length") for p in prompts]
        SamplingParams = self._vllm.SamplingParams
        with Stopwatch() as sw:
            ids = [self._ids(p) for p in prompts]
            params = [
                SamplingParams(max_tokens=max_tokens, temperature=float(temperature), stop=list(stop) if stop else None,
                               seed=self._rng.randrange(2**31) if temperature > 0 else None)
                for _ in prompts
            ]
            outs = self._generate([{"prompt_token_ids": i} for i in ids], params)
        result = [
            Completion(text=o.outputs[0].text, tokens_in=len(i), tokens_out=len(o.outputs[0].token_ids),
                       finish_reason=o.outputs[0].finish_reason)
            for i, o in zip(ids, outs, strict=True)
        ]
        return self._finish_complete(result, sw.seconds)

    def choose(self, prompt: str, options: list[str]) -> tuple[int, list[float]]:
        options = self._check_choose_args(prompt, options)
        with Stopwatch() as sw:
            ctx = self._ids(prompt)
            if self.chat:
                head = self.tokenizer.apply_chat_template(
                    [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
                )
                fulls = [list(self.tokenizer(head + o, add_special_tokens=False)["input_ids"]) for o in options]
            else:
                fulls = [self._ids(prompt + o) for o in options]
            params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
            outs = self._generate([{"prompt_token_ids": f} for f in fulls], params)
            scores = []
            for full, out in zip(fulls, outs, strict=True):
                plp = out.prompt_logprobs
                if plp is None:
                    raise LLMBackendError("vllm returned no prompt_logprobs")
                total = 0.0
                for i in range(option_start(ctx, full), len(full)):
                    entry = plp[i]
                    if entry is not None and full[i] in entry:
                        total += float(entry[full[i]].logprob)
                scores.append(total)
        return self._finish_choose(scores, sum(len(f) for f in fulls), sw.seconds)
