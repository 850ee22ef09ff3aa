"""LLM backends, shared by the LLM teachers, the LLM data engine and the LoRA student's model loading.

``make_backend(kind, **kwargs)`` builds one of:

* ``"transformers"``: a local causal LM directory (``model=PATH``), on CPU or CUDA;
* ``"openai"``: any OpenAI-compatible server (``base_url=..., model=...``): vLLM's
  ``vllm serve``, or this package's own small server, ``python -m distillgym.llm.server
  --model PATH --port 8000``, which wraps the transformers backend;
* ``"vllm"``: vLLM's offline engine in this process (``pip install "distillgym[vllm]"``).

Every backend implements :class:`LLMBackend`: ``complete(prompts, max_tokens, temperature,
stop)`` and ``choose(prompt, options)`` (scores options by log-likelihood). Importing this
package imports none of torch, transformers, openai or vllm.
"""

from __future__ import annotations

from typing import Any

from distillgym.llm.base import (
    Completion,
    LLMBackend,
    LLMBackendError,
    LLMConnectionError,
    LLMTimeoutError,
)
from distillgym.registry import Registry

__all__ = [
    "BACKENDS",
    "Completion",
    "LLMBackend",
    "LLMBackendError",
    "LLMConnectionError",
    "LLMTimeoutError",
    "make_backend",
    "backend_class",
]

BACKENDS = Registry("LLM backend", {
    "transformers": "distillgym.llm.transformers_backend:TransformersBackend",
    "openai": "distillgym.llm.openai_backend:OpenAIBackend",
    "vllm": "distillgym.llm.vllm_backend:VLLMBackend",
})


def backend_class(kind: str) -> type[LLMBackend]:
    """The backend class for ``kind`` (imports its module, not its heavy dependencies)."""
    return BACKENDS[kind]


def make_backend(kind: str, **kwargs: Any) -> LLMBackend:
    """Build a backend: ``"transformers"`` (a local model directory, ``model=PATH``),
    ``"openai"`` (an OpenAI-compatible server, ``base_url=..., model=...``) or ``"vllm"``
    (vLLM's offline engine, ``model=PATH``). ``kwargs`` go to the backend's constructor."""
    return backend_class(kind)(**kwargs)
