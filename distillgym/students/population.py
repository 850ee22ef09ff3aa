"""A population of P plain students in one batched model.

Every parameter of :class:`~distillgym.students.torch_student.PlainLM` gets a leading population
dimension (:class:`PopulationLM`): member p's weights are ``param[p]``, and every matrix
product of the forward pass is one batched product over the P members (``torch.bmm``), so a
mini-batch step trains all P students with one pass of kernels instead of P. Members share
nothing but the kernels: each has its own weights, AdamW state (implemented here on the
stacked tensors, the same update as ``torch.optim.AdamW``), per-member gradient clipping (the
norm is taken over that member's gradients only), learning-rate schedule, replay buffer, data
and random stream.

:class:`PopulationStudent` is the population interface: ``train`` takes one example list and
one random generator per member and returns one :class:`TrainStats` per member;
``score_and_loss`` / ``score`` / ``answer_loss`` / ``predict`` take one list per member;
``snapshot(i)`` / ``restore(i, snapshot)`` / ``reinit(i, seed)`` act on one member. A member's
snapshot has exactly the format of :meth:`PlainStudent.snapshot
<distillgym.students.torch_student.PlainStudent.snapshot>`, so state moves between a population
member and a single plain student both ways (:meth:`PopulationStudent.member`).

**Equivalence.** Member p trained in the population equals a :class:`PlainStudent` trained
alone on the same data with the same generator, bit for bit on a CPU. A pass holds, for each
member, exactly the plain student's mini-batch (its new rows, then its replayed rows); the members
of a training pass are grouped by their own padded row length *and* their number of rows
(:meth:`PopulationStudent._groups`), so each member's tensors have exactly the plain student's shapes
and a batched product over the members of one group equals the plain student's product. (Rows
matter: a weight gradient sums over the batch's rows, and trailing all-zero rows, which change no
number in exact arithmetic, change MKL's float32 summation on an Intel Xeon with AVX-512; on AMD
EPYC they did not. Grouping by length only drifted at rounding there, issue 19.) Evaluation chunks
and greedy decoding group by length only: a forward pass's rows are independent, and trailing rows
change no number there. On a GPU batched and single kernels may still round differently.
tests/test_population.py checks it (``== 0``, with ``member_chunk`` None, 1 and 2, and with two
torch threads).

**Threads.** With more than one torch thread on a CPU, the members of each training pass and
scoring chunk are split across that many Python threads, each running its members' products with
one torch thread (:meth:`PopulationStudent._pass_workers`): attention's CPU kernel does not use a
second thread at these shapes, members in threads of their own do. A member's numbers are then those
of one torch thread (its products never mix with another member's), which the tests compare with
plain students on one thread. ``split_passes = False`` turns it off.

**Lockstep.** All members step together: mini-batch k of every member runs in pass k. A member
with fewer mini-batches (fewer examples, or a first call with an empty replay buffer) sits
out the remaining passes: its rows are padding that scores nothing, and its weights and
optimiser state are left exactly as they are (masked updates). A member whose loss or
gradient norm is not finite stops at that step (never applied) for the rest of the call while
the others go on; ``train`` then raises :class:`PopulationDivergedError` naming the members,
after the others' training and replay are complete.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distillgym.errors import ConfigError, TrainingDivergedError
from distillgym.runtime import resolve_device
from distillgym.students.base import TrainStats, diverged_message
from distillgym.students.char_lm import StudentConfig, flops_per_token, lr_at, suite_config
from distillgym.students.tokenizer import BOS, EOS, PAD, CharTokenizer
from distillgym.students.torch_student import (
    ADAM_EPS,
    BETAS,
    CellCodes,
    PlainConfig,
    PlainStudent,
    TokenRows,
    apply_rotary,
    batch_plan,
    cell_means,
    check_no_pretraining,
    compiled,
    encode,
    id_dtype,
    init_weights,
    make_targets,
    member_grad_norms,
    member_loss,
    param_shapes,
    restore_cells,
    rotary_tables,
    row_loss,
)
from distillgym.tasks.arrays import ExampleArrays
from distillgym.types import Example

__all__ = ["PopulationLM", "PopulationStudent", "PopulationDivergedError", "memory_per_member"]


class PopulationDivergedError(TrainingDivergedError):
    """Some members' training diverged in a population ``train`` call. ``errors`` maps a member
    index to its :class:`TrainingDivergedError` (whose ``applied`` counts that member's applied
    steps); ``stats`` holds every member's :class:`TrainStats` (the diverged members' cover the
    steps applied before the failure)."""

    def __init__(self, errors: dict[int, TrainingDivergedError], stats: list[TrainStats]) -> None:
        detail = "; ".join(f"member {i}: {e}" for i, e in sorted(errors.items()))
        super().__init__(f"training diverged for {len(errors)} population member(s): {detail}",
                         min((e.applied for e in errors.values()), default=0))
        self.errors = errors
        self.stats = stats


# ============================================================================ memory
def memory_per_member(config: StudentConfig, vocab_size: int, replay_rows: int, step_rows: int,
                      eval_rows: int) -> dict[str, int]:
    """Estimated bytes one member needs on the population's device: ``"persistent"`` (weights,
    gradients, AdamW moments and gathered copies, five float32 copies of the parameters; its
    replay rows, twice over for a buffer's growth; a step's new rows; its evaluation rows) and
    ``"pass"`` (the activations one batched pass keeps per member: an optimiser pass's for the
    backward, or an evaluation chunk's, whichever is larger, at ``max_positions``). An estimate
    made before anything is allocated, so that a population that cannot fit is refused with a
    clear message rather than an out-of-memory error midway."""
    cfg = PlainConfig.from_student(config, vocab_size)
    n_params = sum(int(np.prod(s)) for s in param_shapes(cfg).values())
    W, H, F_, L, V = cfg.max_positions, cfg.hidden_size, cfg.intermediate_size, cfg.num_layers, cfg.vocab_size
    row = W * np.dtype(id_dtype(vocab_size)).itemsize + 2 * 8 + 8  # ids, prompt and row lengths (+ host copy)
    rows = 2 * min(config.replay_capacity, replay_rows) + step_rows + eval_rows
    persistent = 5 * 4 * n_params + rows * row
    train_pass = config.batch_size * W * (L * (12 * H + 4 * F_) + 4 * V) * 4  # saved for the backward
    eval_pass = min(config.eval_batch_size, max(eval_rows, 1)) * W * (4 * H + 2 * F_ + 2 * V) * 4
    return {"persistent": int(persistent), "pass": int(max(train_pass, eval_pass))}


# ============================================================================ the batched model
def _linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Member-wise ``x @ w.T``: x (P, ..., in), w (P, out, in) -> (P, ..., out), one batched product."""
    P = x.shape[0]
    y = torch.bmm(x.reshape(P, -1, x.shape[-1]), w.transpose(1, 2))
    return y.view(*x.shape[:-1], w.shape[1])


def _rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm of x (P, B, T, H) with member weights w (P, H)."""
    return w[:, None, None, :] * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


class PopulationLM(nn.Module):
    """P :class:`~distillgym.students.torch_student.PlainLM` models as stacked parameters:
    ``forward(ids (P, B, T)) -> logits (P, B, T, vocab)``. Parameter ``names[j]`` of member p is
    ``params[j][p]`` (names and order of :func:`~distillgym.students.torch_student.param_shapes`)."""

    def __init__(self, cfg: PlainConfig, size: int) -> None:
        super().__init__()
        self.cfg, self.size = cfg, int(size)
        shapes = param_shapes(cfg)
        self.names = list(shapes)
        self.params = nn.ParameterList([nn.Parameter(torch.zeros(self.size, *s)) for s in shapes.values()])
        self.index = {n: j for j, n in enumerate(self.names)}
        cos, sin = rotary_tables(cfg)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def weight(self, name: str) -> torch.Tensor:
        return self.params[self.index[name]]

    def set_member(self, p: int, weights: dict[str, torch.Tensor]) -> None:
        """Member p's weights from a plain-model state dict."""
        missing = set(self.names) - set(weights)
        if missing:
            raise ConfigError(f"member weights lack {sorted(missing)}")
        with torch.no_grad():
            for j, name in enumerate(self.names):
                self.params[j][p].copy_(weights[name])

    def member(self, p: int) -> dict[str, torch.Tensor]:
        """Member p's weights as a plain-model state dict (copies)."""
        return {name: self.params[j][p].detach().clone() for j, name in enumerate(self.names)}

    def forward(self, ids: torch.Tensor, weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of ``ids`` (G, B, T): every member's own weights (G = P), or ``weights``, the
        parameters of G members gathered along the member dimension (names' order)."""
        cfg = self.cfg
        P, B, T = ids.shape
        params = list(self.params) if weights is None else list(weights)

        def weight(name: str) -> torch.Tensor:
            return params[self.index[name]]

        nh, hd, H, V = cfg.num_heads, cfg.head_dim, cfg.hidden_size, cfg.vocab_size
        emb = weight("embed.weight")  # (P, V, H)
        offset = (torch.arange(P, device=ids.device) * V).view(P, 1, 1)
        x = F.embedding(ids + offset, emb.reshape(P * V, H))  # (P, B, T, H)
        cos, sin = self.cos[:T], self.sin[:T]
        for i in range(cfg.num_layers):
            b = f"blocks.{i}."
            h = _rms_norm(x, weight(b + "attn_norm.weight"), cfg.rms_eps)

            def heads(w: torch.Tensor, h: torch.Tensor = h) -> torch.Tensor:  # (P*B, nh, T, hd)
                return _linear(h, w).view(P, B, T, nh, hd).permute(0, 1, 3, 2, 4).reshape(P * B, nh, T, hd)

            q = apply_rotary(heads(weight(b + "attn.q.weight")), cos, sin)
            k = apply_rotary(heads(weight(b + "attn.k.weight")), cos, sin)
            v = heads(weight(b + "attn.v.weight"))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (P*B, nh, T, hd)
            y = y.view(P, B, nh, T, hd).permute(0, 1, 3, 2, 4).reshape(P, B, T, H)
            x = x + _linear(y, weight(b + "attn.o.weight"))
            h = _rms_norm(x, weight(b + "mlp_norm.weight"), cfg.rms_eps)
            gate = _linear(h, weight(b + "mlp.gate.weight"))
            up = _linear(h, weight(b + "mlp.up.weight"))
            x = x + _linear(F.silu(gate) * up, weight(b + "mlp.down.weight"))
        x = _rms_norm(x, weight("norm.weight"), cfg.rms_eps)
        return _linear(x, emb)  # tied output embedding: (P, B, T, V)


@contextlib.contextmanager
def _one_torch_thread(on: bool) -> Iterator[None]:
    """torch at one intra-op thread inside the block (when ``on``), its own count restored after."""
    if not on:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ============================================================================ the population student
class PopulationStudent:
    """P plain students trained, scored and decoded together (see the module docstring).

    ``size``: P. ``seeds``: each member's initial-weight seed (default ``config.init_seed`` for
    every member, so all start equal)."""

    name = "population"
    teacher_forced_exact = True
    """Each member's :meth:`score` equals its greedy decoding plus exact match."""

    def __init__(self, config: StudentConfig, alphabet: str, size: int, seeds: Sequence[int] | None = None,
                 member_chunk: int | None = None) -> None:
        config.validate()
        check_no_pretraining(config, "population")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ConfigError(f"PopulationStudent size must be an integer >= 1, got {size!r}")
        seeds = [config.init_seed] * int(size) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != size:
            raise ConfigError(f"PopulationStudent got {len(seeds)} seeds for {size} members; give one seed per member")
        self.config = config
        self.size = int(size)
        self.tokenizer = CharTokenizer(alphabet, reverse_answers=config.reverse_answers)
        self.device = resolve_device(config.device)
        self.model_config = PlainConfig.from_student(config, self.tokenizer.vocab_size)
        self.model = PopulationLM(self.model_config, self.size).to(self.device)
        self._train_forward = compiled(self.model) if config.compile else self.model
        self.n_params = sum(int(np.prod(s)) for s in param_shapes(self.model_config).values())
        """Parameters of one member."""
        self._ids_np = id_dtype(self.tokenizer.vocab_size)
        self._ids_torch = torch.uint8 if self._ids_np == np.uint8 else torch.int32
        self.capacity = config.replay_capacity
        self.exp_avg = [torch.zeros_like(p) for p in self.model.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.model.params]
        self.adam_step = np.zeros(self.size, np.int64)
        """Optimiser steps applied since the member's optimiser was last fresh (AdamW's ``step``)."""
        self.step = np.zeros(self.size, np.int64)
        """Schedule step per member (what ``PlainStudent.step`` is)."""
        W = config.max_positions
        self.replay_ids = torch.zeros((self.size, 0, W), dtype=self._ids_torch, device=self.device)
        self.replay_plen = torch.zeros((self.size, 0), dtype=torch.int64, device=self.device)
        self.replay_len = torch.zeros((self.size, 0), dtype=torch.int64, device=self.device)
        self.replay_len_cpu = np.zeros((self.size, 0), np.int64)
        self._pool_len = self.replay_len_cpu
        self.replay_hint = 0  # replay slots to allocate at once (see _grow_replay)
        self.replay_count = np.zeros(self.size, np.int64)
        self.by_cell = config.replay_sampling == "cell"
        """Whether each replay slot's (skill, level) cell is kept (``replay_sampling="cell"``)."""
        self.replay_cell_cpu = np.zeros((self.size, 0), np.int64)
        """(P, slots) each slot's cell code (only with ``by_cell``), numbered per member by ``replay_codes``."""
        self.replay_codes = [CellCodes() for _ in range(self.size)]
        if member_chunk is not None and (isinstance(member_chunk, bool) or not isinstance(member_chunk, (int, np.integer))
                                         or member_chunk < 1):
            raise ConfigError(f"PopulationStudent member_chunk must be None or an integer >= 1, got {member_chunk!r}")
        self.member_chunk = None if member_chunk is None else int(member_chunk)
        """Most members in one batched pass (None: all of a pass's members that share a row length);
        a smaller chunk bounds the activation memory and changes no number."""
        self.timing: dict[str, float] = {}
        """Seconds accumulated by phase: ``train_host`` (batch planning, bookkeeping), ``train_device``
        (the optimiser passes until their results are back on the host and their temporaries are
        released), ``eval_host``, ``eval_device`` (teacher-forced scoring, its chunks' tensors
        released inside it) and ``decode`` (greedy decoding); read and clear it."""
        self._eval_sets: dict[str, dict[str, Any]] = {}
        self.split_passes = True
        """Split a training pass's members across threads when torch has more than one (see
        :meth:`_pass_workers`); False runs every pass on torch's own threads."""
        self._threads: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None
        for p, seed in enumerate(seeds):
            self.reinit(p, seed)

    @classmethod
    def for_suite(cls, suite: Any, size: int, seeds: Sequence[int] | None = None, device: str | None = None,
                  config: StudentConfig | None = None, member_chunk: int | None = None,
                  **fields: Any) -> PopulationStudent:
        """``size`` members for ``suite`` (``StudentConfig`` fields as for the plain student)."""
        return cls(suite_config(suite, device, config, fields), suite.alphabet, size, seeds, member_chunk)

    @classmethod
    def of(cls, student: PlainStudent, size: int, member_chunk: int | None = None) -> PopulationStudent:
        """``size`` students of ``student``'s configuration (the registry entry
        :data:`distillgym.students.POPULATIONS` ``["plain"]``)."""
        return cls(student.config, student.tokenizer.alphabet, size, member_chunk=member_chunk)

    # ------------------------------------------------------------------ members
    def _check_member(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.size:
            raise ConfigError(f"member index must be an integer in 0..{self.size - 1}, got {i!r}")
        return int(i)

    def _replay_filled(self, i: int) -> int:
        return int(min(self.replay_count[i], self.capacity))

    def _replay_cells(self, i: int) -> np.ndarray | None:
        """Member i's filled slots' cell codes (``by_cell``), else None (what :func:`batch_plan` takes)."""
        return self.replay_cell_cpu[i, : self._replay_filled(i)] if self.by_cell else None

    def _grow_replay(self, size: int) -> None:
        """Make room for ``size`` replay slots per member (at most the capacity): at least doubling,
        and at once to ``replay_hint`` slots where a caller knows how many rows an episode adds (the
        native vector env: its budget, which its memory plan counts), so that the rings are not copied
        as they fill. The CPU lengths are the first columns of :meth:`_pool_lengths`' buffer."""
        have = self.replay_ids.shape[1]
        if size <= have:
            return
        new = min(self.capacity, max(size, 2 * have, self.replay_hint))
        grow = new - have
        P, W = self.size, self.config.max_positions
        self.replay_ids = torch.cat([self.replay_ids, self.replay_ids.new_zeros((P, grow, W))], dim=1)
        self.replay_plen = torch.cat([self.replay_plen, self.replay_plen.new_zeros((P, grow))], dim=1)
        self.replay_len = torch.cat([self.replay_len, self.replay_len.new_zeros((P, grow))], dim=1)
        self._new_pool(new + 1, have, new)
        if self.by_cell:
            self.replay_cell_cpu = np.concatenate([self.replay_cell_cpu, np.zeros((P, grow), np.int64)], axis=1)

    def _pool_lengths(self, new_len: np.ndarray) -> np.ndarray:
        """A C-contiguous ``(P, >= A + new rows)`` array of row lengths: the replay slots', then
        ``new_len``'s (the rows a pass's indices address; columns after them unused), written after
        the replay lengths in one kept buffer rather than joined with the whole ring each step."""
        A = self.replay_ids.shape[1]
        if A == 0:
            return new_len
        k = new_len.shape[1]
        if self._pool_len.shape[1] < A + k:
            self._new_pool(A + k, A, A)
        self._pool_len[:, A : A + k] = new_len
        return self._pool_len

    def _new_pool(self, width: int, keep: int, slots: int) -> None:
        """A fresh ``(P, width)`` length buffer holding the first ``keep`` replay lengths, whose first
        ``slots`` columns become ``replay_len_cpu``."""
        pool = np.zeros((self.size, width), np.int64)
        pool[:, :keep] = self.replay_len_cpu[:, :keep]
        self._pool_len, self.replay_len_cpu = pool, pool[:, :slots]

    def state(self, i: int) -> dict[str, torch.Tensor]:
        """A copy of member i's weights (a plain-model state dict)."""
        return self.model.member(self._check_member(i))

    def load_state(self, i: int, state: dict[str, torch.Tensor]) -> None:
        """Member i's weights; a fresh optimiser, warm-up and replay buffer for it."""
        i = self._check_member(i)
        self.model.set_member(i, state)
        with torch.no_grad():
            for ea, eas in zip(self.exp_avg, self.exp_avg_sq, strict=True):
                ea[i].zero_()
                eas[i].zero_()
        self.adam_step[i] = 0
        self.step[i] = 0
        self.replay_count[i] = 0
        self.replay_codes[i] = CellCodes()

    def reinit(self, i: int, seed: int) -> None:
        """Member i: fresh initial weights drawn from ``seed``, fresh optimiser and replay buffer."""
        self.load_state(i, init_weights(self.model_config, seed))

    def snapshot(self, i: int) -> dict[str, Any]:
        """Member i's weights, optimiser state, schedule step and replay buffer, copied, in
        :meth:`PlainStudent.snapshot` format (optimiser state as ``torch.optim.AdamW`` writes it)."""
        i = self._check_member(i)
        optimizer = None
        if self.adam_step[i] > 0:
            lr = _lr(self.config, np.array([self.step[i] - 1]))[0]
            optimizer = {
                "state": {
                    j: {"step": torch.tensor(float(self.adam_step[i])), "exp_avg": self.exp_avg[j][i].detach().clone(),
                        "exp_avg_sq": self.exp_avg_sq[j][i].detach().clone()}
                    for j in range(len(self.model.names))
                },
                "param_groups": [self._param_group(float(lr))],
            }
        m = self._replay_filled(i)
        replay = {
            "ids": self.replay_ids[i, :m].cpu().numpy().astype(self._ids_np),
            "prompt_len": self.replay_plen[i, :m].cpu().numpy(),
            "length": self.replay_len[i, :m].cpu().numpy(),
            "count": int(self.replay_count[i]),
        }
        if self.by_cell:  # as ReplayBuffer.snapshot
            replay["cell"] = self.replay_cell_cpu[i, :m].copy()
            replay["cells"] = [list(c) for c in self.replay_codes[i].cells]
        return {"weights": self.state(i), "optimizer": optimizer, "step": int(self.step[i]), "replay": replay}

    def _param_group(self, lr: float) -> dict[str, Any]:
        dummy = [nn.Parameter(torch.zeros(1)) for _ in self.model.names]
        group = torch.optim.AdamW(dummy, lr=self.config.lr, betas=BETAS, eps=ADAM_EPS,
                                  weight_decay=self.config.weight_decay).state_dict()["param_groups"][0]
        group["lr"] = lr
        return group

    def restore(self, i: int, snapshot: dict[str, Any]) -> None:
        """Member i back to a snapshot exactly (one of a member, or of a :class:`PlainStudent`)."""
        i = self._check_member(i)
        self.load_state(i, {k: v.to(self.device) for k, v in snapshot["weights"].items()})
        opt = snapshot.get("optimizer")
        if opt is not None:
            state = opt["state"]
            if sorted(state) != list(range(len(self.model.names))):
                raise ConfigError(f"optimizer state has entries {sorted(state)}, expected one per parameter "
                                  f"(0..{len(self.model.names) - 1})")
            with torch.no_grad():
                for j in range(len(self.model.names)):
                    self.exp_avg[j][i].copy_(state[j]["exp_avg"])
                    self.exp_avg_sq[j][i].copy_(state[j]["exp_avg_sq"])
            self.adam_step[i] = int(float(state[0]["step"]))
        self.step[i] = int(snapshot.get("step", 0))
        replay = snapshot.get("replay")
        if replay:
            ids = np.asarray(replay["ids"])
            m = min(len(ids), self.capacity)
            self._grow_replay(m)
            W = self.config.max_positions
            block = np.full((m, W), PAD, self._ids_np)
            block[:, : min(W, ids.shape[1])] = ids[:m, :W]
            self.replay_ids[i, :m] = torch.from_numpy(block).to(self.device)
            plen = np.asarray(replay["prompt_len"], np.int64)[:m]
            length = np.asarray(replay["length"], np.int64)[:m]
            self.replay_plen[i, :m] = torch.from_numpy(plen).to(self.device)
            self.replay_len[i, :m] = torch.from_numpy(length).to(self.device)
            self.replay_len_cpu[i, :m] = length
            self.replay_count[i] = int(replay["count"]) if m == len(ids) else m
            if self.by_cell:
                self.replay_cell_cpu[i, :m], self.replay_codes[i] = restore_cells(replay, m)

    def member(self, i: int) -> PlainStudent:
        """A separate :class:`PlainStudent` holding member i's state (a copy)."""
        s = PlainStudent(self.config, self.tokenizer.alphabet)
        s.restore(self.snapshot(i))
        return s

    def costs(self) -> dict[str, Any]:
        """Per member (every member has the same shape)."""
        return {"n_params": self.n_params, "trainable_params": self.n_params,
                "flops_per_token": self.flops_per_token(), "population_size": self.size}

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """One member's training FLOPs per token (:func:`~distillgym.students.char_lm.flops_per_token`)."""
        return flops_per_token(self.n_params, self.config, seq_len)

    # ------------------------------------------------------------------ batching helpers
    def encode(self, examples: Sequence[Example] | ExampleArrays | None) -> TokenRows:
        return encode(self.tokenizer, examples if examples is not None else [],
                      max_positions=self.config.max_positions)

    def _encode_many(self, examples: Sequence[Sequence[Example] | ExampleArrays | None]
                     ) -> tuple[list[TokenRows], TokenRows | None]:
        """:meth:`encode` of every member's examples, and the one block they are consecutive slices of
        when they were encoded in one vectorised call (all arrays over the same skills: the same rows
        as one call each), else None."""
        arrays = [e for e in examples if e is not None and len(e)]
        if len(arrays) < 2 or not all(isinstance(e, ExampleArrays) and e.skills == arrays[0].skills for e in arrays):
            return [self.encode(e) for e in examples], None
        every = self.encode(ExampleArrays.concat(arrays, arrays[0].skills))
        out, start = [], 0
        for e in examples:
            n = 0 if e is None else len(e)
            out.append(every.take(slice(start, start + n)) if n else self.encode(None))
            start += n
        return out, every

    def _per_member(self, what: str, values: Sequence[Any]) -> None:
        if len(values) != self.size:
            raise ConfigError(f"{what} needs one entry per member ({self.size}), got {len(values)}")

    def _stack_rows(self, rows: list[TokenRows], extra: int = 1, block: TokenRows | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P, n_max + extra, max_positions) ids and (P, n_max + extra) prompt/row lengths; rows
        beyond a member's own are padding (length 0: nothing scored). ``block``: the block that ``rows``
        are consecutive slices of (:meth:`_encode_many`), read instead of joining them again."""
        counts = np.array([len(r) for r in rows], np.int64)
        n_max = int(counts.max(initial=0))
        W = self.config.max_positions
        ids = np.zeros((self.size, n_max + extra, W), self._ids_np)
        plen = np.zeros((self.size, n_max + extra), np.int64)
        length = np.zeros((self.size, n_max + extra), np.int64)
        filled = [r for r in rows if len(r)]
        if filled and block is not None:  # the rows are consecutive slices of this block, in order
            every, every_plen, every_len = block.ids, block.prompt_len, block.length
            width = every.shape[1]
        elif filled:
            width = max(r.ids.shape[1] for r in filled)
            every = np.concatenate([
                r.ids if r.ids.shape[1] == width else np.pad(r.ids, ((0, 0), (0, width - r.ids.shape[1])))
                for r in filled])
            every_plen = np.concatenate([r.prompt_len for r in filled])
            every_len = np.concatenate([r.length for r in filled])
        if filled and (counts == n_max).all():  # every member has n_max rows: whole blocks, no scatter
            ids[:, :n_max, :width] = every.reshape(self.size, n_max, width)
            plen[:, :n_max] = every_plen.reshape(self.size, n_max)
            length[:, :n_max] = every_len.reshape(self.size, n_max)
        elif filled:
            member = np.repeat(np.arange(self.size), counts)
            row = np.arange(len(member)) - np.repeat(np.cumsum(counts) - counts, counts)
            ids[member, row, :width] = every
            plen[member, row] = every_plen
            length[member, row] = every_len
        return ids, plen, length

    def _to(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    # ------------------------------------------------------------------ member groups
    def _weights(self, idx: torch.Tensor, grad: bool) -> list[torch.Tensor]:
        """Copies of the parameters of the members ``idx`` (an index tensor on the device; gathered
        along the member dimension, in names' order); leaves that collect their own gradients when
        ``grad``."""
        out = []
        for p in self.model.params:
            w = p.detach().index_select(0, idx)
            out.append(w.requires_grad_() if grad else w)
        return out

    def _groups(self, members: np.ndarray, lengths: np.ndarray,
                rows: np.ndarray | None = None) -> list[tuple[np.ndarray, int]]:
        """``members`` grouped by ``lengths`` (each member's padded row length in a pass) and, where
        given, by ``rows`` (its number of rows in the pass), then cut into pieces of at most
        ``member_chunk`` members: ``[(members, T), ...]`` in order of (length, rows). Every member's
        batch keeps the plain student's own shape, so its numbers are the plain student's (module
        docstring, "Equivalence")."""
        out = []
        step = self.member_chunk or len(members) or 1
        lengths = np.asarray(lengths, np.int64)
        rows = np.zeros_like(lengths) if rows is None else np.asarray(rows, np.int64)
        span = int(rows.max(initial=0)) + 1
        key = lengths * span + rows  # ordered as (length, rows), both >= 0
        for k in np.unique(key).tolist():
            group = members[key == k]
            out.extend((group[i : i + step], int(k // span)) for i in range(0, len(group), step))
        return out

    @staticmethod
    def _clock() -> tuple[float, float]:
        """(wall, process CPU) seconds now."""
        return time.perf_counter(), time.process_time()

    def _note(self, key: str, since: tuple[float, float]) -> tuple[float, float]:
        """Add the wall and CPU seconds since ``since`` to ``timing[key]`` and ``timing[key + "_cpu"]``;
        returns the clock now."""
        now = self._clock()
        self.timing[key] = self.timing.get(key, 0.0) + now[0] - since[0]
        self.timing[key + "_cpu"] = self.timing.get(key + "_cpu", 0.0) + now[1] - since[1]
        return now

    # ------------------------------------------------------------------ training
    def train(self, examples: Sequence[Sequence[Example] | ExampleArrays | None],
              rngs: Sequence[np.random.Generator | None], track_cells: bool = True) -> list[TrainStats]:
        """One pass over each member's examples (``examples[p]``, shuffled and replay-mixed with
        ``rngs[p]`` exactly as :meth:`PlainStudent.train` does); None or an empty list leaves a
        member untouched. Returns one :class:`TrainStats` per member; its ``seconds`` is the
        call's wall time (what each member's caller waited; summed over members it counts the
        shared time once per member), ``extra["share_seconds"]`` that divided by the members
        trained.
        Raises :class:`PopulationDivergedError` (see the module docstring)."""
        t0 = time.perf_counter()
        c0 = self._clock()
        cfg, P = self.config, self.size
        self._per_member("train: examples", examples)
        self._per_member("train: rngs", rngs)
        rows, block = self._encode_many(examples)
        plans = []
        for p, r in enumerate(rows):
            if len(r) and rngs[p] is None:
                raise ConfigError(f"train: member {p} has examples but no random generator")
            plans.append(batch_plan(len(r), self._replay_filled(p), cfg, rngs[p], self._replay_cells(p)) if len(r) else None)
        n_batches = np.array([pl.n_batches if pl else 0 for pl in plans], np.int64)
        K = int(n_batches.max(initial=0))
        stats = [TrainStats() for _ in range(P)]
        if K == 0:
            return stats
        bs, A = cfg.batch_size, self.replay_ids.shape[1]
        new_ids, new_plen, new_len = self._stack_rows(rows, block=block)
        dummy = A + new_ids.shape[1] - 1  # an all-padding row
        # pass k of member p: its new rows, then its replayed rows (the plain student's batch),
        # then padding rows up to the pass's largest batch (a member's group holds only members with
        # its own number of rows, so its tensors never carry them: _groups)
        idx = np.full((P, K, bs), dummy, np.int64)
        rows_in = np.zeros((P, K), np.int64)
        for p, pl in enumerate(plans):
            if pl is None:
                continue
            kp, n_new, n_rep = pl.n_batches, pl.n_new, pl.n_replay
            new = np.full(kp * n_new, dummy - A, np.int64)
            new[: len(pl.order)] = pl.order
            new = A + new.reshape(kp, n_new)
            last = len(pl.order) - (kp - 1) * n_new  # new rows in the last pass
            idx[p, :kp, :n_new] = new
            if n_rep:
                idx[p, : kp - 1, n_new:] = pl.replay[: kp - 1]
                idx[p, kp - 1, last : last + n_rep] = pl.replay[kp - 1]
                idx[p, kp - 1, last + n_rep :] = dummy
            rows_in[p, :kp] = n_new + n_rep
            rows_in[p, kp - 1] = last + n_rep
        pool = self._pool_lengths(new_len)
        sel_len = pool.reshape(-1).take(idx + (np.arange(P) * pool.shape[1])[:, None, None])  # (P, K, bs): pool[p, idx[p]]
        T_pk = sel_len.max(axis=2)  # each member's own padded length in each pass (the plain student's)
        tokens = sel_len.sum(2)  # (P, K)
        new_ids_t = self._to(new_ids).to(self._ids_torch)
        new_plen_t, new_len_t = self._to(new_plen), self._to(new_len)
        idx_t = self._to(idx)
        # per (member, pass): schedule and AdamW scalars, computed in float64 on the host
        k_ar = np.arange(K)[None, :]
        active = k_ar < n_batches[:, None]
        lr = _lr(cfg, self.step[:, None] + k_ar)
        t_adam = (self.adam_step[:, None] + k_ar + 1).astype(np.float64)
        b1, b2 = BETAS
        scal = {
            "wdf": 1 - lr * cfg.weight_decay,
            "neg_step": -(lr / (1 - b1**t_adam)),
            "bc2_sqrt": np.sqrt(1 - b2**t_adam),
        }
        scal_t = {k: self._to(v.astype(np.float32)) for k, v in scal.items()}
        active_t = self._to(active)
        # the passes' groups (members sharing a row length), all known on the host: one transfer
        schedule: list[tuple[bool, list[tuple[np.ndarray, int, int, int]]]] = []
        flat: list[np.ndarray] = []
        offset = 0
        for k in range(K):
            on = np.flatnonzero(active[:, k])
            groups = self._groups(on, T_pk[on, k], rows_in[on, k])
            entries = []
            for members, T in groups:
                entries.append((members, T, int(rows_in[members, k].max()), offset))
                flat.append(members)
                offset += len(members)
            schedule.append((len(groups) == 1 and len(groups[0][0]) == P, entries))
        members_t = self._to(np.concatenate(flat)) if flat else None
        c_loop = self._note("train_host", c0)
        failed, what, loss_np, cell_np = self._passes(schedule, K, members_t, idx_t, (new_ids_t, new_plen_t, new_len_t),
                                                      active_t, scal_t, track_cells)
        c_back = self._note("train_device", c_loop)
        applied = np.where(failed >= 0, failed, n_batches)
        errors: dict[int, TrainingDivergedError] = {}
        for p in range(P):
            if plans[p] is None:
                continue
            st = stats[p]
            a = int(applied[p])
            st.optimizer_steps = a
            st.tokens = int(tokens[p, :a].sum())
            st.flops = st.tokens * self.flops_per_token()
            st.loss = float(loss_np[:a, p].mean()) if a else float("nan")
            if failed[p] >= 0:
                kind = "training loss" if what[p] == 1 else "gradient norm"
                bad = loss_np[failed[p], p] if what[p] == 1 else float("nan")
                errors[p] = TrainingDivergedError(diverged_message(
                    f"{kind} became {'non-finite' if what[p] == 2 else bad}", int(self.step[p]) + a, a), a)
            else:
                st.examples = len(rows[p])
            self.step[p] += a
            self.adam_step[p] += a
        if cell_np is not None:
            for p, cells in self._cell_losses(rows, plans, cell_np, applied).items():
                stats[p].cell_loss = cells
        self._add_replay(rows, [p for p in range(P) if plans[p] is not None and failed[p] < 0],
                         new_ids_t, new_plen_t, new_len_t, new_len)
        wall = time.perf_counter() - t0
        self._note("train_host", c_back)
        trained = sum(pl is not None for pl in plans)
        for p in range(P):
            if plans[p] is not None:
                stats[p].seconds = wall
                stats[p].extra["share_seconds"] = wall / trained
        if errors:
            raise PopulationDivergedError(errors, stats)
        return stats

    def _passes(self, schedule: list[tuple[bool, list[tuple[np.ndarray, int, int, int]]]], K: int,
                members_t: torch.Tensor | None, idx_t: torch.Tensor, new: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                active_t: torch.Tensor, scal_t: dict[str, torch.Tensor], track_cells: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The ``K`` training passes of :meth:`train` (its ``schedule`` of member groups; ``idx_t``:
        each member's rows per pass; ``scal_t``: the AdamW scalars per member and pass), on the device.
        Returns, on the host: the pass each member diverged at (-1: none), what diverged (1: loss,
        2: gradient norm), the (K, P) pass losses and the (P, K, batch) row losses (or None).
        A method of its own so that the passes' temporaries are released when it returns, inside
        the training's device time."""
        cfg, P, dev = self.config, self.size, self.device
        bs = cfg.batch_size
        new_ids_t, new_plen_t, new_len_t = new
        b1, b2 = BETAS
        alive = torch.ones(P, dtype=torch.bool, device=dev)
        failed_at = torch.full((P,), -1, dtype=torch.int64, device=dev)
        failed_what = torch.zeros(P, dtype=torch.int64, device=dev)  # 1: loss, 2: gradient norm
        losses = torch.zeros((K, P), dtype=torch.float32, device=dev)
        cell = torch.zeros((P, K, bs), dtype=torch.float32, device=dev) if track_cells else None
        everyone = torch.arange(P, device=dev)
        params = list(self.model.params)
        shapes = [(P,) + (1,) * (p.dim() - 1) for p in params]
        bufs: list[torch.Tensor] | None = None
        self.model.train()
        workers = self._pass_workers(P)

        def run(mem_t: torch.Tensor, T: int, rows_k: int, direct: bool) -> None:
            """One group's forward and backward: its members' losses, row losses and gradients."""
            x, plen, length = self._pass_rows(mem_t, idx_t[mem_t, k, :rows_k], T, new_ids_t, new_plen_t, new_len_t)
            targets = make_targets(x, plen, length)
            weights = None if direct else self._weights(mem_t, grad=True)
            logits = self._train_forward(x, weights)
            loss = member_loss(logits, targets)  # (G,) member means
            if cell is not None:
                cell[:, k][mem_t, :rows_k] = row_loss(logits, targets)
            torch.where(alive[mem_t], loss, torch.zeros_like(loss)).sum().backward()
            loss_k[mem_t] = loss.detach()
            if not direct:
                for buf, w in zip(bufs, weights, strict=True):  # type: ignore[arg-type]
                    buf.index_copy_(0, mem_t, w.grad)

        with _one_torch_thread(workers > 1):  # the members split across threads of one torch thread each
            for k in range(K):
                direct, groups = schedule[k]  # direct: every member in one group, in order
                direct = direct and workers == 1
                loss_k = torch.zeros(P, dtype=torch.float32, device=dev)
                for p in params:
                    p.grad = None
                if not direct:
                    if bufs is None:
                        bufs = [torch.zeros_like(p) for p in params]
                    else:
                        torch._foreach_zero_(bufs)
                jobs = []
                for members, T, rows_k, at in groups:
                    mem_t = everyone if direct else members_t[at : at + len(members)]  # type: ignore[index]
                    size = -(-len(members) // workers)
                    jobs.extend((mem_t[i : i + size], T, rows_k) for i in range(0, len(members), size))
                self._run_jobs(workers, run, [(*job, direct) for job in jobs])
                grads = [p.grad for p in params] if direct else bufs
                act = active_t[:, k] & alive
                norm = member_grad_norms(grads)  # (P,) each member's global gradient norm
                loss_ok, norm_ok = torch.isfinite(loss_k), torch.isfinite(norm)
                fails = act & ~(loss_ok & norm_ok)
                failed_at = torch.where(fails, k, failed_at)
                failed_what = torch.where(fails, torch.where(loss_ok, 2, 1), failed_what)
                alive = alive & ~fails
                upd = act & ~fails
                coef = torch.ones_like(norm)
                if cfg.grad_clip > 0:
                    coef = torch.clamp(cfg.grad_clip / (norm + 1e-6), max=1.0)
                coef = torch.where(upd, coef, torch.zeros_like(coef))  # non-updating members: zero gradient
                one = torch.ones_like(coef)
                wdf = torch.where(upd, scal_t["wdf"][:, k], one)
                w1 = torch.where(upd, torch.full_like(coef, 1 - b1), torch.zeros_like(coef))
                f2 = torch.where(upd, torch.full_like(coef, b2), one)
                neg_step = torch.where(upd, scal_t["neg_step"][:, k], torch.zeros_like(coef))
                bc2 = scal_t["bc2_sqrt"][:, k]
                with torch.no_grad():  # AdamW (torch.optim.AdamW's single-tensor update), every parameter at once
                    gs = torch._foreach_mul(grads, [coef.view(s) for s in shapes])  # type: ignore[arg-type]
                    for g in gs:  # clipped gradient; zero for members not updating (a diverged member's may be NaN)
                        torch.nan_to_num_(g, nan=0.0, posinf=0.0, neginf=0.0)
                    torch._foreach_mul_(params, [wdf.view(s) for s in shapes])  # decoupled weight decay
                    torch._foreach_lerp_(self.exp_avg, gs, [w1.view(s) for s in shapes])
                    torch._foreach_mul_(self.exp_avg_sq, [f2.view(s) for s in shapes])
                    torch._foreach_addcmul_(self.exp_avg_sq, gs, gs, value=1 - b2)
                    denom = torch._foreach_sqrt(self.exp_avg_sq)
                    torch._foreach_div_(denom, [bc2.view(s) for s in shapes])
                    torch._foreach_add_(denom, ADAM_EPS)
                    upd_t = torch._foreach_mul(self.exp_avg, [neg_step.view(s) for s in shapes])
                    torch._foreach_div_(upd_t, denom)
                    torch._foreach_add_(params, upd_t)
                losses[k] = loss_k
        for p in params:
            p.grad = None
        # ---- back on the host, once per call
        failed = failed_at.cpu().numpy()
        what = failed_what.cpu().numpy()
        loss_np = losses.cpu().numpy().astype(np.float64)
        cell_np = cell.cpu().numpy() if cell is not None else None  # (P, K, bs)
        return failed, what, loss_np, cell_np

    def _pass_workers(self, P: int) -> int:
        """Threads the members of a training pass or a scoring chunk are split across: on a CPU with
        more than one torch thread (and no compiled model), as many as torch's threads, each running
        its members' forward (and backward) with one torch thread. Attention's CPU kernel does not
        use a second thread at these shapes (benchmarks/README.md, issue 19), members in threads of
        their own do; a member's numbers are those of one torch thread (its products never mix with
        another's, as with ``member_chunk``). Up to ``workers`` jobs hold activations at once.
        1: the passes as they were."""
        if not self.split_passes or self.device.type != "cpu" or self.config.compile or P < 2:
            return 1
        return max(1, min(torch.get_num_threads(), P))

    def _run_jobs(self, workers: int, fn: Any, jobs: Sequence[tuple[Any, ...]]) -> None:
        """``fn(*job)`` for every job: in turn, or with ``workers`` > 1 and more than one job in a pool
        of that many threads (made on first use, kept for the population's life), where every job
        ends before the first failure is raised."""
        if workers == 1 or len(jobs) < 2:
            for job in jobs:
                fn(*job)
            return
        if self._threads is None or self._threads[0] != workers:
            if self._threads is not None:
                self._threads[1].shutdown()
            self._threads = (workers, concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="population-pass"))
        running = [self._threads[1].submit(fn, *job) for job in jobs]
        concurrent.futures.wait(running)
        for job in running:
            job.result()

    def _pass_rows(self, mem_t: torch.Tensor, sel: torch.Tensor, T: int, new_ids: torch.Tensor,
                   new_plen: torch.Tensor, new_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Token rows ``sel`` (G, rows: replay slots below the buffer's size, new rows above it) of
        members ``mem_t``, cut at ``T`` positions: ids (long), prompt lengths, lengths."""
        m = mem_t[:, None]
        A = self.replay_ids.shape[1]
        if A == 0:
            return new_ids[m, sel, :T].long(), new_plen[m, sel], new_len[m, sel]
        rep = sel < A
        r, j = sel.clamp(max=A - 1), (sel - A).clamp(min=0)
        x = torch.where(rep[..., None], self.replay_ids[m, r, :T], new_ids[m, j, :T]).long()
        plen = torch.where(rep, self.replay_plen[m, r], new_plen[m, j])
        length = torch.where(rep, self.replay_len[m, r], new_len[m, j])
        return x, plen, length

    @staticmethod
    def _cell_loss(rows: TokenRows, plan: Any, losses: np.ndarray, applied: int) -> dict[tuple[str, int], float]:
        """Mean row loss of the new rows per (skill, level), over the applied passes."""
        n = min(len(plan.order), applied * plan.n_new)
        per_pass = losses[:applied, : plan.n_new].reshape(-1)[:n]  # pass k's new rows sit in its first columns
        return cell_means(rows, plan.order[:n], per_pass)

    @classmethod
    def _cell_losses(cls, rows: list[TokenRows], plans: list[Any], losses: np.ndarray, applied: np.ndarray
                     ) -> dict[int, dict[tuple[str, int], float]]:
        """:meth:`_cell_loss` of every member with a plan, from one ``bincount`` over (member, cell):
        each (member, cell)'s losses are added in the same order as there, so the means are the same."""
        members = [p for p, plan in enumerate(plans) if plan is not None]
        if not members:
            return {}
        skills = rows[members[0]].skills
        if any(rows[p].skills != skills for p in members):
            return {p: cls._cell_loss(rows[p], plans[p], losses[p], int(applied[p])) for p in members}
        idx, vals = [], []
        for p in members:
            plan, a = plans[p], int(applied[p])
            n = min(len(plan.order), a * plan.n_new)
            idx.append(plan.order[:n])
            vals.append(losses[p, :a, : plan.n_new].reshape(-1)[:n])
        who = np.repeat(np.arange(len(members)), [len(i) for i in idx])
        skill = np.concatenate([rows[p].skill[i] for p, i in zip(members, idx, strict=True)])
        level = np.concatenate([rows[p].difficulty[i] for p, i in zip(members, idx, strict=True)])
        span = int(level.max(initial=0)) + 1
        per_member = len(skills) * span
        key = who * per_member + skill * span + level  # (member, skill, level), in that order
        sums = np.bincount(key, weights=np.concatenate(vals).astype(np.float64))
        counts = np.bincount(key)
        present = np.flatnonzero(counts)
        out: dict[int, dict[tuple[str, int], float]] = {p: {} for p in members}
        for u, total, c in zip(present.tolist(), sums[present].tolist(), counts[present].tolist(), strict=True):
            m, cell = divmod(u, per_member)
            out[members[m]][(skills[cell // span], cell % span)] = total / c
        return out

    def _add_replay(self, rows: list[TokenRows], members: list[int], ids_t: torch.Tensor, plen_t: torch.Tensor,
                    len_t: torch.Tensor, len_np: np.ndarray) -> None:
        """Append each listed member's new rows to its ring (one scatter for all members)."""
        C = self.capacity
        if self.config.replay_fraction <= 0 or C == 0 or not members:
            return
        self._grow_replay(max(min(int(self.replay_count[p]) + len(rows[p]), C) for p in members))
        if self.by_cell:  # each kept row's cell into its slot, as ReplayBuffer.add
            for p in members:
                n = len(rows[p])
                keep = np.arange(max(0, n - C), n)
                self.replay_cell_cpu[p, (self.replay_count[p] + keep) % C] = self.replay_codes[p].of(rows[p])[keep]
        if self.device.type == "cpu":
            self._add_replay_slices(rows, members, ids_t, plen_t, len_t, len_np)
        else:
            self._add_replay_scatter(rows, members, ids_t, plen_t, len_t, len_np)

    def _add_replay_slices(self, rows: list[TokenRows], members: list[int], ids_t: torch.Tensor,
                           plen_t: torch.Tensor, len_t: torch.Tensor, len_np: np.ndarray) -> None:
        """:meth:`_add_replay` as slice copies, a member at a time (its slots are one or two runs of
        its ring), or every member at once when all share their ring position and row count (the
        common case): on a CPU, cheaper than gathering every new row for one scatter."""
        C = self.capacity
        runs: list[tuple[Any, int, int]] = [(p, int(self.replay_count[p]), len(rows[p])) for p in members]
        if len(members) == self.size and len({(c, n) for _, c, n in runs}) == 1:
            runs = [(slice(None), runs[0][1], runs[0][2])]  # every member at one ring position: one copy for all
        for who, count, n in runs:
            first = max(0, n - C)  # the rows kept: [first, n)
            s0 = (count + first) % C
            for r0, r1, at in ((first, min(n, first + C - s0), s0), (first + C - s0, n, 0)):
                if r1 > r0:
                    self.replay_ids[who, at : at + r1 - r0] = ids_t[who, r0:r1]
                    self.replay_plen[who, at : at + r1 - r0] = plen_t[who, r0:r1]
                    self.replay_len[who, at : at + r1 - r0] = len_t[who, r0:r1]
                    self.replay_len_cpu[who, at : at + r1 - r0] = len_np[who, r0:r1]
            self.replay_count[who] += n

    def _add_replay_scatter(self, rows: list[TokenRows], members: list[int], ids_t: torch.Tensor,
                            plen_t: torch.Tensor, len_t: torch.Tensor, len_np: np.ndarray) -> None:
        """:meth:`_add_replay` as one scatter for every member (one launch on a GPU)."""
        C = self.capacity
        who, slot, src = [], [], []
        for p in members:
            n = len(rows[p])
            keep = np.arange(max(0, n - C), n)
            who.append(np.full(len(keep), p))
            slot.append((self.replay_count[p] + keep) % C)
            src.append(keep)
            self.replay_count[p] += n
        w, s, r = (np.concatenate(a) for a in (who, slot, src))
        wt, st, rt = self._to(w), self._to(s), self._to(r)
        self.replay_ids[wt, st] = ids_t[wt, rt]
        self.replay_plen[wt, st] = plen_t[wt, rt]
        self.replay_len[wt, st] = len_t[wt, rt]
        self.replay_len_cpu[w, s] = len_np[w, r]

    # ------------------------------------------------------------------ evaluation
    def score_and_loss(self, examples: Sequence[Sequence[Example] | ExampleArrays | None]
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per member, exact match and answer loss of its examples (as
        :meth:`PlainStudent.score_and_loss`, whose numbers they are): the members' chunks of
        ``eval_batch_size`` rows are scored together, one pass per chunk and row length."""
        self._per_member("score_and_loss", examples)
        return self.score_rows([self.encode(e) for e in examples])

    def score_rows(self, rows: Sequence[TokenRows | None]) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`score_and_loss` of token rows already encoded (:meth:`encode`)."""
        c0 = self._clock()
        rows = [r if r is not None else self.encode(None) for r in rows]
        ids, plen, length = self._stack_rows(rows, extra=0)
        counts = np.array([len(r) for r in rows], np.int64)
        dev = (self._to(ids).to(self._ids_torch), self._to(plen), self._to(length))
        self._note("eval_host", c0)
        correct, loss = self._score(dev, length, counts)
        return [(correct[p, : counts[p]].copy(), loss[p, : counts[p]].copy()) for p in range(self.size)]

    def set_eval_rows(self, name: str, i: int, rows: TokenRows) -> None:
        """Keep ``rows`` as member i's evaluation set ``name`` on the population's device (an
        environment's validation set, scored every step by :meth:`score_eval_set`)."""
        i = self._check_member(i)
        c0 = self._clock()
        held = self._eval_sets.get(name)
        n, W = len(rows), self.config.max_positions
        if held is None or held["ids"].shape[1] < n:
            cap = max(n, held["ids"].shape[1] if held is not None else 0)
            grown = {
                "ids": torch.zeros((self.size, cap, W), dtype=self._ids_torch, device=self.device),
                "plen": torch.zeros((self.size, cap), dtype=torch.int64, device=self.device),
                "len": torch.zeros((self.size, cap), dtype=torch.int64, device=self.device),
                "len_cpu": np.zeros((self.size, cap), np.int64),
                "count": np.zeros(self.size, np.int64),
            }
            if held is not None:
                m = held["ids"].shape[1]
                for key in ("ids", "plen", "len", "len_cpu"):
                    grown[key][:, :m] = held[key]
                grown["count"][:] = held["count"]
            held = self._eval_sets[name] = grown
        block = np.zeros((n, W), self._ids_np)
        block[:, : rows.ids.shape[1]] = rows.ids
        held["ids"][i].zero_()
        held["plen"][i].zero_()
        held["len"][i].zero_()
        held["len_cpu"][i] = 0
        if n:
            held["ids"][i, :n] = torch.from_numpy(block).to(self.device)
            held["plen"][i, :n] = self._to(np.asarray(rows.prompt_len, np.int64))
            held["len"][i, :n] = self._to(np.asarray(rows.length, np.int64))
            held["len_cpu"][i, :n] = rows.length
        held["count"][i] = n
        self._note("eval_host", c0)

    def score_eval_set(self, name: str, members: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Exact match and answer loss of each listed member's evaluation set ``name`` (see
        :meth:`set_eval_rows`), as :meth:`score_rows` computes them."""
        held = self._eval_sets.get(name)
        if held is None:
            raise ConfigError(f"no evaluation set {name!r}: call set_eval_rows first")
        counts = np.zeros(self.size, np.int64)
        want = np.array(sorted({self._check_member(i) for i in members}), np.int64)
        counts[want] = held["count"][want]
        correct, loss = self._score((held["ids"], held["plen"], held["len"]), held["len_cpu"], counts)
        return {int(p): (correct[p, : counts[p]].copy(), loss[p, : counts[p]].copy()) for p in want}

    @torch.no_grad()
    def _score(self, dev: tuple[torch.Tensor, torch.Tensor, torch.Tensor], length_cpu: np.ndarray,
               counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forced exact match and row loss of the first ``counts[p]`` rows of each member
        (tensors (P, n, W) on the device): the plain student's chunks of ``eval_batch_size`` rows,
        each at its own longest row, grouped across members by that length."""
        clock = self._clock()
        self.model.eval()
        ids, plen, length = dev
        n_max = int(counts.max(initial=0))
        correct = torch.zeros((self.size, n_max), dtype=torch.bool, device=self.device)
        loss = torch.zeros((self.size, n_max), dtype=torch.float32, device=self.device)
        E = self.config.eval_batch_size
        everyone = torch.arange(self.size, device=self.device)
        workers = self._pass_workers(self.size)

        @torch.no_grad()  # grad mode is per thread: the pool's threads need it too
        def run(members: np.ndarray, c0: int, rows: int, Tg: int) -> None:
            direct = len(members) == self.size
            mem_t = everyone if direct else self._to(members)
            m = mem_t[:, None]
            x = ids[m, torch.arange(c0, c0 + rows, device=self.device)[None, :], :Tg].long()
            targets = make_targets(x, plen[mem_t, c0 : c0 + rows], length[mem_t, c0 : c0 + rows])
            logits = self.model(x, None if direct else self._weights(mem_t, grad=False))
            scored = targets != -100
            correct[mem_t, c0 : c0 + rows] = ((logits.argmax(-1) == targets) | ~scored).all(-1)
            loss[mem_t, c0 : c0 + rows] = row_loss(logits, targets)

        jobs = []
        for c0 in range(0, n_max, E):
            on = np.flatnonzero(counts > c0)
            ends = np.minimum(counts[on], c0 + E)
            T = np.array([max(int(length_cpu[p, c0:e].max()), 1) for p, e in zip(on, ends, strict=True)], np.int64)
            for members, Tg in self._groups(on, T):
                rows = int(min(counts[members].max(), c0 + E)) - c0
                size = -(-len(members) // workers)  # members split across the threads (see _pass_workers)
                jobs.extend((members[i : i + size], c0, rows, Tg) for i in range(0, len(members), size))
        with _one_torch_thread(workers > 1 and len(jobs) > 1):
            self._run_jobs(workers, run, jobs)  # each job's tensors are freed when it returns (its memory, its time)
        out = correct.cpu().numpy(), loss.cpu().numpy().astype(np.float64)
        self._note("eval_device", clock)
        return out

    def score(self, examples: Sequence[Sequence[Example] | ExampleArrays | None]) -> list[np.ndarray]:
        return [c for c, _ in self.score_and_loss(examples)]

    def answer_loss(self, examples: Sequence[Sequence[Example] | ExampleArrays | None]) -> list[np.ndarray]:
        return [v for _, v in self.score_and_loss(examples)]

    @torch.no_grad()
    def predict(self, prompts: Sequence[Sequence[str] | None], max_new_tokens: int) -> list[list[str]]:
        """Per member, greedy answers to its prompts (as :meth:`PlainStudent.predict`, whose
        answers they are): prompts of one length are decoded together across the members that
        have them, without padding or cache; on CUDA the loop has a fixed length (no host
        synchronisation per token)."""
        self._per_member("predict", prompts)
        c0 = self._clock()
        self.model.eval()
        prompts = [list(p or []) for p in prompts]
        results = [[""] * len(p) for p in prompts]
        lengths = sorted({len(q) for p in prompts for q in p})
        sync_free = self.device.type == "cuda"
        for ell in lengths:
            where = [[i for i, q in enumerate(p) if len(q) == ell] for p in prompts]
            members = np.array([p for p, w in enumerate(where) if w], np.int64)
            direct = len(members) == self.size
            c = max(len(where[p]) for p in members)
            ids = np.full((len(members), c, ell + 1), PAD, np.int64)
            ids[:, :, 0] = BOS
            live = np.zeros((len(members), c), bool)
            for g, p in enumerate(members):
                for row, i in enumerate(where[p]):
                    ids[g, row] = self.tokenizer.encode_prompt(prompts[p][i])
                    live[g, row] = True
            weights = None if direct else self._weights(self._to(members), grad=False)
            x = self._to(ids)
            done = ~self._to(live)
            start = x.shape[-1]
            for _ in range(max_new_tokens):
                if x.shape[-1] >= self.config.max_positions:
                    break
                nxt = self.model(x, weights)[:, :, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, EOS), nxt)
                x = torch.cat([x, nxt[..., None]], dim=-1)
                done |= nxt == EOS
                if not sync_free and bool(done.all()):
                    break
            out = x[:, :, start:].cpu().numpy()
            for g, p in enumerate(members):
                for row, i in enumerate(where[p]):
                    results[p][i] = self.tokenizer.decode_answer(out[g, row].tolist())
        self._note("decode", c0)
        return results


def _lr(cfg: StudentConfig, step: np.ndarray) -> np.ndarray:
    """:func:`~distillgym.students.char_lm.lr_at` of each of an array of steps (float64, as the plain
    student's Python floats)."""
    step = np.asarray(step)
    uniq, inverse = np.unique(step, return_inverse=True)  # members mostly share their steps: each distinct one once
    return np.array([lr_at(cfg, int(s)) for s in uniq], dtype=np.float64)[inverse.reshape(step.shape)]

