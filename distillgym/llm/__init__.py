"""LLM backends for LLM-prompted teachers.

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

from distillgym.llm.base import (
    BACKENDS,
    Completion,
    LLMBackend,
    LLMBackendError,
    LLMConnectionError,
    LLMTimeoutError,
    make_backend,
)

__all__ = [
    "BACKENDS",
    "Completion",
    "LLMBackend",
    "LLMBackendError",
    "LLMConnectionError",
    "LLMTimeoutError",
    "make_backend",
]
