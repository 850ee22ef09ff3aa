"""A local Hugging Face causal LM (``AutoModelForCausalLM`` + ``AutoTokenizer``) as an
:class:`~distillgym.llm.base.LLMBackend`.

The model is a local directory or a named model (``"smollm2"``, see
:mod:`distillgym.llm.models`), loaded with ``local_files_only=True`` (nothing is downloaded)
by :func:`~distillgym.llm.models.load_causal_lm`, which keeps one copy per process: every
backend built on the same model, device and dtype shares it, so a teacher rebuilt for each
episode does not reload it. Decoding is a plain batched loop with a
key-value cache (left padding, explicit position ids): greedy at ``temperature=0``, otherwise
sampling from ``softmax(logits / temperature)`` with this backend's own seeded
``torch.Generator``, so that runs repeat exactly. ``choose`` scores all options in one batched
forward pass (``score_batch_size`` options at a time).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, check_int
from distillgym.llm.base import (
    Completion,
    LLMBackend,
    LLMBackendError,
    Stopwatch,
    common_prefix_len,
    option_start,
    truncate_at_stop,
)
from distillgym.runtime import resolve_device

__all__ = ["TransformersBackend", "ScoredText"]

_DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class ScoredText:
    """A text's tokens with their log-likelihoods (used by the HTTP server's ``echo``).

    ``logprobs[0]`` is ``None`` (the first token has no context); ``top[i]`` maps the ``k``
    most likely tokens at position ``i`` (and the actual one) to their log-probabilities."""

    ids: list[int]
    tokens: list[str]
    starts: list[int]
    logprobs: list[float | None]
    top: list[dict[str, float] | None]


def token_starts(tokenizer: Any, texts: list[str], add_special_tokens: bool = True) -> list[tuple[list[int], list[int]]]:
    """``(token ids, start offset of each token in its text)`` per text. Special tokens (which
    a fast tokenizer reports at ``(0, 0)``) get the end of the previous token as their start.
    A slow tokenizer, which has no offset mapping, gets offsets by decoding growing prefixes."""
    try:
        enc = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, TypeError, ValueError, KeyError):
        offsets = None
    out = []
    if offsets is not None:
        for ids, offs in zip(enc["input_ids"], offsets, strict=True):
            starts: list[int] = []
            last_end = 0
            for a, b in offs:
                if b > a:
                    starts.append(max(int(a), starts[-1] if starts else 0))
                    last_end = max(last_end, int(b))
                else:
                    starts.append(last_end)
            out.append((list(ids), starts))
        return out
    for text in texts:
        ids = list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
        starts, last = [], 0
        for i in range(len(ids)):
            last = min(max(last, len(tokenizer.decode(ids[:i], skip_special_tokens=True))), len(text))
            starts.append(last)
        out.append((ids, starts))
    return out


class TransformersBackend(LLMBackend):
    """A causal LM loaded from ``model`` (a local directory) with transformers.

    Arguments:
    - ``model``: path of a directory holding the model and its tokenizer (``save_pretrained``),
      or a named model (``"smollm2"``).
    - ``device``: ``"auto"`` (cuda when present), ``"cpu"`` or ``"cuda[:N]"``.
    - ``dtype``: ``"auto"`` (float32 on CPU, the checkpoint's own dtype on CUDA), ``"float32"``,
      ``"float16"`` or ``"bfloat16"``.
    - ``seed``: seed of the sampling generator (``temperature > 0``); ``reseed`` restarts it.
    - ``chat``: wrap every prompt in the tokenizer's chat template as one user message (for
      instruction-tuned models), in ``complete`` and ``choose`` alike.
    - ``score_batch_size``: options (or texts) per forward pass when scoring.
    - ``share_prefix``: ``choose`` runs the prompt through the model once and then only the
      options' own tokens, in one batch, on a copy of the prompt's key-value cache (the same
      scores as scoring each ``prompt + option`` whole, up to float rounding, at a fraction of
      the cost for long prompts); ``complete`` likewise runs the tokens that all prompts of a
      batch start with (at least 8) once, e.g. a few-shot list shared by many questions;
      ``False`` runs whole sequences.
    - ``max_length``: longest sequence fed to the model (default: the config's
      ``max_position_embeddings`` when it has one); longer prompts lose their beginning.
    - ``trust_remote_code``: passed to ``from_pretrained``.
    """

    kind = "transformers"

    def __init__(
        self,
        model: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        seed: int = 0,
        chat: bool = False,
        score_batch_size: int = 32,
        max_length: int | None = None,
        trust_remote_code: bool = False,
        share_prefix: bool = True,
    ) -> None:
        super().__init__()
        import torch

        from distillgym.llm.models import load_causal_lm

        if dtype not in _DTYPES:
            raise ConfigError(f"dtype must be one of {list(_DTYPES)}, got {dtype!r}")
        check_int("", "score_batch_size", score_batch_size, 1)
        if model is None or str(model) == "":
            raise ConfigError(
                "the transformers backend needs model=PATH (a directory made by save_pretrained) or a named "
                "model such as 'smollm2'"
            )
        self.device = resolve_device(device)
        if dtype == "auto":
            torch_dtype: Any = torch.float32 if self.device.type == "cpu" else "auto"
        else:
            torch_dtype = getattr(torch, dtype)
        # one copy per process, shared with every other backend, engine or teacher that loads it
        self.model, self.tokenizer = load_causal_lm(
            model, device=self.device, dtype=torch_dtype, trust_remote_code=trust_remote_code
        )
        self.model_name = Path(str(model)).name or str(model)
        self.chat = bool(chat)
        if self.chat and not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"chat=True but the tokenizer of {str(model)!r} has no chat template")
        self.score_batch_size = score_batch_size
        self.share_prefix = bool(share_prefix)
        limit = max_length or getattr(self.model.config, "max_position_embeddings", None)
        self.max_length = int(limit) if limit else None
        tok = self.tokenizer
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = tok.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos]))
        pad = tok.pad_token_id if tok.pad_token_id is not None else (min(self.eos_ids) if self.eos_ids else 0)
        self.pad_id = int(pad)
        params = inspect.signature(self.model.forward).parameters
        self._keep_arg = "logits_to_keep" if "logits_to_keep" in params else None
        # transformers >= 5.2x names the key-value cache argument ``cache`` (``past_key_values`` is deprecated)
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self.reseed(seed)

    # ------------------------------------------------------------------ public API
    def reseed(self, seed: int) -> None:
        import torch

        self.seed = int(seed)
        self._gen = torch.Generator(device=self.device)
        self._gen.manual_seed(self.seed)

    def close(self) -> None:
        """Drop this backend's reference to the model (the process-wide copy stays loaded for
        other users; :func:`~distillgym.llm.models.unload_models` drops it)."""
        self.model = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model_name!r}, device={str(self.device)!r}, chat={self.chat})"

    def format_prompt(self, prompt: str) -> str:
        """The text the model sees for ``prompt``: itself, or with ``chat=True`` the chat
        template applied to one user message, with the assistant turn opened."""
        if not self.chat:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def complete(
        self, prompts: list[str], max_tokens: int, temperature: float = 0.0, stop: list[str] | None = None
    ) -> list[Completion]:
        prompts = self._check_complete_args(prompts, max_tokens, temperature, stop)
        texts = [self.format_prompt(p) for p in prompts]
        return self.complete_raw(texts, max_tokens, temperature, stop, add_special_tokens=not self.chat)

    def complete_raw(
        self,
        texts: list[str],
        max_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        add_special_tokens: bool = True,
    ) -> list[Completion]:
        """``complete`` on texts used as given (no chat template); ``add_special_tokens=False``
        for texts that already hold them (a rendered chat template)."""
        texts = self._check_complete_args(texts, max_tokens, temperature, stop)
        if not texts:
            return []
        with Stopwatch() as sw:
            ids = [self._encode(t, room=max_tokens, add_special_tokens=add_special_tokens) for t in texts]
            outs = self._generate(ids, max_tokens, float(temperature), list(stop or []))
        result = [
            Completion(text=text, tokens_in=len(i), tokens_out=n, finish_reason=reason)
            for i, (text, n, reason) in zip(ids, outs, strict=True)
        ]
        return self._finish_complete(result, sw.seconds)

    def choose(self, prompt: str, options: list[str]) -> tuple[int, list[float]]:
        options = self._check_choose_args(prompt, options)
        with Stopwatch() as sw:
            text = self.format_prompt(prompt)
            ctx = self._encode(text)
            fulls = [self._encode(text + o) for o in options]
            firsts = [option_start(ctx, f) for f in fulls]
            scores = None
            if self.share_prefix:
                try:
                    scores = self._scores_shared_prefix(fulls, firsts)
                except (AttributeError, NotImplementedError, TypeError) as err:  # a cache that cannot be copied
                    warnings.warn(f"choose(): prefix sharing failed ({err}); scoring whole sequences", stacklevel=2)
                    self.share_prefix = False
            if scores is None:
                scores = self._scores_whole(fulls, firsts)
        return self._finish_choose(scores, sum(len(f) for f in fulls), sw.seconds)

    def _scores_whole(self, fulls: list[list[int]], firsts: list[int]) -> list[float]:
        """Each ``prompt + option`` in full, ``score_batch_size`` sequences per forward pass."""
        scores: list[float] = []
        for lo in range(0, len(fulls), self.score_batch_size):
            batch, starts = fulls[lo : lo + self.score_batch_size], firsts[lo : lo + self.score_batch_size]
            lps, _ = self._token_logprobs(batch, n_last=max(len(f) - s for f, s in zip(batch, starts, strict=True)))
            scores.extend(float(sum(lp[s:])) for lp, s in zip(lps, starts, strict=True))
        return scores

    def _scores_shared_prefix(self, fulls: list[list[int]], firsts: list[int]) -> list[float]:
        """The tokens every option shares with the prompt go through the model once; the
        key-value cache is then repeated for a batch of the options' remaining tokens."""
        import copy

        import torch

        if self.model is None:
            raise LLMBackendError("this backend was closed")
        shared = min(firsts)  # >= 1: fulls[i][:shared] is the same for every option
        with torch.inference_mode():
            out = self._forward(keep=1, input_ids=torch.tensor([fulls[0][:shared]], device=self.device), use_cache=True)
            prefix_cache = self._cache_of(out)
            first_logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            scores: list[float] = []
            for lo in range(0, len(fulls), self.score_batch_size):
                batch = [f[shared:] for f in fulls[lo : lo + self.score_batch_size]]
                B, L = len(batch), max(len(b) for b in batch)
                ids = torch.full((B, L), self.pad_id, dtype=torch.long)
                mask = torch.zeros((B, shared + L), dtype=torch.long)
                mask[:, :shared] = 1
                for r, b in enumerate(batch):  # right padding: the padded tail is never attended to
                    ids[r, : len(b)] = torch.tensor(b, dtype=torch.long)
                    mask[r, shared : shared + len(b)] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(B)
                pos = torch.arange(shared, shared + L, device=self.device).unsqueeze(0).expand(B, L)
                logits = self._forward(input_ids=ids, attention_mask=mask, position_ids=pos, past=cache,
                                       use_cache=True).logits
                lp_rest = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1))
                lp_rest = lp_rest.squeeze(-1).cpu().tolist()
                for r, b in enumerate(batch):
                    lp = [float(first_logp[b[0]])] + lp_rest[r][: len(b) - 1]  # token at position shared + j
                    scores.append(float(sum(lp[firsts[lo + r] - shared :])))
        return scores

    def score_texts(self, texts: list[str], top: int = 0) -> list[ScoredText]:
        """Every token of each text with its log-likelihood given the tokens before it (the
        texts are used as given: no chat template). Token strings are the slices of the text
        they cover, so they join back to the text; special tokens are shown by name. ``top > 0``
        adds, at each position, the ``top`` most likely tokens (and the actual one)."""
        texts = list(texts)
        encoded = token_starts(self.tokenizer, texts)
        out: list[ScoredText] = []
        with Stopwatch() as sw:
            for lo in range(0, len(encoded), self.score_batch_size):
                chunk = encoded[lo : lo + self.score_batch_size]
                ids = [self._clip(i) for i, _ in chunk]
                lps, tops = self._token_logprobs(ids, top=top)
                for k, (full_ids, all_starts) in enumerate(chunk):
                    text, row = texts[lo + k], ids[k]
                    starts = all_starts[len(full_ids) - len(row) :]
                    ends = starts[1:] + [len(text)]
                    special = set(self.tokenizer.all_special_ids)
                    tokens = [
                        str(self.tokenizer.convert_ids_to_tokens(t)) if (t in special and b <= a) else text[a:b]
                        for t, a, b in zip(row, starts, ends, strict=True)
                    ]
                    top_dicts: list[dict[str, float] | None] = [None] * len(row)
                    if top:
                        for i, item in enumerate(tops[k]):
                            if item is not None:
                                top_dicts[i] = {self.tokenizer.decode([t]): v for t, v in item}
                                top_dicts[i].setdefault(tokens[i], lps[k][i])
                    out.append(ScoredText(row, tokens, starts, [None] + lps[k][1:], top_dicts))
        self._count(sum(len(s.ids) for s in out), 0, sw.seconds)
        return out

    # ------------------------------------------------------------------ internals
    def _encode(self, text: str, room: int = 0, add_special_tokens: bool | None = None) -> list[int]:
        if add_special_tokens is None:
            add_special_tokens = not self.chat  # a rendered chat template already holds them
        ids = list(self.tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
        return self._clip(ids, room)

    def _clip(self, ids: list[int], room: int = 0) -> list[int]:
        if self.max_length is not None and len(ids) + room > self.max_length:
            keep = max(1, self.max_length - room)
            ids = ids[-keep:]
        if not ids:
            ids = [self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.pad_id]
        return ids

    def _left_pad(self, id_lists: list[list[int]]):
        import torch

        T = max(len(i) for i in id_lists)
        input_ids = torch.full((len(id_lists), T), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(id_lists), T), dtype=torch.long)
        for r, ids in enumerate(id_lists):
            input_ids[r, T - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            mask[r, T - len(ids) :] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return input_ids, mask, position_ids

    def _forward(self, keep: int = 0, past: Any = None, **kwargs: Any):
        """The model's forward pass; ``keep``: logits of the last ``keep`` positions only (0: all);
        ``past``: a key-value cache, passed under the name this transformers version uses."""
        if self._keep_arg and keep:
            kwargs[self._keep_arg] = keep
        if past is not None:
            kwargs[self._cache_arg] = past
        return self.model(**kwargs)

    @staticmethod
    def _cache_of(out: Any) -> Any:
        cache = getattr(out, "cache", None)
        return cache if cache is not None else out.past_key_values

    def _token_logprobs(self, id_lists: list[list[int]], n_last: int | None = None, top: int = 0):
        """One left-padded forward pass. Returns ``(lps, tops)``: per sequence,
        ``lps[r][i] = log p(ids[i] | ids[:i])`` for the last ``n_last`` tokens (all when None;
        0.0 elsewhere, and always at i = 0), and with ``top > 0`` ``tops[r][i]``, a list of
        ``(token id, logprob)`` for the ``top`` most likely tokens (None where not computed)."""
        import torch

        if self.model is None:
            raise LLMBackendError("this backend was closed")
        input_ids, mask, pos = self._left_pad(id_lists)
        T = input_ids.shape[1]
        lps = [[0.0] * len(i) for i in id_lists]
        tops: list[list[Any]] = [[None] * len(i) for i in id_lists]
        if T < 2:
            return lps, tops
        n = T - 1 if n_last is None else max(1, min(int(n_last), T - 1))
        with torch.inference_mode():
            out = self._forward(keep=n + 1, input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=False)
            logp = torch.log_softmax(out.logits[:, -(n + 1) : -1, :].float(), dim=-1)  # predicts the last n tokens
            lp = logp.gather(-1, input_ids[:, T - n :].unsqueeze(-1)).squeeze(-1).cpu().tolist()
            if top:
                tv, ti = logp.topk(min(int(top), logp.shape[-1]), dim=-1)
                tv, ti = tv.cpu().tolist(), ti.cpu().tolist()
        for r, ids in enumerate(id_lists):
            L = len(ids)
            for j in range(n):  # column j is position T - n + j of the padded row, index L - n + j of ids
                i = L - n + j
                if i >= 1:
                    lps[r][i] = lp[r][j]
                    if top:
                        tops[r][i] = list(zip(ti[r][j], tv[r][j], strict=True))
        return lps, tops

    def _shared_len(self, id_lists: list[list[int]]) -> int:
        """How many leading tokens every row shares, when worth running once (``share_prefix``,
        two rows or more, at least 8 tokens; each row keeps at least one token of its own), else 0."""
        if not self.share_prefix or len(id_lists) < 2:
            return 0
        n = min(len(i) for i in id_lists) - 1
        first = id_lists[0]
        for ids in id_lists[1:]:
            n = min(n, common_prefix_len(first, ids))
        return n if n >= 8 else 0

    def _generate(self, id_lists: list[list[int]], max_tokens: int, temperature: float, stop: list[str]):
        """Batched decoding with a key-value cache; returns (text, tokens_out, finish_reason) per row.
        The rows' common prefix is run once and its cache repeated (see ``share_prefix``); the rest of
        each row is left-padded after it (the padding is masked, positions count real tokens only)."""
        import torch

        if self.model is None:
            raise LLMBackendError("this backend was closed")
        B = len(id_lists)
        outs: list[list[int]] = [[] for _ in range(B)]
        reasons = ["length"] * B
        done = [False] * B
        if max_tokens == 0:
            return [("", 0, "length") for _ in range(B)]
        past = None
        shared = self._shared_len(id_lists)
        with torch.inference_mode():
            if shared:
                try:  # the tokens every row starts with go through the model once
                    out = self._forward(keep=1, input_ids=torch.tensor([id_lists[0][:shared]], device=self.device),
                                        use_cache=True)
                    past = self._cache_of(out)
                    past.batch_repeat_interleave(B)
                except (AttributeError, NotImplementedError, TypeError) as err:  # a cache that cannot be repeated
                    warnings.warn(f"complete(): prefix sharing failed ({err}); decoding whole rows", stacklevel=3)
                    self.share_prefix, shared, past = False, 0, None
            if shared:
                rest_ids, rest_mask, _ = self._left_pad([ids[shared:] for ids in id_lists])
                mask = torch.cat([torch.ones((B, shared), dtype=rest_mask.dtype, device=self.device), rest_mask], 1)
                cur_ids, cur_pos = rest_ids, (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
            else:
                cur_ids, mask, cur_pos = self._left_pad(id_lists)
            for _ in range(max_tokens):
                out = self._forward(keep=1, input_ids=cur_ids, attention_mask=mask, position_ids=cur_pos,
                                    past=past, use_cache=True)
                past = self._cache_of(out)
                logits = out.logits[:, -1, :].float()
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    nxt = torch.multinomial(probs, 1, generator=self._gen).squeeze(1)
                else:
                    nxt = logits.argmax(dim=-1)
                for r, t in enumerate(nxt.tolist()):
                    if done[r]:
                        continue
                    outs[r].append(t)
                    if t in self.eos_ids:
                        done[r], reasons[r] = True, "stop"
                    elif stop and truncate_at_stop(self.tokenizer.decode(outs[r], skip_special_tokens=True), stop)[1]:
                        done[r], reasons[r] = True, "stop"
                if all(done):
                    break
                nxt = torch.where(torch.tensor(done, device=self.device), torch.full_like(nxt, self.pad_id), nxt)
                mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=self.device)], dim=1)
                cur_ids = nxt.unsqueeze(1)
                cur_pos = mask.sum(dim=-1, keepdim=True) - 1
        return [
            (truncate_at_stop(self.tokenizer.decode(o, skip_special_tokens=True), stop)[0], len(o), reason)
            for o, reason in zip(outs, reasons, strict=True)
        ]

