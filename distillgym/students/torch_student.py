"""The plain student: the tiny student's Llama architecture in plain torch, in one file.

The model follows nanoGPT's model file: a config dataclass, four small modules (RMSNorm,
causal self-attention with rotary position embeddings, a SwiGLU MLP, a pre-norm block) and
the model, with shape comments. It is the same architecture as
:class:`~distillgym.students.hf_student.TinyStudent`'s ``LlamaForCausalLM`` (hidden 64, 2 layers, 4
heads, intermediate 128, tied input and output embeddings, RMSNorm eps 1e-6, rotary base
10000, no biases): loaded with the same weights it gives the same logits up to float32
rounding (a test checks it). It trains faster than the Hugging Face module on a CPU thread
(no generic attention-mask, cache and output plumbing); see ``benchmarks/vector.py``.

What differs from the tiny student, and why this is a new student (``"plain"``):

- initial weights: every matrix and the embedding ~ N(0, 0.02), norms 1, drawn in
  :func:`param_shapes` order from a ``torch.Generator`` seeded with the init seed (no global
  RNG state); the pad row is an ordinary row (HF zeroes it);
- examples are tokenised as arrays (:func:`encode`, no Python call per example when they
  come as :class:`~distillgym.tasks.arrays.ExampleArrays`) and the replay buffer holds token
  rows (:class:`ReplayBuffer`, a ring: the k-th example added since reset sits in slot
  ``k mod capacity``);
- a call's random draws (:func:`batch_plan`): the permutation of the new examples, then every
  mini-batch's replay indices in one ``integers`` call.

The optimiser is ``torch.optim.AdamW`` (betas (0.9, 0.98), eps 1e-8, weight decay on every
parameter), clipping by the global gradient norm (``clip_grad_norm_``'s rule, computed by
:func:`member_grad_norms`), linear warm-up: as the tiny student. The
population student (:mod:`distillgym.students.population`) trains P of these at once and is
tested against this one.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distillgym.errors import ConfigError, TrainingDivergedError
from distillgym.runtime import resolve_device
from distillgym.students.base import TrainStats, diverged_message
from distillgym.students.char_lm import StudentConfig, flops_per_token, greedy_decode, lr_at, suite_config
from distillgym.students.tokenizer import BOS, EOS, PAD, CharTokenizer
from distillgym.tasks.arrays import ExampleArrays
from distillgym.types import Example

__all__ = [
    "PlainConfig",
    "PlainLM",
    "PlainStudent",
    "TokenRows",
    "ReplayBuffer",
    "CellCodes",
    "BatchPlan",
    "encode",
    "batch_plan",
    "member_grad_norms",
    "make_targets",
    "member_loss",
    "cell_means",
    "row_loss",
    "param_shapes",
    "init_weights",
    "from_hf_state_dict",
]

ADAM_EPS = 1e-8
BETAS = (0.9, 0.98)


# ============================================================================ the model
@dataclass
class PlainConfig:
    """The model's shape (a subset of :class:`StudentConfig`, plus the vocabulary)."""

    vocab_size: int
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    max_positions: int = 32
    rms_eps: float = 1e-6
    """RMSNorm epsilon (LlamaConfig's default)."""
    rope_theta: float = 10000.0
    """Rotary base (LlamaConfig's default)."""
    init_std: float = 0.02
    """Standard deviation of the initial weights (LlamaConfig's initializer_range)."""

    @classmethod
    def from_student(cls, cfg: StudentConfig, vocab_size: int) -> PlainConfig:
        return cls(vocab_size=vocab_size, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                   num_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size, max_positions=cfg.max_positions,
                   init_std=cfg.init_std)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


