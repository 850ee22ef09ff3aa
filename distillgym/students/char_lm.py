"""What the three character-level students share: their configuration, schedule, FLOP count and decoding.

The tiny student (:mod:`~distillgym.students.hf_student`, a Hugging Face Llama), the plain student
(:mod:`~distillgym.students.torch_student`, the same architecture in plain torch) and the population
(:mod:`~distillgym.students.population`, P plain students in one batched model) are one model family
over characters (:class:`~distillgym.students.tokenizer.CharTokenizer`): one :class:`StudentConfig`,
one learning-rate schedule (:func:`lr_at`), one FLOP estimate (:func:`flops_per_token`) and one greedy
decoder for the single students (:func:`greedy_decode`). Their training loops stay apart: the tiny
student draws each mini-batch's replay rows as it goes and clips with ``clip_grad_norm_``, the plain
student draws every batch's rows first and clips by the member-wise norm the population needs (equal
in exact arithmetic, not in floats), and the population steps P members at once; one shared loop
would change the recorded trajectories of every id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from distillgym.errors import ConfigError
from distillgym.runtime import resolve_device
from distillgym.students.tokenizer import EOS, CharTokenizer

__all__ = ["StudentConfig", "OPTIONAL_FIELDS", "REPLAY_SAMPLING", "suite_config", "lr_at", "flops_per_token", "greedy_decode"]


REPLAY_SAMPLING = ("uniform", "cell")
"""The values of :attr:`StudentConfig.replay_sampling`."""


@dataclass
class StudentConfig:
    """Student architecture and optimiser. Every field is validated by :meth:`validate`."""

    hidden_size: int = 64
    """Model width."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 4
    """Attention heads (hidden_size must divide by it)."""
    intermediate_size: int = 128
    """MLP width."""
    max_positions: int = 32
    """Longest sequence (bos + prompt + answer + eos)."""
    lr: float = 6e-3
    """AdamW peak learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup_steps: int = 50
    """Linear warm-up, in optimiser steps, counted from reset."""
    lr_decay_steps: int = 0
    """0 (the default): the learning rate stays at ``lr`` after warm-up. Else it falls from ``lr`` at
    the end of warm-up to ``lr * lr_final`` at optimiser step ``lr_decay_steps`` (counted from reset,
    warm-up included) along a half cosine, and stays there (:func:`lr_at`)."""
    lr_final: float = 0.0
    """The decayed learning rate as a fraction of ``lr`` (only with ``lr_decay_steps``)."""
    lr_decay_start: int = 0
    """Optimiser step at which the decay begins (only with ``lr_decay_steps``): the learning rate stays
    at ``lr`` until ``max(warmup_steps, lr_decay_start)``, then falls along the half cosine to
    ``lr * lr_final`` at ``lr_decay_steps`` (a warm-up, stable, decay schedule). 0, the default: the
    decay begins where warm-up ends."""
    batch_size: int = 128
    """Examples per optimiser step."""
    grad_clip: float = 1.0
    """Max global gradient norm (0 disables clipping)."""
    reverse_answers: bool = True
    """Write numeric answers least-significant digit first."""
    replay_fraction: float = 0.75
    """Share of each mini-batch drawn from earlier examples of this episode (experience
    replay of data the teacher already chose); 0 trains on the new examples only."""
    replay_capacity: int = 65536
    """Most recent examples kept for replay."""
    replay_sampling: str = "uniform"
    """How a mini-batch's replayed rows are drawn from the buffer (the plain and population students):
    ``"uniform"`` (the default) uniformly over its filled slots, so a cell's share of the replayed
    rows is its share of the buffer's rows; ``"cell"`` stratified by (skill, level) cell: each
    replayed row picks one of the cells the buffer holds uniformly, then one of that cell's rows
    uniformly, so every cell in the buffer keeps an equal share of the replayed rows however many
    rows of it the teacher gave (:func:`~distillgym.students.torch_student.batch_plan`)."""
    init_seed: int = 0
    """Seed of the initial weights (the same student starts every episode)."""
    init_std: float = 0.02
    """Standard deviation of the initial weight matrices and embedding (the plain student's and
    the population's ``PlainConfig.init_std``, the tiny student's ``initializer_range``)."""
    pretrain_examples: int = 0
    """Examples of base pre-training (uniform over skills, difficulties <= pretrain_max_difficulty)."""
    pretrain_max_difficulty: int = 0
    """Highest difficulty level seen in base pre-training."""
    device: str = "auto"
    """'auto' (cuda if available), 'cpu' or 'cuda'."""
    eval_batch_size: int = 1024
    """Examples per forward pass when scoring."""
    compile: bool = False
    """Train through ``torch.compile`` (inductor; the plain and population students): the same
    model and updates in fused kernels, so the numbers differ from eager ones at float rounding and
    a population member no longer equals the single env's student bit for bit. The first mini-batch
    of each new shape compiles (tens of seconds on a CPU); on a 2-core Intel Xeon a training step was
    1.3x to 1.6x faster after that (``benchmarks/vector.py --parts compile``). Scoring stays eager."""

    def validate(self) -> None:
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_positions",
                     "batch_size", "eval_batch_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"StudentConfig.{name} must be a positive integer, got {v!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"StudentConfig.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        for name in ("lr", "weight_decay", "grad_clip", "init_std"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"StudentConfig.{name} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.replay_fraction, (int, float)) or not 0 <= self.replay_fraction < 1:
            raise ConfigError(f"StudentConfig.replay_fraction must be in [0, 1), got {self.replay_fraction!r}")
        if isinstance(self.batch_size, int) and self.batch_size - int(round(self.batch_size * self.replay_fraction)) < 1:
            raise ConfigError(
                f"StudentConfig.replay_fraction={self.replay_fraction!r} with batch_size={self.batch_size} leaves no new "
                f"example in a mini-batch (round({self.batch_size} * {self.replay_fraction}) replayed rows); lower "
                "replay_fraction or raise batch_size"
            )
        if not isinstance(self.replay_capacity, int) or self.replay_capacity < 0:
            raise ConfigError(f"StudentConfig.replay_capacity must be an integer >= 0, got {self.replay_capacity!r}")
        if self.replay_sampling not in REPLAY_SAMPLING:
            raise ConfigError(f"StudentConfig.replay_sampling must be one of {list(REPLAY_SAMPLING)}, got "
                              f"{self.replay_sampling!r}")
        if self.lr == 0:
            raise ConfigError("StudentConfig.lr must be > 0")
        if not isinstance(self.lr_final, (int, float)) or not 0 <= self.lr_final <= 1:
            raise ConfigError(f"StudentConfig.lr_final must be in [0, 1], got {self.lr_final!r}")
        for name in ("warmup_steps", "lr_decay_steps", "lr_decay_start", "pretrain_examples", "pretrain_max_difficulty"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"StudentConfig.{name} must be an integer >= 0, got {v!r}")
        if self.lr_decay_start and self.lr_decay_steps <= self.lr_decay_start:
            raise ConfigError(
                f"StudentConfig.lr_decay_start={self.lr_decay_start} needs lr_decay_steps (the step where the decay "
                f"ends) above it, got lr_decay_steps={self.lr_decay_steps}"
            )
        if not isinstance(self.compile, bool):
            raise ConfigError(f"StudentConfig.compile must be True or False, got {self.compile!r}")
        resolve_device(self.device)

    def record(self) -> dict[str, Any]:
        """The fields as a dict, without a field added later (:data:`OPTIONAL_FIELDS`) at its
        default: the resolved configuration (and config hash) of an env that does not use it stays
        what it was before the field existed."""
        d = dataclasses.asdict(self)
        for name, default in OPTIONAL_FIELDS.items():
            if d[name] == default:
                d.pop(name)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> StudentConfig:
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown StudentConfig field(s) {unknown}; valid fields are {sorted(known)}")
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def key(self, extra: str = "") -> str:
        d = self.record()
        d.pop("device")
        d.pop("eval_batch_size")
        blob = json.dumps(d, sort_keys=True) + extra
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


OPTIONAL_FIELDS: dict[str, Any] = {"compile": False, "lr_decay_steps": 0, "lr_final": 0.0, "init_std": 0.02,
                                   "replay_sampling": "uniform", "lr_decay_start": 0}
"""Fields added after results and keys were first recorded, with their defaults
(:meth:`StudentConfig.record` leaves each out at its default)."""


def suite_config(suite: Any, device: str | None, config: StudentConfig | None, fields: dict[str, Any]) -> StudentConfig:
    """A validated StudentConfig for ``suite`` from ``config`` or fields (the tiny and plain students' factories)."""
    if config is not None and fields:
        raise ConfigError("pass either config=StudentConfig(...) or StudentConfig fields, not both")
    cfg = dataclasses.replace(config) if config is not None else StudentConfig.from_dict(fields)
    if device is not None:
        cfg.device = device
    cfg.validate()
    need = 2 + suite.max_prompt_len + suite.max_answer_len
    if need > cfg.max_positions:
        raise ConfigError(
            f"suite {suite.name!r} needs up to {need} positions (bos + prompt + answer + eos) but "
            f"StudentConfig.max_positions is {cfg.max_positions}; raise max_positions"
        )
    return cfg


def lr_at(cfg: StudentConfig, step: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based, counted from reset): linear warm-up over
    ``warmup_steps`` to ``lr``, then constant, or, with ``lr_decay_steps`` > ``start`` =
    ``max(warmup_steps, lr_decay_start)``, constant until ``start``, then a half cosine from ``lr``
    down to ``lr * lr_final`` at step ``lr_decay_steps`` and constant after."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    start = max(cfg.warmup_steps, cfg.lr_decay_start)
    if cfg.lr_decay_steps > start:
        if step < start:  # (never when lr_decay_start <= warmup_steps: the formula as before the field)
            return cfg.lr
        frac = min(1.0, (step - start) / (cfg.lr_decay_steps - start))
        return cfg.lr * (cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * frac)))
    return cfg.lr


