"""The tiny student (``student="tiny"``): a small Llama-config causal transformer over characters, built
with Hugging Face transformers (the shared configuration is :mod:`distillgym.students.char_lm`).

No weights are downloaded: the model is built from a ``LlamaConfig`` and, optionally,
pre-trained once on a little data so that an episode fine-tunes a weak student (as in
distillation). That base is cached on disk, keyed by a hash of the config and the suite.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distillgym.errors import ConfigError, TrainingDivergedError
from distillgym.runtime import cache_dir, resolve_device
from distillgym.students.base import TrainStats, diverged_message
from distillgym.students.char_lm import StudentConfig, flops_per_token, greedy_decode, lr_at, suite_config
from distillgym.students.tokenizer import BOS, EOS, PAD, CharTokenizer
from distillgym.types import Example

__all__ = ["TinyStudent"]


class TinyStudent:
    """A Llama-architecture causal LM over characters, trained with AdamW (see
    :mod:`distillgym.students.base` for the contract it implements)."""

    name = "tiny"
    teacher_forced_exact = True
    """:meth:`score` equals greedy decoding plus exact match (tests/test_student.py checks it)."""

    def __init__(self, config: StudentConfig, alphabet: str) -> None:
        from transformers.utils import logging as hf_logging

        config.validate()
        if config.compile:
            raise ConfigError("StudentConfig.compile is supported by the 'plain' and population students, not by the "
                              "tiny (transformers) student; use student='plain' or leave compile False")
        if config.replay_sampling != "uniform":
            raise ConfigError(f"StudentConfig.replay_sampling={config.replay_sampling!r} is supported by the 'plain' and "
                              "population students, not by the tiny (transformers) student; use student='plain' or "
                              "leave replay_sampling 'uniform'")
        hf_logging.set_verbosity_error()
        self.config = config
        self.tokenizer = CharTokenizer(alphabet, reverse_answers=config.reverse_answers)
        self.device = resolve_device(config.device)
        self.model = self._build(config.init_seed)
        self.model.to(self.device)
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.step = 0
        self.optimizer = self._new_optimizer()
        self.replay: list[Example] = []

    @classmethod
    def for_suite(cls, suite: Any, device: str | None = None, config: StudentConfig | None = None,
                  **fields: Any) -> TinyStudent:
        """The registry's factory (``make_student("tiny", suite, **StudentConfig fields)``)."""
        return cls(suite_config(suite, device, config, fields), suite.alphabet)

    def _build(self, seed: int) -> torch.nn.Module:
        from transformers import LlamaConfig, LlamaForCausalLM

        c = self.config
        hf_config = LlamaConfig(
            vocab_size=self.tokenizer.vocab_size,
            hidden_size=c.hidden_size,
            intermediate_size=c.intermediate_size,
            num_hidden_layers=c.num_layers,
            num_attention_heads=c.num_heads,
            num_key_value_heads=c.num_heads,
            max_position_embeddings=c.max_positions,
            pad_token_id=PAD,
            bos_token_id=BOS,
            eos_token_id=EOS,
            tie_word_embeddings=True,
            initializer_range=c.init_std,
            attn_implementation="sdpa",
        )
        with torch.random.fork_rng(devices=[]):  # initial weights from the seed only
            torch.manual_seed(int(seed))
            return LlamaForCausalLM(hf_config)

    # ------------------------------------------------------------------ state
    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.model.parameters(), lr=self.config.lr, betas=(0.9, 0.98), weight_decay=self.config.weight_decay
        )

    def state(self) -> dict[str, torch.Tensor]:
        """A copy of the weights, kept in memory."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore weights; start a fresh optimiser, warm-up and replay buffer."""
        self.model.load_state_dict(state)
        self.optimizer = self._new_optimizer()
        self.step = 0
        self.replay = []

    def snapshot(self) -> dict[str, Any]:
        """Weights, optimiser state, schedule step and replay buffer, copied."""
        import copy

        return {
            "weights": self.state(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.optimizer.state else None,
            "step": self.step,
            "replay": list(self.replay),
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot` exactly (a snapshot without optimiser state gives a fresh
        optimiser, as at reset)."""
        import copy

        self.load_state(snapshot["weights"])
        if snapshot.get("optimizer") is not None:
            self.optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))
        self.step = int(snapshot.get("step", 0))
        self.replay = list(snapshot.get("replay", []))

    def reinit(self, seed: int) -> None:
        """Fresh initial weights drawn from ``seed``, fresh optimiser and replay buffer."""
        self.load_state({k: v.to(self.device) for k, v in self._build(seed).state_dict().items()})

    # ------------------------------------------------------------------ base pre-training
    @property
    def fixed_base(self) -> bool:
        """True when episodes start from a pre-trained base (``pretrain_examples > 0``)."""
        return self.config.pretrain_examples > 0

    def base_key(self, suite_name: str) -> str:
        """Cache key of the pre-trained base: the config (device included), the suite, and the
        torch and transformers versions, since all of them change the trained weights."""
        import transformers

        extra = json.dumps(
            {"suite": suite_name, "device": self.device.type, "torch": torch.__version__,
             "transformers": transformers.__version__},
            sort_keys=True,
        )
        d = self.config.record()  # without later fields at their defaults: older bases keep their key
        d.pop("eval_batch_size")
        return hashlib.sha256((json.dumps(d, sort_keys=True) + extra).encode()).hexdigest()[:16]

    def prepare(self, suite: Any, engine: Any) -> None:
        """Pre-train the base once (``pretrain_examples`` uniform over skills and levels up to
        ``pretrain_max_difficulty``, from ``engine``), cached on disk under :meth:`base_key`;
        the student then holds the base weights with a fresh optimiser. Nothing to do without
        pre-training. The cache file is written under a unique temporary name and renamed, and a
        file that cannot be read is rebuilt, never trusted."""
        import uuid

        from distillgym.seeding import STREAM_PRETRAIN, rng_for
        from distillgym.types import PlanItem

        cfg = self.config
        if cfg.pretrain_examples == 0:
            return
        path = cache_dir() / f"base-{suite.name}-{self.base_key(suite.name)}.pt"
        if path.exists():
            try:
                state = torch.load(path, map_location=self.device, weights_only=True)
                self.load_state(state)
                return
            except Exception:  # a corrupt cache file is rebuilt, never trusted
                path.unlink(missing_ok=True)
        D = min(cfg.pretrain_max_difficulty, suite.n_difficulties - 1)
        cells = [(s, d) for s in suite.skills for d in range(D + 1)]
        rng = rng_for(cfg.init_seed, STREAM_PRETRAIN)
        plan = [PlanItem(s, d, cfg.pretrain_examples // len(cells)) for s, d in cells]
        examples, _ = engine.generate(plan, rng, split="train" if suite.partition is not None else None)
        self.train(examples, rng)
        state = self.state()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}")
        torch.save({k: v.cpu() for k, v in state.items()}, tmp)
        tmp.replace(path)
        self.load_state(state)

    def costs(self) -> dict[str, Any]:
        return {
            "n_params": self.n_params,
            "trainable_params": self.n_params,
            "flops_per_token": self.flops_per_token(self.config.max_positions),
        }

    # ------------------------------------------------------------------ batching
    def _collate(self, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ``input_ids`` (B, T), ``mask`` (B, T) of real tokens and ``targets``
        (B, T): targets[b, t] is the token to predict after position t, or -100 where not
        scored (prompt and padding).

        No attention mask is passed to the model: padding is on the right and attention is
        causal, so no real token ever attends to a pad, and the logits at real positions
        are those of the unpadded sequence."""
        tok = self.tokenizer
        seqs, starts = [], []
        for ex in examples:
            p = tok.encode_prompt(ex.prompt)
            a = tok.encode_answer(ex.answer)
            seqs.append(p + a)
            starts.append(len(p))
        T = max(len(s) for s in seqs)
        if T > self.config.max_positions:
            raise ConfigError(
                f"an example needs {T} positions but StudentConfig.max_positions is {self.config.max_positions}"
            )
        # Filled in numpy and converted once (a torch.tensor per row made collation ~10x slower).
        B = len(seqs)
        ids = np.full((B, T), PAD, dtype=np.int64)
        targets = np.full((B, T), -100, dtype=np.int64)
        for b, (s, st) in enumerate(zip(seqs, starts, strict=True)):
            ids[b, : len(s)] = s
            # position t predicts token t+1; score the answer and EOS tokens only
            targets[b, st - 1 : len(s) - 1] = s[st:]
        lengths = np.array([len(s) for s in seqs])
        mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)
        return tuple(torch.from_numpy(a).to(self.device) for a in (ids, mask, targets))  # type: ignore[return-value]

    @staticmethod
    def _row_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(B,) mean cross-entropy over each row's scored tokens."""
        tok = F.cross_entropy(
            logits.detach().flatten(0, 1).float(), targets.flatten(), ignore_index=-100, reduction="none"
        ).view(targets.shape)
        scored = (targets != -100).sum(1).clamp(min=1)
        return tok.sum(1) / scored

    # ------------------------------------------------------------------ training
    def _lr_at(self, step: int) -> float:
        return lr_at(self.config, step)

    def train(self, examples: Sequence[Example], rng: np.random.Generator | None = None,
              track_cells: bool = True) -> TrainStats:
        """One pass over ``examples`` (shuffled with ``rng`` if given) in mini-batches.

        With ``replay_fraction`` r > 0 and earlier examples in the buffer, each mini-batch
        holds ``round(batch_size * (1 - r))`` new examples and fills the rest with examples
        drawn uniformly (with ``rng``) from the replay buffer of this episode's earlier
        training data; the new examples join the buffer afterwards. ``track_cells`` fills
        ``TrainStats.cell_loss`` (an extra cross-entropy on the detached logits; the update
        itself is unchanged).

        Raises :class:`TrainingDivergedError` before the optimiser step if the loss or the
        gradient norm is not finite, so the step that met it is never applied; its
        ``applied`` attribute counts the earlier optimiser steps of this call, which were."""
        t0 = time.perf_counter()
        stats = TrainStats()
        if not examples:
            return stats
        if rng is None:
            rng = np.random.default_rng(self.step)
        order = rng.permutation(len(examples))
        self.model.train()
        bs = self.config.batch_size
        n_replay = int(round(bs * self.config.replay_fraction)) if self.replay else 0
        n_new = bs - n_replay
        losses = []
        cell_sum: dict[tuple[str, int], float] = {}
        cell_n: dict[tuple[str, int], int] = {}
        for i in range(0, len(examples), n_new):
            new = [examples[j] for j in order[i : i + n_new]]
            batch = list(new)
            if n_replay:
                batch += [self.replay[j] for j in rng.integers(0, len(self.replay), n_replay)]
            ids, mask, targets = self._collate(batch)
            logits = self.model(input_ids=ids).logits
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
            if not torch.isfinite(loss):
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingDivergedError(self._diverged(f"training loss became {loss.item()}", stats),
                                            stats.optimizer_steps)
            if track_cells:
                rows = self._row_loss(logits[: len(new)], targets[: len(new)]).tolist()
                for ex, r in zip(new, rows, strict=True):
                    key = (ex.skill, ex.difficulty)
                    cell_sum[key] = cell_sum.get(key, 0.0) + r
                    cell_n[key] = cell_n.get(key, 0) + 1
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip > 0:
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            else:
                norm = torch.linalg.vector_norm(
                    torch.stack([p.grad.norm() for p in self.model.parameters() if p.grad is not None])
                )
            if not torch.isfinite(norm):
                self.optimizer.zero_grad(set_to_none=True)
                raise TrainingDivergedError(self._diverged(f"gradient norm became {norm.item()}", stats),
                                            stats.optimizer_steps)
            for g in self.optimizer.param_groups:
                g["lr"] = self._lr_at(self.step)
            self.optimizer.step()
            self.step += 1
            losses.append(loss.item())
            stats.tokens += int(mask.sum().item())
            stats.optimizer_steps += 1
        if self.config.replay_fraction > 0 and self.config.replay_capacity > 0:
            self.replay.extend(examples)
            del self.replay[: max(0, len(self.replay) - self.config.replay_capacity)]
        stats.examples = len(examples)
        stats.loss = float(np.mean(losses))
        stats.flops = stats.tokens * self.flops_per_token(self.config.max_positions)
        stats.cell_loss = {k: cell_sum[k] / cell_n[k] for k in cell_sum}
        stats.seconds = time.perf_counter() - t0
        return stats

    def _diverged(self, what: str, stats: TrainStats) -> str:
        return diverged_message(what, self.step, stats.optimizer_steps)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def score_and_loss(self, examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray]:
        """Exact match (as :meth:`score`) and answer loss (as :meth:`answer_loss`) from one
        teacher-forced pass per chunk."""
        self.model.eval()
        out = np.zeros(len(examples), dtype=bool)
        loss = np.zeros(len(examples), dtype=np.float64)
        for i in range(0, len(examples), self.config.eval_batch_size):
            batch = examples[i : i + self.config.eval_batch_size]
            ids, mask, targets = self._collate(batch)
            logits = self.model(input_ids=ids).logits
            pred = logits.argmax(-1)
            scored = targets != -100
            out[i : i + len(batch)] = ((pred == targets) | ~scored).all(dim=1).cpu().numpy()
            loss[i : i + len(batch)] = self._row_loss(logits, targets).cpu().numpy()
        return out, loss

    @torch.no_grad()
    def score(self, examples: Sequence[Example]) -> np.ndarray:
        """Exact match of each example, from one teacher-forced forward pass per chunk.

        An example counts as correct iff the argmax at every answer position (and at the
        EOS position) is the gold token, which is exactly when greedy decoding would
        produce the gold answer and stop."""
        self.model.eval()
        out = np.zeros(len(examples), dtype=bool)
        for i in range(0, len(examples), self.config.eval_batch_size):
            batch = examples[i : i + self.config.eval_batch_size]
            ids, mask, targets = self._collate(batch)
            pred = self.model(input_ids=ids).logits.argmax(-1)
            scored = targets != -100
            ok = ((pred == targets) | ~scored).all(dim=1)
            out[i : i + len(batch)] = ok.cpu().numpy()
        return out

    def answer_loss(self, examples: Sequence[Example]) -> np.ndarray:
        """Per example, the mean token cross-entropy of the gold answer and EOS."""
        return self.score_and_loss(examples)[1]

    def predict(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Greedy decoding (:func:`greedy_decode`)."""
        return greedy_decode(lambda ids: self.model(input_ids=ids).logits, self.tokenizer, prompts,
                             max_new_tokens, self.config.max_positions, self.device, self.model)

    # ------------------------------------------------------------------ accounting
    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (:func:`~distillgym.students.char_lm.flops_per_token`)."""
        return flops_per_token(self.n_params, self.config, seq_len)
