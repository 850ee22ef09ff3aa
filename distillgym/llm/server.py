"""A small OpenAI-compatible HTTP server around :class:`TransformersBackend`.

Run it with ``python -m distillgym.llm.server --model PATH --port 8000`` and point the
``openai`` backend (or any OpenAI client) at ``http://127.0.0.1:8000/v1``. It needs nothing
beyond the standard library and transformers, and binds ``127.0.0.1`` unless told otherwise
(it has no authentication: do not expose it). Endpoints:

* ``GET /v1/models``: the one served model;
* ``POST /v1/completions``: ``prompt`` (a string or a list of strings), ``max_tokens``
  (default 16; 0 with ``echo`` only scores the prompt; at most ``max_tokens_limit``, by default the
  model's context length, else 4096: a larger one gets HTTP 400), ``temperature`` (default 1.0; 0 is
  greedy), ``stop`` (a string or a list), ``seed``, ``echo`` and ``logprobs`` (an integer k:
  each token's log-probability plus the k most likely tokens at its position, as in vLLM;
  ``echo`` includes the prompt's tokens, the first of which has ``null``). Log-probabilities
  are those of the returned text re-tokenized, raw model log-softmax (no temperature);
  ``text_offset`` counts characters from the start of the returned text.
* ``POST /v1/chat/completions``: ``messages`` rendered with the tokenizer's chat template
  (or ``role: content`` lines when it has none), then as above (no logprobs).
* ``GET /health``.

Why not ``transformers serve``: checked with transformers 5.24 (fastapi 0.165, uvicorn 0.54)
offline on the local SmolLM2 directory, ``transformers serve DIR --device cpu --port 8765``
answers single-prompt ``/v1/completions`` and ``/v1/chat/completions``, but ``choose`` cannot
work on it: a list ``prompt`` gets HTTP 400 ``{"detail":"prompt must be a string."}``;
``echo`` and ``logprobs`` are dropped (its log: ``Ignoring unsupported fields in the request:
{'logprobs', 'echo'}``), so no prompt log-probabilities come back; and ``max_tokens=0`` gets
HTTP 500 (``ValueError: `max_new_tokens` must be greater than 0, but is 0.``). Through
:class:`~distillgym.llm.openai_backend.OpenAIBackend`, ``choose`` then raises
``LLMBackendError: ... answered HTTP 400``. This server supports all three and needs no extra
package. ``--model`` takes a directory or a named model (``smollm2``).

Requests are served concurrently (one thread per connection) while model calls take turns
behind one lock. Any ``model`` name is accepted. ``delay`` (seconds) holds every completion
request back before it reaches the model; it exists to test client timeouts.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from distillgym.errors import DistillGymError

__all__ = ["LLMServer", "main"]

_MAX_BODY = 16 * 1024 * 1024


class _ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _int(body: dict[str, Any], key: str, default: int | None, low: int, high: int | None = None) -> int | None:
    v = body.get(key, default)
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or v < low or (high is not None and v > high):
        rng = f">= {low}" if high is None else f"in {low}..{high}"
        raise _ApiError(400, f"{key} must be an integer {rng}, got {v!r}")
    return v


def _stop(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if stop is None or stop == []:
        return None
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise _ApiError(400, f"stop must be a string or a list of non-empty strings, got {stop!r}")
    return stop


def _temperature(body: dict[str, Any]) -> float:
    t = body.get("temperature", 1.0)
    if t is None:
        return 1.0
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 <= t <= 100:
        raise _ApiError(400, f"temperature must be a number >= 0, got {t!r}")
    return float(t)


class LLMServer:
    """The server object: ``LLMServer(backend).start()`` serves in a background thread;
    ``url`` is the base URL for OpenAI clients (``http://HOST:PORT/v1``); ``close()`` (or the
    ``with`` block's end) stops it. ``port=0`` takes a free port."""

    def __init__(
        self,
        backend: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str | None = None,
        delay: float = 0.0,
        verbose: bool = False,
        max_tokens_limit: int | None = None,
    ) -> None:
        for attr in ("complete_raw", "score_texts", "tokenizer"):
            if not hasattr(backend, attr):
                raise DistillGymError(f"LLMServer needs a TransformersBackend (got {type(backend).__name__}: no {attr})")
        self.backend = backend
        self.model_name = model_name or backend.model_name or "model"
        limit = max_tokens_limit if max_tokens_limit is not None else (getattr(backend, "max_length", None) or 4096)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise DistillGymError(f"LLMServer max_tokens_limit must be an integer >= 1, got {max_tokens_limit!r}")
        self.max_tokens_limit = int(limit)
        self.delay = float(delay)
        self.verbose = verbose
        self.lock = threading.Lock()
        self.closing = threading.Event()
        handler = type("Handler", (_Handler,), {"app": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # never wait for a client's idle connection
        self.host, self.port = self.httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> LLMServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self.httpd.serve_forever, name="distillgym-llm-server", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        self.closing.set()  # wakes requests held back by ``delay``
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ endpoints
    def models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": self.model_name, "object": "model", "created": 0, "owned_by": "distillgym"}],
        }

    def _hold(self) -> None:
        if self.delay > 0:
            self.closing.wait(self.delay)
        if self.closing.is_set():
            raise _ApiError(503, "the server is shutting down", "server_error")

    def completions(self, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise _ApiError(400, "prompt must be a string or a non-empty list of strings (token ids are not supported)")
        max_tokens = _int(body, "max_tokens", min(16, self.max_tokens_limit), 0, self.max_tokens_limit)
        temperature, stop = _temperature(body), _stop(body)
        logprobs = _int(body, "logprobs", None, 0, 20)
        echo = bool(body.get("echo", False))
        seed = _int(body, "seed", None, 0)
        if _int(body, "n", 1, 1) != 1:
            raise _ApiError(400, "only n=1 is supported")
        if body.get("stream"):
            raise _ApiError(400, "stream is not supported")
        self._hold()
        with self.lock:
            if seed is not None:
                self.backend.reseed(seed)
            comps = self.backend.complete_raw(prompts, max_tokens, temperature, stop)
            scored = None
            if logprobs is not None:
                scored = self.backend.score_texts([p + c.text for p, c in zip(prompts, comps, strict=True)], top=logprobs)
        choices = []
        for i, (p, c) in enumerate(zip(prompts, comps, strict=True)):
            choice: dict[str, Any] = {
                "index": i,
                "text": (p + c.text) if echo else c.text,
                "logprobs": None,
                "finish_reason": c.finish_reason or "length",
            }
            if scored is not None:
                choice["logprobs"] = _logprobs_object(scored[i], 0 if echo else len(p))
            choices.append(choice)
        return {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": _usage(comps),
        }

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _ApiError(400, "messages must be a non-empty list of {role, content} objects")
        msgs = []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise _ApiError(400, f"each message needs a role and a content, got {m!r}")
            content = m.get("content")
            if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            if not isinstance(content, str):
                raise _ApiError(400, f"message content must be a string or a list of text parts, got {content!r}")
            msgs.append({"role": m["role"], "content": content})
        top = self.max_tokens_limit
        max_tokens = (_int(body, "max_completion_tokens", None, 0, top)
                      or _int(body, "max_tokens", min(256, top), 0, top))
        temperature, stop = _temperature(body), _stop(body)
        seed = _int(body, "seed", None, 0)
        if _int(body, "n", 1, 1) != 1:
            raise _ApiError(400, "only n=1 is supported")
        if body.get("stream"):
            raise _ApiError(400, "stream is not supported")
        tok = self.backend.tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            special = False
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant:"
            special = True
        self._hold()
        with self.lock:
            if seed is not None:
                self.backend.reseed(seed)
            comps = self.backend.complete_raw([text], max_tokens, temperature, stop, add_special_tokens=special)
        c = comps[0]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": c.text},
                    "logprobs": None,
                    "finish_reason": c.finish_reason or "length",
                }
            ],
            "usage": _usage(comps),
        }