def flops_per_token(n_params: int, cfg: StudentConfig, seq_len: int | None = None) -> float:
    """Training FLOPs per token (forward and backward), nanoGPT's estimate_mfu: 6 N + 12 L H T,
    T = ``seq_len`` or ``max_positions``."""
    return 6 * n_params + 12 * cfg.num_layers * cfg.hidden_size * (seq_len or cfg.max_positions)


@torch.no_grad()
def greedy_decode(logits_of: Any, tokenizer: CharTokenizer, prompts: Sequence[str], max_new_tokens: int,
                  max_positions: int, device: Any, model: Any) -> list[str]:
    """Greedy decoding for the character students (tiny and plain). Prompts of equal length are
    decoded together (no padding), and each step runs the whole sequence again, so no cache or
    padding can change a logit. ``logits_of(ids)`` gives the (batch, positions, vocab) logits."""
    model.eval()
    results: list[str] = [""] * len(prompts)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for idx in by_len.values():
        ids = torch.tensor([tokenizer.encode_prompt(prompts[i]) for i in idx], device=device)
        start = ids.shape[1]
        done = torch.zeros(len(idx), dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            if ids.shape[1] >= max_positions:
                break
            nxt = logits_of(ids)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == EOS
            if bool(done.all()):
                break
        for row, i in enumerate(idx):
            results[i] = tokenizer.decode_answer(ids[row, start:].tolist())
    return results