def param_shapes(cfg: PlainConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the canonical order (the order of
    ``PlainLM.named_parameters()``, of weight initialisation and of optimiser state)."""
    H, F_, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (V, H)}
    for i in range(cfg.num_layers):
        b = f"blocks.{i}."
        shapes[b + "attn_norm.weight"] = (H,)
        for m in "qkvo":
            shapes[b + f"attn.{m}.weight"] = (H, H)
        shapes[b + "mlp_norm.weight"] = (H,)
        shapes[b + "mlp.gate.weight"] = (F_, H)
        shapes[b + "mlp.up.weight"] = (F_, H)
        shapes[b + "mlp.down.weight"] = (H, F_)
    shapes["norm.weight"] = (H,)
    return shapes


def init_weights(cfg: PlainConfig, seed: int) -> dict[str, torch.Tensor]:
    """Initial weights drawn from ``seed`` alone (CPU, float32): norms 1, everything else
    N(0, init_std), in :func:`param_shapes` order from one ``torch.Generator``."""
    g = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, shape in param_shapes(cfg).items():
        if name.endswith("norm.weight"):
            out[name] = torch.ones(shape)
        else:
            out[name] = torch.normal(0.0, cfg.init_std, size=shape, generator=g)
    return out


def from_hf_state_dict(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """Plain-model weights from a transformers ``LlamaForCausalLM`` state dict (tied embeddings)."""
    out = {"embed.weight": state["model.embed_tokens.weight"], "norm.weight": state["model.norm.weight"]}
    for i in range(num_layers):
        hf, b = f"model.layers.{i}.", f"blocks.{i}."
        out[b + "attn_norm.weight"] = state[hf + "input_layernorm.weight"]
        out[b + "mlp_norm.weight"] = state[hf + "post_attention_layernorm.weight"]
        for m in "qkvo":
            out[b + f"attn.{m}.weight"] = state[hf + f"self_attn.{m}_proj.weight"]
        for m in ("gate", "up", "down"):
            out[b + f"mlp.{m}.weight"] = state[hf + f"mlp.{m}_proj.weight"]
    return {k: v.detach().clone() for k, v in out.items()}


def rotary_tables(cfg: PlainConfig, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, (max_positions, head_dim) each: rotary frequencies theta^(-2i/d), both halves."""
    d = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    freqs = torch.outer(torch.arange(cfg.max_positions).float(), inv_freq)  # (T, d/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, d)
    return emb.cos().to(device), emb.sin().to(device)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (..., T, d) queries or keys by position (the "rotate half" convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


class Attention(nn.Module):
    def __init__(self, cfg: PlainConfig) -> None:
        super().__init__()
        H = cfg.hidden_size
        self.n_head, self.head_dim = cfg.num_heads, cfg.head_dim
        self.q = nn.Linear(H, H, bias=False)
        self.k = nn.Linear(H, H, bias=False)
        self.v = nn.Linear(H, H, bias=False)
        self.o = nn.Linear(H, H, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        q = self.q(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.k(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hd)
        return self.o(y.transpose(1, 2).reshape(B, T, H))


class MLP(nn.Module):
    def __init__(self, cfg: PlainConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # SwiGLU


class Block(nn.Module):
    def __init__(self, cfg: PlainConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class PlainLM(nn.Module):
    """A Llama-architecture causal LM: ``forward(ids (B, T)) -> logits (B, T, vocab)``."""

    def __init__(self, cfg: PlainConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.num_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_eps)
        cos, sin = rotary_tables(cfg)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        x = self.embed(ids)  # (B, T, H)
        cos, sin = self.cos[:T], self.sin[:T]
        for block in self.blocks:
            x = block(x, cos, sin)
        return F.linear(self.norm(x), self.embed.weight)  # tied output embedding: (B, T, V)


# ============================================================================ data as token rows
@dataclass
class TokenRows:
    """Examples as token rows: ``ids`` (n, W) right-padded with PAD (bos, prompt, answer with
    digits reversed when the tokenizer says so, eos); ``prompt_len`` counts bos and the prompt;
    ``length`` the whole row; ``skill``/``difficulty`` per row, skill indexing ``skills``."""

    ids: np.ndarray
    prompt_len: np.ndarray
    length: np.ndarray
    skill: np.ndarray
    difficulty: np.ndarray
    skills: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.length)

    def take(self, index: np.ndarray) -> TokenRows:
        return TokenRows(self.ids[index], self.prompt_len[index], self.length[index], self.skill[index],
                         self.difficulty[index], self.skills)


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every token id (uint8 for a character vocabulary)."""
    return np.dtype(np.uint8) if vocab_size <= 256 else np.dtype(np.int32)


def _lookup(tokenizer: CharTokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Code point -> token id (-1: not in the alphabet), and code point -> str.isdigit()."""
    top = max(map(ord, tokenizer.alphabet), default=0) + 1
    ids = np.full(top, -1, np.int16 if max(tokenizer.stoi.values(), default=0) < 2**15 else np.int32)
    digit = np.zeros(top, bool)
    for ch, i in tokenizer.stoi.items():
        ids[ord(ch)] = i
        digit[ord(ch)] = ch.isdigit()
    return ids, digit


def _tokens(lut: np.ndarray, codes: np.ndarray, lengths: np.ndarray, what: str, texts: Any
            ) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of a code matrix, transposed (``(L, n)``: one row per position, so that the
    reductions and copies below run along whole rows), PAD after each row's length, and the
    transposed code points. Raises :class:`ConfigError` for a character outside the alphabet."""
    top = int(codes.max()) if codes.size else 0
    narrow = top < 256  # code points as bytes: a quarter of the memory to move
    t = np.ascontiguousarray((codes.astype(np.uint8) if narrow and codes.dtype != np.uint8 else codes).T)
    inside = np.arange(t.shape[0])[:, None] < lengths[None, :]
    if t.size and top < len(lut):  # every code point has a table entry: one lookup
        tok = lut.take(t)
    else:
        c = t.astype(np.int64)
        tok = np.where(c < len(lut), lut.take(np.minimum(c, len(lut) - 1)), -1)
    bad = inside & (tok < 0)
    if bad.any():
        j, r = map(int, np.argwhere(bad)[0])
        raise ConfigError(f"character {chr(int(codes[r, j]))!r} in {what} {texts(r)!r} is not in the student's alphabet")
    if PAD == 0:
        tok *= inside  # PAD after each row's end
    else:
        tok[~inside] = PAD
    return tok, t


def encode(tokenizer: CharTokenizer, examples: Sequence[Example] | ExampleArrays,
           skills: Sequence[str] | None = None, max_positions: int | None = None) -> TokenRows:
    """Token rows of ``examples``, vectorised (see :class:`TokenRows`). ``skills`` names the skill
    indices (default: those of an ``ExampleArrays``, else the sorted skill names present);
    ``max_positions`` raises :class:`ConfigError` for a longer row."""
    if not isinstance(examples, ExampleArrays):
        if skills is None:
            skills = sorted({e.skill for e in examples})
        examples = ExampleArrays.from_examples(examples, skills)
    arr = examples
    lut, digit = getattr(tokenizer, "_vector_lut", None) or _lookup(tokenizer)
    tokenizer._vector_lut = (lut, digit)  # type: ignore[attr-defined]
    n = len(arr)
    lp, la = arr.prompt_len, arr.answer_len
    p, _ = _tokens(lut, arr.prompt, lp, "prompt", lambda r: arr.prompts()[r])
    a, a_codes = _tokens(lut, arr.answer, la, "answer", lambda r: arr.answers()[r])
    numeric = np.zeros(n, bool)  # rows whose answer is written with its digits reversed
    if tokenizer.reverse_answers and n:
        outside = np.arange(a.shape[0])[:, None] >= la[None, :]
        if a_codes.size and int(a_codes.max()) < len(digit):
            is_digit = digit.take(a_codes) | outside
        else:
            c = a_codes.astype(np.int64)
            is_digit = np.where(c < len(digit), digit.take(np.minimum(c, len(digit) - 1)), False) | outside
        numeric = (la > 0) & is_digit.all(0)
    length = 2 + lp + la
    width = int(length.max(initial=2))
    if max_positions is not None and width > max_positions:
        raise ConfigError(
            f"an example needs {width} positions (bos + prompt + answer + eos) but StudentConfig.max_positions is "
            f"{max_positions}; raise max_positions"
        )
    # whole columns at a time into a wide enough scratch matrix; every padding token written is
    # PAD (0, as _tokens pads), so nothing past a row's end needs clearing
    reach = max(width, int((1 + lp).max(initial=0)) + a.shape[0] + 1)
    ids = np.full((n, reach), PAD, dtype=id_dtype(tokenizer.vocab_size))
    ids[:, 0] = BOS
    flat = ids.reshape(-1)
    wp = int(lp.max(initial=0))
    ids[:, 1 : 1 + wp] = p[:wp].T  # every prompt starts at column 1
    at = np.arange(n, dtype=np.int64) * reach + 1 + lp  # where each row's answer starts
    flip = numeric if numeric.any() else None
    back = la - 1 if flip is not None else None
    for j in range(a.shape[0]):  # answer character j goes to answer position j, or la - 1 - j reversed
        flat[at + (np.where(flip & (j < la), back - j, j) if flip is not None else j)] = a[j]
    flat[at + la] = EOS
    ids = ids[:, :width].copy()
    return TokenRows(ids, 1 + lp, length, arr.skill, arr.difficulty, arr.skills)


def cell_means(rows: TokenRows, index: np.ndarray, values: np.ndarray) -> dict[tuple[str, int], float]:
    """Mean of ``values[j]`` per (skill, level) of row ``index[j]`` (vectorised ``TrainStats.cell_loss``)."""
    if not len(index):
        return {}
    span = int(rows.difficulty.max(initial=0)) + 1
    codes = rows.skill[index] * span + rows.difficulty[index]
    uniq, inv = np.unique(codes, return_inverse=True)
    sums = np.bincount(inv, weights=np.asarray(values, np.float64))
    counts = np.bincount(inv)
    return {(rows.skills[int(u // span)], int(u % span)): float(s / c) for u, s, c in zip(uniq, sums, counts, strict=True)}


def make_targets(ids: torch.Tensor, prompt_len: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Next-token targets for ``ids`` (..., T): the token after position t where t scores an
    answer token or eos (``prompt_len - 1 <= t < length - 1``), else -100."""
    T = ids.shape[-1]
    pos = torch.arange(T, device=ids.device)
    nxt = torch.cat([ids[..., 1:], torch.full_like(ids[..., :1], PAD)], dim=-1)
    scored = (pos >= prompt_len.unsqueeze(-1) - 1) & (pos < length.unsqueeze(-1) - 1)
    return torch.where(scored, nxt, torch.full_like(nxt, -100))


def member_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(P,) training loss of each population member: mean cross-entropy over the member's scored
    tokens, from logits (P, B, T, V) and targets (P, B, T). The plain student uses it with P = 1,
    so both compute the same numbers in the same order."""
    P = targets.shape[0]
    tok = F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten(), ignore_index=-100,
                          reduction="none").view(P, -1)
    return tok.sum(1) / (targets != -100).view(P, -1).sum(1).clamp(min=1)


def row_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(...,) mean cross-entropy over each row's scored tokens (0 for a row with none)."""
    tok = F.cross_entropy(logits.detach().flatten(0, -2).float(), targets.flatten(), ignore_index=-100,
                          reduction="none").view(targets.shape)
    return tok.sum(-1) / (targets != -100).sum(-1).clamp(min=1)


# ============================================================================ replay and batches
class CellCodes:
    """Numbers for (skill, level) cells in order of first appearance (0, 1, ...): the cell of each
    replay slot, kept by the buffers of ``StudentConfig.replay_sampling="cell"``. The plain student
    and a population member add the same rows in the same order, so they number cells alike."""

    def __init__(self, cells: Sequence[Sequence[Any]] = ()) -> None:
        self.cells: list[tuple[str, int]] = []
        self.index: dict[tuple[str, int], int] = {}
        for skill, level in cells:
            self.code(str(skill), int(level))

    def code(self, skill: str, level: int) -> int:
        key = (skill, level)
        if key not in self.index:
            self.index[key] = len(self.cells)
            self.cells.append(key)
        return self.index[key]

    def of(self, rows: TokenRows) -> np.ndarray:
        """(n,) the code of each row's cell."""
        if not len(rows):
            return np.zeros(0, np.int64)
        span = int(rows.difficulty.max(initial=0)) + 1
        local = np.asarray(rows.skill, np.int64) * span + np.asarray(rows.difficulty, np.int64)
        uniq, inv = np.unique(local, return_inverse=True)
        first = np.full(len(uniq), len(local), np.int64)
        np.minimum.at(first, inv, np.arange(len(local)))
        lut = np.zeros(len(uniq), np.int64)
        for u in np.argsort(first, kind="stable"):  # number new cells in the order the rows bring them
            lut[u] = self.code(rows.skills[int(uniq[u] // span)], int(uniq[u] % span))
        return lut[inv]


class ReplayBuffer:
    """The episode's earlier training rows, a ring of ``capacity`` rows of ``width`` tokens: the
    k-th row added since :meth:`clear` sits in slot ``k mod capacity``; :meth:`rows` reads slots
    (uniform sampling over the filled slots is uniform over the most recent ``capacity`` rows).
    With ``by_cell`` it also keeps each slot's (skill, level) cell (``cell``, codes of ``codes``)
    for :func:`batch_plan`'s stratified draw."""

    def __init__(self, capacity: int, width: int, dtype: np.dtype, by_cell: bool = False) -> None:
        self.capacity, self.width, self.dtype = int(capacity), int(width), np.dtype(dtype)
        self.by_cell = bool(by_cell)
        self.clear()

    def clear(self) -> None:
        self.count = 0
        self.ids = np.zeros((0, self.width), self.dtype)
        self.prompt_len = np.zeros(0, np.int64)
        self.length = np.zeros(0, np.int64)
        self.cell = np.zeros(0, np.int64)
        self.codes = CellCodes()

    def cells(self) -> np.ndarray | None:
        """The cell code of each filled slot (``by_cell``), else None."""
        return self.cell[: len(self)] if self.by_cell else None

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def add(self, rows: TokenRows) -> None:
        if self.capacity == 0 or len(rows) == 0:
            return
        n = len(rows)
        keep = np.arange(max(0, n - self.capacity), n)  # rows beyond capacity would be overwritten
        slots = (self.count + keep) % self.capacity
        filled = min(self.count + n, self.capacity)
        if filled > len(self.ids):
            size = min(self.capacity, max(filled, 2 * len(self.ids)))
            grow = size - len(self.ids)
            self.ids = np.concatenate([self.ids, np.zeros((grow, self.width), self.dtype)])
            self.prompt_len = np.concatenate([self.prompt_len, np.zeros(grow, np.int64)])
            self.length = np.concatenate([self.length, np.zeros(grow, np.int64)])
            if self.by_cell:
                self.cell = np.concatenate([self.cell, np.zeros(grow, np.int64)])
        w = rows.ids.shape[1]
        self.ids[slots, :w] = rows.ids[keep]
        self.ids[slots, w:] = PAD
        self.prompt_len[slots] = rows.prompt_len[keep]
        self.length[slots] = rows.length[keep]
        if self.by_cell:
            self.cell[slots] = self.codes.of(rows)[keep]
        self.count += n

    def rows(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.ids[slots], self.prompt_len[slots], self.length[slots]

    def snapshot(self) -> dict[str, Any]:
        m = len(self)
        snap = {"ids": self.ids[:m].copy(), "prompt_len": self.prompt_len[:m].copy(),
                "length": self.length[:m].copy(), "count": self.count}
        if self.by_cell:  # each slot's cell code, and the cells those codes name
            snap["cell"] = self.cell[:m].copy()
            snap["cells"] = [list(c) for c in self.codes.cells]
        return snap

    def restore(self, snap: dict[str, Any] | None) -> None:
        self.clear()
        if not snap:
            return
        ids = np.asarray(snap["ids"])
        m = min(len(ids), self.capacity)
        self.ids = np.full((m, self.width), PAD, self.dtype)
        self.ids[:, : min(ids.shape[1], self.width)] = ids[:m, : self.width]
        self.prompt_len = np.asarray(snap["prompt_len"], np.int64)[:m].copy()
        self.length = np.asarray(snap["length"], np.int64)[:m].copy()
        self.count = int(snap["count"]) if m == len(ids) else m
        if self.by_cell:
            self.cell, self.codes = restore_cells(snap, m)


def restore_cells(snap: dict[str, Any], m: int) -> tuple[np.ndarray, CellCodes]:
    """The first ``m`` slots' cell codes and the cell numbering of a replay snapshot; a snapshot
    without them (taken with ``replay_sampling="uniform"``) puts every row in one unnamed cell."""
    if "cell" not in snap:
        return np.zeros(m, np.int64), CellCodes([("", -1)] if m else [])
    return np.asarray(snap["cell"], np.int64)[:m].copy(), CellCodes(snap.get("cells", []))


@dataclass
class BatchPlan:
    """A train call's mini-batches: batch k holds new rows ``order[k*n_new:(k+1)*n_new]`` then
    replay slots ``replay[k]`` (``n_replay`` of them; none while the buffer is empty)."""

    order: np.ndarray
    replay: np.ndarray | None
    n_new: int
    n_replay: int

    @property
    def n_batches(self) -> int:
        return -(-len(self.order) // self.n_new) if len(self.order) else 0

    def new_rows(self, k: int) -> np.ndarray:
        return self.order[k * self.n_new : (k + 1) * self.n_new]


def batch_plan(n: int, n_buffer: int, cfg: StudentConfig, rng: np.random.Generator,
               cells: np.ndarray | None = None) -> BatchPlan:
    """The random draws of one train call: a permutation of the ``n`` new rows, then (when the
    buffer holds rows) every batch's replay slots: uniform over the ``n_buffer`` filled ones, or,
    with ``cfg.replay_sampling == "cell"``, stratified by ``cells`` (the filled slots' cell codes):
    one ``integers`` call picks every replayed row's cell uniformly among the cells present (in
    order of code), a second its row uniformly among that cell's slots (in slot order)."""
    order = rng.permutation(n)
    n_replay = int(round(cfg.batch_size * cfg.replay_fraction)) if n_buffer else 0
    n_new = cfg.batch_size - n_replay
    plan = BatchPlan(order, None, n_new, n_replay)
    if n_replay and plan.n_batches:
        shape = (plan.n_batches, n_replay)
        if cfg.replay_sampling == "cell":
            if cells is None or len(cells) != n_buffer:
                raise ConfigError(f"replay_sampling='cell' needs the cell of each of the {n_buffer} filled replay "
                                  f"slots, got {None if cells is None else len(cells)}")
            slots = np.argsort(cells, kind="stable")  # slots grouped by cell code, in slot order within
            _, start, size = np.unique(cells[slots], return_index=True, return_counts=True)
            c = rng.integers(0, len(size), shape)
            plan.replay = slots[start[c] + rng.integers(0, size[c])]
        else:
            plan.replay = rng.integers(0, n_buffer, shape)
    return plan


def member_grad_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """(P,) global gradient norm of each population member, from gradients with a leading
    member dimension: the 2-norm over members' per-parameter 2-norms (what
    ``torch.nn.utils.clip_grad_norm_`` computes, reduced row by row so that a member's norm does
    not depend on how many members there are; the plain student uses it with P = 1)."""
    P = grads[0].shape[0]
    per_param = torch.stack([torch.linalg.vector_norm(g.reshape(P, -1), dim=1) for g in grads], dim=1)
    return torch.linalg.vector_norm(per_param, dim=1)


def compiled(model: nn.Module) -> Any:
    """``model`` through ``torch.compile`` (inductor, shapes dynamic from the start: a step's
    mini-batches vary in rows and length), for ``StudentConfig.compile``. It shares ``model``'s
    parameters, so states and snapshots are the model's own."""
    return torch.compile(model, dynamic=True)


def check_no_pretraining(cfg: StudentConfig, who: str) -> None:
    if cfg.pretrain_examples:
        raise ConfigError(
            f"the {who} student has no base pre-training (StudentConfig.pretrain_examples="
            f"{cfg.pretrain_examples}); use pretrain_examples=0 (the v1/v2 environments draw initial weights "
            "from the episode seed instead)"
        )


# ============================================================================ the student
class PlainStudent:
    """One plain-torch student (see the module docstring and :mod:`distillgym.students.base`
    for the contract)."""

    name = "plain"
    teacher_forced_exact = True
    """:meth:`score` equals greedy decoding plus exact match (tests/test_population.py checks it)."""

    def __init__(self, config: StudentConfig, alphabet: str) -> None:
        config.validate()
        check_no_pretraining(config, "plain")
        self.config = config
        self.tokenizer = CharTokenizer(alphabet, reverse_answers=config.reverse_answers)
        self.device = resolve_device(config.device)
        self.model_config = PlainConfig.from_student(config, self.tokenizer.vocab_size)
        self.model = PlainLM(self.model_config).to(self.device)
        self.model.load_state_dict(init_weights(self.model_config, config.init_seed), strict=True)
        self._train_forward = compiled(self.model) if config.compile else self.model
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.step = 0
        self.optimizer = self._new_optimizer()
        self.replay = ReplayBuffer(config.replay_capacity, config.max_positions, id_dtype(self.tokenizer.vocab_size),
                                   by_cell=config.replay_sampling == "cell")

    @classmethod
    def for_suite(cls, suite: Any, device: str | None = None, config: StudentConfig | None = None,
                  **fields: Any) -> PlainStudent:
        """The registry's factory (``make_student("plain", suite, **StudentConfig fields)``)."""
        return cls(suite_config(suite, device, config, fields), suite.alphabet)

    # ------------------------------------------------------------------ state
    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=self.config.lr, betas=BETAS, eps=ADAM_EPS,
                                 weight_decay=self.config.weight_decay)

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the weights, kept in memory."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore weights; start a fresh optimiser, warm-up and replay buffer."""
        self.model.load_state_dict(state, strict=True)
        self.optimizer = self._new_optimizer()
        self.step = 0
        self.replay.clear()

    def snapshot(self) -> dict[str, Any]:
        """Weights, optimiser state (``torch.optim.AdamW`` format, None before the first step),
        schedule step and replay buffer, copied."""
        return {
            "weights": self.state(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.optimizer.state else None,
            "step": self.step,
            "replay": self.replay.snapshot(),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot` exactly (also one taken from a population member)."""
        self.load_state(snapshot["weights"])
        if snapshot.get("optimizer") is not None:
            self.optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))
        self.step = int(snapshot.get("step", 0))
        self.replay.restore(snapshot.get("replay"))

    def reinit(self, seed: int) -> None:
        """Fresh initial weights drawn from ``seed``, fresh optimiser and replay buffer."""
        self.load_state({k: v.to(self.device) for k, v in init_weights(self.model_config, seed).items()})

    def costs(self) -> dict[str, Any]:
        return {"n_params": self.n_params, "trainable_params": self.n_params,
                "flops_per_token": self.flops_per_token(self.config.max_positions)}

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (:func:`~distillgym.students.char_lm.flops_per_token`)."""
        return flops_per_token(self.n_params, self.config, seq_len)

    # ------------------------------------------------------------------ batching
    def encode(self, examples: Sequence[Example] | ExampleArrays) -> TokenRows:
        return encode(self.tokenizer, examples, max_positions=self.config.max_positions)

    def _tensors(self, ids: np.ndarray, prompt_len: np.ndarray, length: np.ndarray) -> tuple[torch.Tensor, ...]:
        T = int(length.max())
        x = torch.from_numpy(ids[:, :T].astype(np.int64)).to(self.device)
        targets = make_targets(x, torch.from_numpy(prompt_len).to(self.device), torch.from_numpy(length).to(self.device))
        return x, targets

    # ------------------------------------------------------------------ training
    def train(self, examples: Sequence[Example] | ExampleArrays, rng: np.random.Generator | None = None,
              track_cells: bool = True) -> TrainStats:
        """One pass over ``examples`` in mini-batches of ``batch_size`` (see :func:`batch_plan`):
        with replay fraction r and a non-empty buffer, each holds ``round(batch_size * (1 - r))``
        new rows and ``round(batch_size * r)`` replayed ones; the new rows join the buffer
        afterwards. ``track_cells`` (default True, as the tiny student) fills ``TrainStats.cell_loss``:
        each new row's answer loss on the mini-batch it was trained in, before its step, averaged
        per (skill, level).

        Raises :class:`TrainingDivergedError` before the optimiser step if the loss or the
        gradient norm is not finite (that step is never applied; ``applied`` counts the earlier
        steps of this call, which were)."""
        t0 = time.perf_counter()
        stats = TrainStats()
        rows = self.encode(examples)
        if not len(rows):
            return stats
        if rng is None:
            rng = np.random.default_rng(self.step)
        plan = batch_plan(len(rows), len(self.replay), self.config, rng, self.replay.cells())
        self.model.train()
        losses = []
        cell_rows: list[torch.Tensor] = []
        for k in range(plan.n_batches):
            new = plan.new_rows(k)
            ids, plen, length = rows.ids[new], rows.prompt_len[new], rows.length[new]
            if plan.replay is not None:
                r_ids, r_plen, r_len = self.replay.rows(plan.replay[k])
                w = max(ids.shape[1], r_ids.shape[1])
                ids = np.concatenate([np.pad(ids, ((0, 0), (0, w - ids.shape[1]))), r_ids[:, :w]])
                plen, length = np.concatenate([plen, r_plen]), np.concatenate([length, r_len])
            x, targets = self._tensors(ids, plen, length)
            logits = self._train_forward(x)
            loss = member_loss(logits[None], targets[None])[0]
            if not torch.isfinite(loss):
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingDivergedError(self._diverged(f"training loss became {loss.item()}", stats),
                                            stats.optimizer_steps)
            if track_cells:
                cell_rows.append(row_loss(logits[: len(new)], targets[: len(new)]))
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in self.model.parameters()]
            norm = member_grad_norms([g[None] for g in grads])[0]
            if self.config.grad_clip > 0:  # as clip_grad_norm_: g * min(1, max_norm / (norm + 1e-6))
                coef = torch.clamp(self.config.grad_clip / (norm + 1e-6), max=1.0)
                for g in grads:
                    g.mul_(coef)
            if not torch.isfinite(norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingDivergedError(self._diverged(f"gradient norm became {norm.item()}", stats),
                                            stats.optimizer_steps)
            for g in self.optimizer.param_groups:
                g["lr"] = lr_at(self.config, self.step)
            self.optimizer.step()
            self.step += 1
            losses.append(loss.item())
            stats.tokens += int(length.sum())
            stats.optimizer_steps += 1
        if self.config.replay_fraction > 0:
            self.replay.add(rows)
        stats.examples = len(rows)
        stats.loss = float(np.mean(losses))
        stats.flops = stats.tokens * self.flops_per_token()
        if track_cells:
            stats.cell_loss = cell_means(rows, plan.order, torch.cat(cell_rows).cpu().numpy())
        stats.seconds = time.perf_counter() - t0
        return stats

    def _diverged(self, what: str, stats: TrainStats) -> str:
        return diverged_message(what, self.step, stats.optimizer_steps)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def score_and_loss(self, examples: Sequence[Example] | ExampleArrays) -> tuple[np.ndarray, np.ndarray]:
        """Exact match (teacher-forced: every answer and eos position's argmax is the gold token,
        which is exactly when greedy decoding gives the gold answer and stops) and the answer
        loss (mean token cross-entropy of the gold answer and eos), one pass per chunk."""
        self.model.eval()
        rows = self.encode(examples)
        out = np.zeros(len(rows), dtype=bool)
        loss = np.zeros(len(rows), dtype=np.float64)
        for i in range(0, len(rows), self.config.eval_batch_size):
            s = slice(i, i + self.config.eval_batch_size)
            x, targets = self._tensors(rows.ids[s], rows.prompt_len[s], rows.length[s])
            logits = self.model(x)
            scored = targets != -100
            out[s] = ((logits.argmax(-1) == targets) | ~scored).all(dim=1).cpu().numpy()
            loss[s] = row_loss(logits, targets).cpu().numpy()
        return out, loss

    def score(self, examples: Sequence[Example] | ExampleArrays) -> np.ndarray:
        """Exact match of each example (see :meth:`score_and_loss`)."""
        return self.score_and_loss(examples)[0]

    def answer_loss(self, examples: Sequence[Example] | ExampleArrays) -> np.ndarray:
        """Per example, the mean token cross-entropy of the gold answer and eos."""
        return self.score_and_loss(examples)[1]

    def predict(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Greedy decoding (:func:`distillgym.students.char_lm.greedy_decode`, as the tiny student)."""
        return greedy_decode(self.model, self.tokenizer, prompts, max_new_tokens, self.config.max_positions,
                             self.device, self.model)