def _usage(comps: list[Any]) -> dict[str, int]:
    p, c = sum(x.tokens_in for x in comps), sum(x.tokens_out for x in comps)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _logprobs_object(scored: Any, first_char: int) -> dict[str, Any]:
    """The OpenAI ``logprobs`` object for the tokens starting at or after ``first_char``."""
    keep = [i for i, s in enumerate(scored.starts) if s >= first_char] if first_char else range(len(scored.ids))
    return {
        "tokens": [scored.tokens[i] for i in keep],
        "token_logprobs": [scored.logprobs[i] for i in keep],
        "top_logprobs": [scored.top[i] if scored.top[i] is not None else (
            None if scored.logprobs[i] is None else {scored.tokens[i]: scored.logprobs[i]}) for i in keep],
        "text_offset": [scored.starts[i] - first_char for i in keep],
    }


class _Handler(BaseHTTPRequestHandler):
    app: LLMServer
    server_version = "distillgym-llm"
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at shutdown

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        if self.app.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            pass

    def _error(self, err: _ApiError) -> None:
        self._send(err.status, {"error": {"message": err.message, "type": err.kind, "code": err.status}})

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/models":
            self._send(200, self.app.models())
        elif path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        else:
            self._error(_ApiError(404, f"no such endpoint: GET {path}", "not_found_error"))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        routes = {"/v1/completions": self.app.completions, "/v1/chat/completions": self.app.chat_completions}
        try:
            if path not in routes:
                raise _ApiError(404, f"no such endpoint: POST {path}", "not_found_error")
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                raise _ApiError(400, "bad Content-Length") from None
            if length > _MAX_BODY:
                raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {_MAX_BODY} bytes")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise _ApiError(400, f"the request body is not JSON: {err}") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "the request body must be a JSON object")
            self._send(200, routes[path](body))
        except _ApiError as err:
            self._error(err)
        except DistillGymError as err:
            self._error(_ApiError(400, str(err)))
        except Exception as err:  # the model raised: report it, keep serving
            self._error(_ApiError(500, f"{type(err).__name__}: {err}", "server_error"))


def main(argv: list[str] | None = None) -> int:
    """``python -m distillgym.llm.server --model PATH [--host 127.0.0.1] [--port 8000]``."""
    p = argparse.ArgumentParser(
        prog="python -m distillgym.llm.server",
        description="Serve a local transformers causal LM over an OpenAI-compatible HTTP API.",
    )
    p.add_argument("--model", required=True,
                   help="directory of the model and tokenizer (save_pretrained), or a named model such as smollm2")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; there is no auth)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument("--dtype", default="auto", help="auto, float32, float16 or bfloat16")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--served-model-name", default=None, help="name in /v1/models (default: the directory name)")
    p.add_argument("--verbose", action="store_true", help="log every request")
    p.add_argument("--max-tokens-limit", type=int, default=None,
                   help="largest max_tokens a request may ask for (default: the model's context length, else 4096)")
    args = p.parse_args(argv)

    from distillgym.llm.transformers_backend import TransformersBackend

    backend = TransformersBackend(args.model, device=args.device, dtype=args.dtype, seed=args.seed)
    server = LLMServer(backend, args.host, args.port, model_name=args.served_model_name, verbose=args.verbose,
                       max_tokens_limit=args.max_tokens_limit)
    print(f"distillgym LLM server: {server.url} (model {server.model_name!r}); Ctrl-C stops it", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
