"""A pretrained Hugging Face causal LM as the student, fine-tuned through LoRA adapters (peft).

Any local causal LM directory (made by ``save_pretrained``), or a named model such as
``smollm2`` (SmolLM2-135M-Instruct, see :func:`distillgym.llm.models.resolve_model`), is loaded
once per student with ``AutoModelForCausalLM.from_pretrained(..., local_files_only=True)`` in
float32, frozen, and wrapped with a peft ``LoraConfig``. The default targets every ``nn.Linear``
inside the model except the output head, i.e. every attention and MLP projection (for Llama
and Qwen: q, k, v, o, gate, up and down; peft's own default for these is q and v only).
Training is a plain torch loop: AdamW at a constant learning rate on the adapter weights,
cross-entropy on the answer and end-of-sequence tokens only, bf16 autocast on CUDA and float32
on CPU.

**Prompt format** (``prompt_format``; every format keeps the model's own tokenizer, and every
format ends the answer with the tokenizer's EOS token):

- ``"fewshot"`` (default): a fixed prefix of solved examples, one line per skill
  (``suite.format_line`` of one item at level ``shot_level``, default 1, drawn from the
  *train* part of the suite with a fixed generator, so no validation or test item is ever
  shown; at most ``max_shots`` skills, in the suite's order), then the prompt, the answer and
  EOS. For ``arith-v1`` the prefix is
  ``"c9306=9306\\ns8899=8900\\n10+41=51\\n68-10=58\\n652*5=3260\\n61?59=>\\n3-1+9-4=7\\n"``
  (plus the tokenizer's BOS token if it adds one by default; SmolLM2's does not).
- ``"plain"``: the prompt, the answer and EOS (no prefix, no chat template).
- ``"chat"``: the tokenizer's chat template with the prompt as the one user message and the
  answer as the assistant's reply (SmolLM2: its default system message, ``<|im_start|>user``,
  the prompt, ``<|im_end|>``, ``<|im_start|>assistant``, then the answer and ``<|im_end|>``,
  which is its EOS).

Measured on SmolLM2-135M-Instruct (16 validation items in each of 14 arith-v1 cells: every
skill at levels 0 and 2; greedy, cut at the first newline; benchmarks/lora_student.py): the
pretrained student's mean accuracy is 0.188 with ``fewshot`` (level-1 shots; 0.098 with
level-0 shots, 0.174 with level 2, 0.156 with level 3), 0.013 with ``plain`` (only copy L2 is
ever right) and 0.000 with ``chat`` (the model answers in sentences). ``fewshot`` with level-1
shots is therefore the default.

The shared prefix (the few-shot lines, or the chat template's opening) is run once per
mini-batch with batch size 1, its key/value cache repeated across the batch, and the rows
(left-padded after the prefix, positions continuing from the prefix) run against it; its
gradient flows through the cache. This gives the logits of the unpadded ``prefix + row``
sequences (equal up to float rounding; a test checks it) at the cost of one prefix per batch
instead of one per row. Only the logits of the answer positions are computed
(``logits_to_keep``), which skips most of the vocabulary projection.

**The GPU path** (issue 19; options, all off by default, so ``ArithSkills-SmolLM2-v1``'s numbers
stay as they are on every device; :data:`GPU_KWARGS` turns them on): ``base_dtype="bfloat16"``
(bf16 frozen base, float32 adapter), ``pack_tokens`` (a mini-batch's rows packed by length into
sequences with a block-diagonal causal mask, no padding, the output head at the scored positions
only), ``prefix_cache="step"`` (the prefix's key/value cache computed once per evaluation call
and once per single-mini-batch training call, instead of once per batch), ``decode="fixed"``
(greedy decoding of a fixed number of tokens with no host synchronisation per token), a large
``eval_batch_size`` (every cell's items in one batch) and ``batch_size`` equal to the step's
examples (fewer, larger batches: one optimiser step per env step). With packing or the step
cache, training reads the device once per optimiser step instead of several times per
mini-batch. These give the default path's greedy answers and its losses up to float rounding
(tests/test_lora_fast.py, on a CPU); ``batch_size`` changes the training recipe itself.

**Transitions** (``mode``): ``"continue"`` keeps training the same adapter and optimiser on
each call's examples, as the tiny student does; ``"retrain"`` starts every ``train`` call from
a fresh adapter (drawn from the seed of the last :meth:`LoRAStudent.reinit`) and a fresh
optimiser, and trains on all the examples accumulated since the last reset, as DataEnvGym does
each cycle (its cost grows with the episode).

**Reset** never reloads the base model: :meth:`LoRAStudent.snapshot` clones the adapter weights
(peft's ``get_peft_model_state_dict`` returns the live tensors, so they are copied here),
the optimiser state, the step count and the accumulated data; :meth:`LoRAStudent.reinit`
draws a fresh adapter from a seed (LoRA A from a seeded ``torch.Generator`` with the
Kaiming-uniform rule peft uses, B zero, so the adapter starts as the identity).

**Evaluation** is batched greedy generation (``model.generate``, left padding after the
shared prefix), the new text cut at the first EOS or newline and stripped; the environment
scores it with the suite's own rule. ``teacher_forced_exact`` is False: a teacher-forced
argmax check is not the same thing as generation followed by the newline cut.

**Determinism**: the adapter initialisation comes from the seed, the order of the examples
from the ``rng`` given to :meth:`LoRAStudent.train`, and LoRA dropout (when ``dropout > 0``)
from torch's generator seeded from that ``rng`` inside ``torch.random.fork_rng`` (the global
torch state is left as it was).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from distillgym.errors import (
    ConfigError,
    TrainingDivergedError,
    check_choice,
    check_int,
    check_number,
    require,
)
from distillgym.runtime import resolve_device
from distillgym.seeding import STREAM_TRAIN, rng_for
from distillgym.students.base import TrainStats, diverged_message
from distillgym.tasks.base import TaskSuite
from distillgym.types import Example

__all__ = [
    "LoRAConfig",
    "LoRAStudent",
    "PROMPT_FORMATS",
    "MODES",
    "BASE_DTYPES",
    "PREFIX_CACHES",
    "DECODES",
    "GPU_KWARGS",
    "default_target_modules",
    "save_tiny_causal_lm",
    "save_random_causal_lm",
    "char_tokenizer",
]

PROMPT_FORMATS = ("fewshot", "plain", "chat")
MODES = ("continue", "retrain")
BASE_DTYPES = ("float32", "bfloat16")
PREFIX_CACHES = ("batch", "step")
DECODES = ("generate", "fixed")

GPU_KWARGS: dict[str, Any] = dict(
    base_dtype="bfloat16", pack_tokens=256, prefix_cache="step", decode="fixed", eval_batch_size=1024, batch_size=64
)
"""The student's GPU path (``student_kwargs`` of ``ArithSkills-SmolLM2-v1``, e.g.
``gym.make(id, student_kwargs={"model": "smollm2", **GPU_KWARGS})``): bf16 base weights, packed
rows, the prefix run once per step, a fixed-length greedy loop, every cell's validation items in
one batch, and one mini-batch of 64 per step of 64 examples (4x fewer optimiser steps than the
id's ``batch_size=16``: another training recipe, whose learning was not measured here). None of
these is a default: the id's numbers stay as they are on every device."""

_STREAM_ADAPTER = 11
"""Stream of :func:`~distillgym.seeding.rng_for` for the adapter's initial weights (local to this module)."""
_STREAM_SHOTS = 12
"""Stream for drawing the few-shot examples (with seed 0: the prefix is part of the format)."""
_OWNER = "LoRAStudent"


@dataclass
class LoRAConfig:
    """The LoRA student's model, adapter and optimiser. Every field is checked by :meth:`validate`."""

    model: str = "smollm2"
    """A named model (``smollm2``) or a local directory made by ``save_pretrained`` (a ``Path`` is
    taken as its string)."""
    rank: int = 8
    """LoRA rank r of every adapted projection."""
    alpha: float = 16.0
    """LoRA alpha; the adapter's update is scaled by alpha / rank."""
    dropout: float = 0.0
    """LoRA dropout on the adapter's input, in [0, 1)."""
    target_modules: tuple[str, ...] | None = None
    """Names of the linear modules to adapt (a name matches a module whose path ends in it);
    None: every ``nn.Linear`` except the output head (all attention and MLP projections)."""
    lr: float = 1e-3
    """AdamW learning rate (constant)."""
    weight_decay: float = 0.0
    """AdamW weight decay on the adapter weights."""
    batch_size: int = 16
    """Examples per optimiser step."""
    epochs_per_step: int = 1
    """Passes over the call's training data per ``train`` call (retrain mode: over all the
    data accumulated so far)."""
    grad_clip: float = 1.0
    """Max global gradient norm of the adapter (0 disables clipping)."""
    mode: str = "continue"
    """``"continue"`` (keep training the adapter) or ``"retrain"`` (a fresh adapter on all
    accumulated data at every call, as DataEnvGym)."""
    prompt_format: str = "fewshot"
    """``"fewshot"``, ``"plain"`` or ``"chat"`` (see the module docstring)."""
    max_shots: int = 8
    """Most skills shown in the few-shot prefix (one line each)."""
    shot_level: int = 1
    """Difficulty level of the few-shot examples (clipped to the suite's highest level)."""
    seed: int = 0
    """Seed of the initial adapter (``reinit`` replaces it)."""
    device: str = "auto"
    """``"auto"`` (cuda if available), ``"cpu"`` or ``"cuda[:N]"``."""
    eval_batch_size: int = 64
    """Rows per forward pass in ``predict`` and ``answer_loss`` (the env asks for every cell's
    items in one call, so a batch size above the number of items evaluates all cells at once)."""
    base_dtype: str = "float32"
    """dtype of the frozen base weights: ``"float32"`` (today's default) or ``"bfloat16"`` (half the
    memory; on CUDA the matmuls already run in bf16 under autocast, so only the rounding of the
    other ops changes; on CPU the base then computes in bf16 too). The adapter stays float32."""
    pack_tokens: int = 0
    """0: each mini-batch is its rows left-padded to the longest (today's default). > 0: the rows
    are packed by length (first fit, longest first) into sequences of at most ``pack_tokens``
    tokens (a longer row gets its own), each row attending only the shared prefix and itself
    (a block-diagonal causal mask), with its own positions; the output head runs only at the
    scored positions. The same losses up to float rounding, with no padding."""
    prefix_cache: str = "batch"
    """``"batch"`` (default): the shared prefix is run once per forward batch, in training and in
    evaluation. ``"step"``: once per call wherever the adapter does not change within it: once per
    ``predict`` / ``answer_loss`` call (its key/value cache reused by every batch), and once per
    ``train`` call that is one mini-batch (``batch_size`` at least the call's examples). A
    training call of several mini-batches still runs it once per mini-batch, because each
    optimiser step changes the adapter that computes it (and its gradient flows through it)."""
    decode: str = "generate"
    """``"generate"`` (default): greedy answers from ``model.generate``, which checks on the host
    after every token whether all rows have stopped. ``"fixed"``: a greedy loop of exactly
    ``max_new_tokens`` steps on the device (argmax kept on the device, explicit 4-D attention masks,
    one transfer to the host at the end); the same answers, since the text is cut at the first
    EOS or newline either way."""

    def validate(self) -> None:
        """Raise :class:`~distillgym.errors.ConfigError` (or ``UnknownNameError``) on a bad field."""
        if not isinstance(self.model, (str, Path)) or not str(self.model):
            raise ConfigError(f"{_OWNER} model must be a model name or a directory path, got {self.model!r}")
        check_int(_OWNER, "rank", self.rank, 1)
        check_number(_OWNER, "alpha", self.alpha, 0, open_low=True)
        check_number(_OWNER, "dropout", self.dropout, 0, 1, open_high=True)
        if self.target_modules is not None:
            tm = self.target_modules
            if isinstance(tm, str) or not isinstance(tm, Sequence) or not tm or not all(
                isinstance(t, str) and t for t in tm
            ):
                raise ConfigError(
                    f"{_OWNER} target_modules must be None or a non-empty list of module names such as "
                    f"['q_proj', 'v_proj'], got {tm!r}"
                )
        check_number(_OWNER, "lr", self.lr, 0, open_low=True)
        check_number(_OWNER, "weight_decay", self.weight_decay, 0)
        check_int(_OWNER, "batch_size", self.batch_size, 1)
        check_int(_OWNER, "epochs_per_step", self.epochs_per_step, 1)
        check_number(_OWNER, "grad_clip", self.grad_clip, 0)
        check_choice(f"{_OWNER} mode", self.mode, MODES)
        check_choice(f"{_OWNER} prompt_format", self.prompt_format, PROMPT_FORMATS)
        check_int(_OWNER, "max_shots", self.max_shots, 1)
        check_int(_OWNER, "shot_level", self.shot_level, 0)
        check_int(_OWNER, "seed", self.seed, 0)
        check_int(_OWNER, "eval_batch_size", self.eval_batch_size, 1)
        check_choice(f"{_OWNER} base_dtype", self.base_dtype, BASE_DTYPES)
        check_int(_OWNER, "pack_tokens", self.pack_tokens, 0)
        check_choice(f"{_OWNER} prefix_cache", self.prefix_cache, PREFIX_CACHES)
        check_choice(f"{_OWNER} decode", self.decode, DECODES)
        if not isinstance(self.device, str):
            raise ConfigError(f"{_OWNER} device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        resolve_device(self.device)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> LoRAConfig:
        """A validated config from keyword arguments; unknown names are an error naming the valid ones."""
        d = dict(d or {})
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ConfigError(f"unknown {_OWNER} argument(s) {unknown}; valid arguments are {known}")
        if isinstance(d.get("target_modules"), list):
            d["target_modules"] = tuple(d["target_modules"])
        if isinstance(d.get("model"), Path):
            d["model"] = str(d["model"])  # the env's config must stay JSON-able
        cfg = cls(**d)
        cfg.validate()
        return cfg


def default_target_modules(model: torch.nn.Module) -> list[str]:
    """Leaf names of every ``nn.Linear`` of ``model`` except its output head, sorted."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = {
        name.rsplit(".", 1)[-1]
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear) and mod is not head and name
    }
    return sorted(names)


def _linear_names(model: torch.nn.Module) -> dict[str, list[str]]:
    """Full module paths of the adaptable layers (Linear, and transformers' Conv1D) by leaf name."""
    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        kinds += (Conv1D,)
    except ImportError:  # pragma: no cover - old transformers
        pass
    out: dict[str, list[str]] = {}
    for name, mod in model.named_modules():
        if name and isinstance(mod, kinds):
            out.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    return out


class LoRAStudent:
    """A pretrained causal LM with a LoRA adapter (see the module docstring, and
    :mod:`distillgym.students.base` for the contract it implements)."""

    name = "lora"
    teacher_forced_exact = False
    """Answers come from generation (cut at EOS or newline), never from a teacher-forced pass."""

    def __init__(self, config: LoRAConfig, suite: TaskSuite) -> None:
        from transformers.utils import logging as hf_logging

        from distillgym.llm.models import resolve_model

        require("peft", "the LoRA student", "lora")
        config.validate()
        hf_logging.set_verbosity_error()
        self.config = config
        self.suite = suite
        self.device = resolve_device(config.device)
        self.path = resolve_model(config.model)  # ConfigError if neither a named model nor a directory
        # Cheap checks first: tokenizer and prompt format before the model's weights are read.
        self.tokenizer = self._load_tokenizer()
        self._check_alphabet()
        self.prefix_ids, self._prompt_tail = self._build_format()
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id)
        nl = self.tokenizer.encode("\n", add_special_tokens=False)
        self._stop_ids = [self.eos_id] + ([nl[0]] if len(nl) == 1 and nl[0] != self.eos_id else [])
        base = self._load_model()
        self.target_modules = self._check_targets(base)
        self.model = self._wrap(base)
        self.model.to(self.device)
        self._cache_kw = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        self._keep_kw = next(
            (k for k in ("logits_to_keep", "num_logits_to_keep") if k in inspect.signature(base.forward).parameters),
            None,
        )
        self._attn = str(getattr(base.config, "_attn_implementation", None) or "eager")
        self._check_fast_paths(base)
        self._lora = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.trainable_params = sum(p.numel() for _, p in self._lora)
        self._flop_terms = self._count_flop_terms(base)
        self.adapter_seed = config.seed
        self.step = 0
        self.accumulated: list[Example] = []
        self.optimizer = self._new_optimizer()
        self.reinit(config.seed)

    @classmethod
    def for_suite(cls, suite: TaskSuite, model: str = "smollm2", device: str | None = None,
                  config: LoRAConfig | None = None, **fields: Any) -> LoRAStudent:
        """The registry's factory: ``make_student("lora", suite, model=..., rank=..., ...)``
        with the :class:`LoRAConfig` fields as keyword arguments (or ``config=``)."""
        if config is not None and fields:
            raise ConfigError("pass either config=LoRAConfig(...) or LoRAConfig fields, not both")
        if config is not None:
            cfg = dataclasses.replace(config)
            if model != "smollm2":
                cfg.model = model
        else:
            cfg = LoRAConfig.from_dict({"model": model, **fields})
        if device is not None:
            cfg.device = device
        cfg.validate()
        return cls(cfg, suite)

    # ------------------------------------------------------------------ loading and checks
    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ConfigError(
                f"{_OWNER}: cannot load a tokenizer from {str(self.path)!r} ({err}); the model directory must hold "
                "the tokenizer files written by tokenizer.save_pretrained"
            ) from None
        if tok.eos_token_id is None:
            raise ConfigError(
                f"{_OWNER}: the tokenizer of {str(self.path)!r} has no EOS token; the student ends every answer "
                "with it, so set tokenizer.eos_token before saving the model"
            )
        return tok

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _encode_exact(self, text: str, what: str) -> list[int]:
        """``text`` encoded, or :class:`ConfigError` if it does not decode back to itself."""
        ids = self._encode(text)
        unk = self.tokenizer.unk_token_id
        back = self.tokenizer.decode(ids)
        if back != text or (unk is not None and unk in ids):
            raise ConfigError(
                f"{_OWNER} prompt_format={self.config.prompt_format!r}: the tokenizer of {str(self.path)!r} cannot "
                f"encode {what} {text!r} (it decodes back as {back!r}); choose another prompt_format"
            )
        return ids

    def _check_alphabet(self) -> None:
        """Every character of the suite's alphabet (and the alphabet as one string) must decode
        back to itself, without the unknown token."""
        tok, alphabet = self.tokenizer, self.suite.alphabet
        unk = tok.unk_token_id
        bad = []
        for text in [*alphabet, alphabet]:
            ids = self._encode(text)
            back = tok.decode(ids)
            if not ids or back != text or (unk is not None and unk in ids):
                bad.append(f"{text!r} -> {ids} -> {back!r}")
        if bad:
            raise ConfigError(
                f"{_OWNER}: the tokenizer of {str(self.path)!r} cannot encode the alphabet of suite "
                f"{self.suite.name!r} ({alphabet!r}): each character must decode back to itself, but "
                f"{'; '.join(bad[:5])}; choose a model whose tokenizer covers these characters"
            )

    def _bos(self) -> list[int]:
        """The BOS token if the tokenizer adds one by default (Llama-2 style), else nothing."""
        tok = self.tokenizer
        if tok.bos_token_id is None:
            return []
        ids = tok.encode("1", add_special_tokens=True)
        return [int(tok.bos_token_id)] if ids and ids[0] == tok.bos_token_id else []

    def few_shot_examples(self) -> list[Example]:
        """The few-shot prefix's examples: per skill (at most ``max_shots``), one level-0 item
        from the train part, drawn from a fixed generator."""
        s = self.suite
        level = min(self.config.shot_level, s.n_difficulties - 1)
        return [
            s.generate(skill, level, rng_for(0, _STREAM_SHOTS, i), 1, split="train")[0]
            for i, skill in enumerate(s.skills[: self.config.max_shots])
        ]

    def _build_format(self) -> tuple[list[int], list[int]]:
        """(shared prefix ids, ids appended after every prompt) for the prompt format."""
        fmt = self.config.prompt_format
        if fmt == "plain":
            return self._bos(), []
        if fmt == "fewshot":
            text = "".join(self.suite.format_line(e) + "\n" for e in self.few_shot_examples())
            return self._bos() + self._encode_exact(text, "the few-shot prefix"), []
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            raise ConfigError(
                f"{_OWNER} prompt_format='chat' needs a tokenizer with a chat template, and the one of "
                f"{str(self.path)!r} has none; use prompt_format='fewshot' or 'plain'"
            )
        mark = "\x00PROMPT\x00"
        text = tok.apply_chat_template([{"role": "user", "content": mark}], tokenize=False, add_generation_prompt=True)
        if text.count(mark) != 1:
            raise ConfigError(f"{_OWNER}: the chat template of {str(self.path)!r} does not contain the user message once")
        before, after = text.split(mark)
        return self._encode_exact(before, "the chat template's text"), self._encode_exact(after, "the chat template's text")

    def prompt_ids(self, prompt: str) -> list[int]:
        """The per-row tokens of ``prompt`` (after the shared prefix)."""
        return self._encode(prompt) + self._prompt_tail

    def format_text(self, prompt: str, answer: str | None = None) -> str:
        """The full text the model sees for ``prompt`` (and ``answer`` plus EOS, if given)."""
        ids = self.prefix_ids + self.prompt_ids(prompt)
        if answer is not None:
            ids = ids + self._encode(answer) + [self.eos_id]
        return self.tokenizer.decode(ids)

    def _load_model(self) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        try:
            dtype = torch.bfloat16 if self.config.base_dtype == "bfloat16" else torch.float32
            model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, dtype=dtype)
        except (OSError, ValueError, KeyError) as err:
            raise ConfigError(
                f"{_OWNER}: cannot load a causal language model from {str(self.path)!r} ({err}); pass a directory "
                "made by AutoModelForCausalLM.save_pretrained, or 'smollm2'"
            ) from None
        model.requires_grad_(False)
        return model

    def _check_targets(self, model: torch.nn.Module) -> list[str]:
        if self.config.target_modules is None:
            targets = default_target_modules(model)
            if not targets:
                raise ConfigError(f"{_OWNER}: the model at {str(self.path)!r} has no nn.Linear layer to adapt")
            return targets
        linear = _linear_names(model)
        paths = [p for ps in linear.values() for p in ps]
        missing = [t for t in self.config.target_modules if not any(p == t or p.endswith("." + t) for p in paths)]
        if missing:
            raise ConfigError(
                f"{_OWNER} target_modules {missing} name no linear layer of the model at {str(self.path)!r}; "
                f"its linear layers are {sorted(linear)} (default, target_modules=None: {default_target_modules(model)})"
            )
        return list(self.config.target_modules)

    def _check_fast_paths(self, base: torch.nn.Module) -> None:
        """``pack_tokens``, ``prefix_cache="step"`` and ``decode="fixed"`` rebuild the prefix's cache
        from its layers (transformers >= 4.54); packing and the fixed loop pass explicit 4-D
        attention masks (boolean for ``sdpa``, additive for ``eager``), and packing applies the
        output head itself: refuse a model or library where any would be wrong, before any training."""
        c = self.config
        if not (c.pack_tokens or c.decode == "fixed" or c.prefix_cache == "step"):
            return
        import transformers

        if not hasattr(transformers.DynamicCache(), "layers"):  # transformers < 4.54 keeps key_cache lists instead
            raise ConfigError(
                f"{_OWNER} pack_tokens > 0, prefix_cache='step' and decode='fixed' reuse the prefix's key/value cache "
                f"through DynamicCache.layers, which transformers {transformers.__version__} does not have; install "
                "transformers 4.54 or newer, or keep the defaults (pack_tokens=0, prefix_cache='batch', decode='generate')"
            )
        if not (c.pack_tokens or c.decode == "fixed"):
            return
        what = "pack_tokens > 0" if c.pack_tokens else "decode='fixed'"
        if self._attn not in ("sdpa", "eager"):
            raise ConfigError(
                f"{_OWNER} {what} builds explicit 4-D attention masks, which work with the 'sdpa' and 'eager' attention "
                f"implementations; the model at {str(self.path)!r} uses {self._attn!r}. Use pack_tokens=0 and "
                "decode='generate', or load a model with attn_implementation='sdpa'"
            )
        cfg = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
        if c.pack_tokens and (getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None)):
            raise ConfigError(
                f"{_OWNER} pack_tokens > 0 applies the output head to the decoder's hidden states, but the model at "
                f"{str(self.path)!r} scales or caps its logits after the head; use pack_tokens=0"
            )
        if c.pack_tokens and (base.get_output_embeddings() is None or not hasattr(base, "get_decoder")):
            raise ConfigError(f"{_OWNER} pack_tokens > 0 needs a causal LM with a decoder and an output head; use pack_tokens=0")
        if c.pack_tokens:
            self._check_head(base)

    @torch.no_grad()
    def _check_head(self, base: torch.nn.Module) -> None:
        """Packing takes the logits as the output head of the decoder's hidden states. Some models'
        own forward does more after the head (Granite divides the logits by ``logits_scaling``;
        no config field names every such step), so compare the two on a few tokens and refuse
        the model if they differ."""
        ids = torch.tensor([(self.prefix_ids + self._encode(self.suite.alphabet))[:32]], device=self.device)
        was_training = base.training
        base.eval()
        try:
            with self._autocast():
                full = base(input_ids=ids, use_cache=False).logits.float()
                own = base.get_output_embeddings()(base.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state)
        finally:
            base.train(was_training)
        # the same kernels on the same tokens: equal, up to bf16 rounding on a GPU; a scaling of the logits is not
        if full.shape != own.shape or not torch.allclose(own.float(), full, rtol=2e-2, atol=1e-3):
            raise ConfigError(
                f"{_OWNER} pack_tokens > 0 applies the output head to the decoder's hidden states, but the model at "
                f"{str(self.path)!r} changes its logits after the head (its forward's logits differ from the head's "
                "output on the same tokens); use pack_tokens=0"
            )

    def _wrap(self, base: torch.nn.Module) -> torch.nn.Module:
        from peft import LoraConfig, get_peft_model

        c = self.config
        lc = LoraConfig(
            r=c.rank, lora_alpha=c.alpha, lora_dropout=c.dropout, target_modules=self.target_modules,
            bias="none", task_type="CAUSAL_LM",
        )
        with torch.random.fork_rng(devices=[]):  # peft draws A from the global generator; reinit redraws it
            return get_peft_model(base, lc)

    # ------------------------------------------------------------------ state
    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            [p for _, p in self._lora], lr=self.config.lr, betas=(0.9, 0.999), weight_decay=self.config.weight_decay
        )

    @torch.no_grad()
    def _init_adapter(self, seed: int) -> None:
        """LoRA A ~ Kaiming-uniform(a=sqrt(5)) (peft's rule: U(-1/sqrt(fan_in), 1/sqrt(fan_in)))
        from a generator seeded by ``seed`` alone, in parameter-name order; B = 0."""
        g = torch.Generator(device="cpu").manual_seed(int(rng_for(seed, _STREAM_ADAPTER).integers(2**63)))
        for name, p in self._lora:
            if ".lora_A." in name:
                w = torch.empty(p.shape, dtype=torch.float32)
                torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
                p.copy_(w)
            elif ".lora_B." in name:
                p.zero_()
            else:  # pragma: no cover - bias="none" makes A and B the only trainable tensors
                raise ConfigError(f"{_OWNER}: unexpected trainable parameter {name}")

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """A copy of the adapter weights (cloned: peft's state-dict helper returns live tensors)."""
        return {n: p.detach().clone() for n, p in self._lora}

    @torch.no_grad()
    def load_adapter_state(self, state: dict[str, torch.Tensor]) -> None:
        """Copy ``state`` (from :meth:`adapter_state`) into the adapter."""
        if set(state) != {n for n, _ in self._lora}:
            raise ConfigError(f"{_OWNER}: the adapter state does not match this student's adapter (other targets or rank?)")
        for n, p in self._lora:
            p.copy_(state[n])

    def snapshot(self) -> dict[str, Any]:
        """Adapter weights (cloned), optimiser state, step, accumulated data and adapter seed."""
        return {
            "adapter": self.adapter_state(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.optimizer.state else None,
            "step": self.step,
            "accumulated": list(self.accumulated),
            "adapter_seed": self.adapter_seed,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot` exactly; the base model is not touched."""
        self.load_adapter_state(snapshot["adapter"])
        self.optimizer = self._new_optimizer()
        if snapshot.get("optimizer") is not None:
            self.optimizer.load_state_dict(copy.deepcopy(snapshot["optimizer"]))
        self.step = int(snapshot.get("step", 0))
        self.accumulated = list(snapshot.get("accumulated", []))
        self.adapter_seed = int(snapshot.get("adapter_seed", self.adapter_seed))

    def reinit(self, seed: int) -> None:
        """A fresh adapter drawn from ``seed`` (A seeded, B zero), a fresh optimiser, no
        accumulated data. The base model is kept (never reloaded)."""
        seed = check_int(_OWNER, "reinit seed", seed, 0)
        self._init_adapter(seed)
        self.adapter_seed = seed
        self.optimizer = self._new_optimizer()
        self.step = 0
        self.accumulated = []

    def costs(self) -> dict[str, Any]:
        """``n_params`` (base and adapter), ``trainable_params`` (adapter), ``flops_per_token``
        (see :meth:`flops_per_token`, at the longest row of the suite after the prefix)."""
        s = self.suite
        longest = len(self.prefix_ids) + len(self._prompt_tail) + s.max_prompt_len + s.max_answer_len + 1
        return {
            "n_params": self.n_params,
            "trainable_params": self.trainable_params,
            "flops_per_token": self.flops_per_token(longest),
        }

    # ------------------------------------------------------------------ accounting
    def _count_flop_terms(self, base: torch.nn.Module) -> dict[str, float]:
        head = base.get_output_embeddings()
        body = sum(
            m.weight.numel() for m in base.modules() if isinstance(m, torch.nn.Linear) and m is not head
        )
        cfg = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
        layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
        heads = int(getattr(cfg, "num_attention_heads", 0) or 0)
        head_dim = int(getattr(cfg, "head_dim", 0) or (cfg.hidden_size // max(heads, 1)))
        return {
            "body": float(body),
            "head": float(head.weight.numel()) if head is not None else 0.0,
            "attn": float(layers * heads * head_dim),
        }

    def flops_per_token(self, context: int) -> float:
        """Training FLOPs of one token at context length ``context``, nanoGPT's estimate adapted to
        a frozen base: the base's linear weights N (output head included) cost 2N forward and 2N
        backward (input gradients only), the adapter's n cost 6n, attention 12 L H d T.
        ``train`` counts the output head only at the positions whose logits it computes."""
        t = self._flop_terms
        return 4 * (t["body"] + t["head"]) + 6 * self.trainable_params + 12 * t["attn"] * context

    def _batch_flops(self, tokens: int, kept: int, context: int) -> float:
        t = self._flop_terms
        return tokens * (4 * t["body"] + 6 * self.trainable_params + 12 * t["attn"] * context) + kept * 4 * t["head"]

    # ------------------------------------------------------------------ batching
    def _autocast(self) -> Any:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def _pad_left(self, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids`` (B, T) with every row right-aligned (pad on the left) and its ``mask`` (B, T)."""
        T = max(len(r) for r in rows)
        ids = np.full((len(rows), T), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), T), dtype=np.int64)
        for b, r in enumerate(rows):
            ids[b, T - len(r):] = r
            mask[b, T - len(r):] = 1
        return torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)

    def _context(self, batch: int) -> tuple[dict[str, Any], int]:
        """Model arguments carrying the shared prefix (its cache repeated ``batch`` times) and
        the prefix length; run with gradients when the caller has them enabled."""
        P = len(self.prefix_ids)
        if not P:
            return {}, 0
        keep = {self._keep_kw: 1} if self._keep_kw is not None else {}
        pre = self.model(input_ids=torch.tensor([self.prefix_ids], device=self.device), use_cache=True, **keep)
        cache = getattr(pre, "cache", None) or pre.past_key_values
        cache.batch_repeat_interleave(batch)
        return {self._cache_kw: cache}, P

    def _prefix_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The shared prefix's keys and values per layer, batch 1 (with gradients when enabled)."""
        keep = {self._keep_kw: 1} if self._keep_kw is not None else {}
        pre = self.model(input_ids=torch.tensor([self.prefix_ids], device=self.device), use_cache=True, **keep)
        cache = getattr(pre, "cache", None) or pre.past_key_values
        return [(layer.keys, layer.values) for layer in cache.layers]

    @staticmethod
    def _cache_from(kv: list[tuple[torch.Tensor, torch.Tensor]], batch: int) -> Any:
        """A fresh cache holding ``kv`` (from :meth:`_prefix_kv`) for ``batch`` rows; the forward
        pass appends to its own copy, so ``kv`` can serve any number of batches."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=[(k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1)) for k, v in kv])

    def _step_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        """The prefix's cache for a whole evaluation call (``prefix_cache="step"``), else None."""
        if self.config.prefix_cache != "step" or not self.prefix_ids:
            return None
        with self._autocast():
            return self._prefix_kv()

    def _mask4d(self, allowed: torch.Tensor) -> torch.Tensor:
        """A (B, Q, K) boolean "query may attend key" as the model's 4-D attention mask: boolean
        for ``sdpa``, additive (0 or the float32 minimum) for ``eager``."""
        if self._attn == "sdpa":
            return allowed[:, None]
        return torch.zeros(allowed.shape, dtype=torch.float32, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(torch.float32).min
        )[:, None]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, keep: int,
                 kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """Logits (B, keep, V) of the last ``keep`` positions of the left-padded rows ``ids``,
        each row preceded by the shared prefix (run here, or its cache ``kv`` if given)."""
        B = ids.shape[0]
        if kv is not None:
            extra, P = {self._cache_kw: self._cache_from(kv, B)}, len(self.prefix_ids)
        else:
            extra, P = self._context(B)
        attention = mask if not P else torch.cat([mask.new_ones(B, P), mask], dim=1)
        position = P + (mask.cumsum(1) - 1).clamp(min=0)
        if self._keep_kw is not None:
            extra[self._keep_kw] = keep
        out = self.model(input_ids=ids, attention_mask=attention, position_ids=position, **extra)
        return out.logits[:, -keep:]

    def _rows(self, examples: Sequence[Example]) -> tuple[list[list[int]], list[int]]:
        rows, n_scored = [], []
        for ex in examples:
            a = self._encode(ex.answer) + [self.eos_id]
            rows.append(self.prompt_ids(ex.prompt) + a)
            n_scored.append(len(a))
        return rows, n_scored

    def _batch_loss(self, examples: Sequence[Example], kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, int, float]:
        """(mean token loss of the batch, (B,) per-row mean loss detached, tokens, training FLOPs).

        Tokens are the rows' real tokens plus the prefix once; FLOPs follow
        :meth:`flops_per_token` with the output head counted at the computed logits only.
        ``kv``: the prefix's cache, computed once by the caller (``prefix_cache="step"``)."""
        if self.config.pack_tokens:
            return self._packed_loss(examples, kv)
        rows, n_scored = self._rows(examples)
        ids, mask = self._pad_left(rows)
        K = max(n_scored)
        with self._autocast():
            logits = self._forward(ids, mask, K + 1, kv)[:, :-1].float()  # position t predicts t + 1
        targets = torch.full((len(rows), K), -100, dtype=torch.long, device=self.device)
        for b, n in enumerate(n_scored):
            targets[b, K - n:] = ids[b, ids.shape[1] - n:]
        tok = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="none")
        tok = tok.view(targets.shape)
        scored = (targets != -100).sum(1)
        loss = tok.sum() / scored.sum()
        per_row = (tok.detach().sum(1) / scored).double()
        tokens = sum(len(r) for r in rows) + len(self.prefix_ids)  # the mask's sum, without a host sync
        kept = len(rows) * (K + 1) + (1 if self.prefix_ids else 0)
        return loss, per_row, tokens, self._batch_flops(tokens, kept, len(self.prefix_ids) + ids.shape[1])

    @staticmethod
    def _pack(lengths: Sequence[int], capacity: int) -> list[list[int]]:
        """Row indices per packed sequence: first fit, longest row first (ties in row order), at
        most ``capacity`` tokens a sequence unless one row alone is longer."""
        bins: list[list[int]] = []
        fill: list[int] = []
        for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
            for b in range(len(bins)):
                if fill[b] + lengths[i] <= capacity:
                    bins[b].append(i)
                    fill[b] += lengths[i]
                    break
            else:
                bins.append([i])
                fill.append(lengths[i])
        return bins

    def _packed_loss(self, examples: Sequence[Example], kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, int, float]:
        """:meth:`_batch_loss` with the rows packed (``pack_tokens``): each row attends the shared
        prefix and its own earlier tokens only, at the positions it has alone after the prefix;
        the output head runs at the scored positions only."""
        rows, n_scored = self._rows(examples)
        P, dev = len(self.prefix_ids), self.device
        lengths = [len(r) for r in rows]
        bins = self._pack(lengths, max(self.config.pack_tokens, max(lengths)))
        R, T = len(bins), max(sum(lengths[i] for i in b) for b in bins)
        ids = np.full((R, T), self.pad_id, dtype=np.int64)
        pos = np.zeros((R, T), dtype=np.int64)
        seg = np.full((R, T), -1, dtype=np.int64)
        q_row: list[int] = []
        q_col: list[int] = []
        target: list[int] = []
        owner: list[int] = []
        for r, b in enumerate(bins):
            o = 0
            for i in b:
                L, n = lengths[i], n_scored[i]
                ids[r, o : o + L] = rows[i]
                pos[r, o : o + L] = P + np.arange(L)
                seg[r, o : o + L] = i
                q_row += [r] * n
                q_col += range(o + L - n - 1, o + L - 1)  # position t predicts t + 1
                target += rows[i][L - n :]
                owner += [i] * n
                o += L
        seg_t = torch.from_numpy(seg).to(dev)
        real = seg_t >= 0
        eye = torch.eye(T, dtype=torch.bool, device=dev)
        own = (seg_t[:, :, None] == seg_t[:, None, :]) & torch.ones(T, T, dtype=torch.bool, device=dev).tril()
        allowed = (own & real[:, :, None]) | (eye & ~real[:, :, None])  # a padding query sees only itself
        if P:
            allowed = torch.cat([real[:, :, None].expand(R, T, P), allowed], dim=2)
        base = self.model.get_base_model()
        decoder = base.get_decoder()
        with self._autocast():
            extra: dict[str, Any] = {}
            if P:
                extra = {self._decoder_cache_kw(decoder): self._cache_from(kv if kv is not None else self._prefix_kv(), R),
                         "use_cache": True}
            hidden = decoder(input_ids=torch.from_numpy(ids).to(dev), attention_mask=self._mask4d(allowed),
                             position_ids=torch.from_numpy(pos).to(dev), **extra).last_hidden_state
            rr = torch.tensor(q_row, device=dev)
            cc = torch.tensor(q_col, device=dev)
            logits = base.get_output_embeddings()(hidden[rr, cc]).float()
        tok = F.cross_entropy(logits, torch.tensor(target, device=dev), reduction="none")
        loss = tok.sum() / len(target)
        sums = torch.zeros(len(rows), dtype=tok.dtype, device=dev).index_add_(0, torch.tensor(owner, device=dev),
                                                                              tok.detach())
        per_row = (sums / torch.tensor(n_scored, dtype=tok.dtype, device=dev)).double()
        tokens = sum(lengths) + P
        kept = len(target) + (1 if P else 0)
        return loss, per_row, tokens, self._batch_flops(tokens, kept, P + max(lengths))

    def _decoder_cache_kw(self, decoder: torch.nn.Module) -> str:
        return "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"

    # ------------------------------------------------------------------ training
    def train(self, examples: Sequence[Example], rng: np.random.Generator | None = None) -> TrainStats:
        """Gradient steps on ``examples`` (``epochs_per_step`` passes in mini-batches of
        ``batch_size``, shuffled with ``rng``). In retrain mode the adapter and optimiser first
        start afresh and the passes run over everything accumulated since the reset, this call's
        examples included.

        ``TrainStats.tokens`` counts every row's real tokens plus the shared prefix once per
        mini-batch (it is run once per batch); ``cell_loss`` is the mean answer loss of this
        call's examples per (skill, level), measured in the first pass, on the mini-batch each
        was trained in, before its optimiser step.

        Raises :class:`TrainingDivergedError` before the optimiser step if the loss or the
        gradient norm is not finite (that step is not applied; ``applied`` counts the earlier
        optimiser steps of this call)."""
        t0 = time.perf_counter()
        stats = TrainStats()
        examples = list(examples)
        if not examples:
            return stats
        if rng is None:
            rng = rng_for(self.adapter_seed, STREAM_TRAIN, self.step)
        c = self.config
        if c.mode == "retrain":
            first_new = len(self.accumulated)
            self.accumulated.extend(examples)
            self._init_adapter(self.adapter_seed)
            self.optimizer = self._new_optimizer()
            pool = self.accumulated
        else:
            first_new, pool = 0, examples
        torch_seed = int(rng.integers(2**63))
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        losses: list[float] = []
        cell_sum: dict[tuple[str, int], float] = {}
        cell_n: dict[tuple[str, int], int] = {}
        self.model.train()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(torch_seed)  # LoRA dropout only
            fast = bool(c.pack_tokens) or c.prefix_cache == "step"
            if fast:
                losses = self._train_passes(pool, first_new, rng, stats, cell_sum, cell_n)
            for epoch in range(0 if fast else c.epochs_per_step):
                order = rng.permutation(len(pool))
                for i in range(0, len(pool), c.batch_size):
                    idx = order[i : i + c.batch_size]
                    batch = [pool[j] for j in idx]
                    loss, per_row, tokens, flops = self._batch_loss(batch)
                    if not torch.isfinite(loss):
                        self.optimizer.zero_grad(set_to_none=True)
                        raise TrainingDivergedError(self._diverged(f"training loss became {loss.item()}", stats),
                                                    stats.optimizer_steps)
                    if epoch == 0:
                        for j, r in zip(idx, per_row.tolist(), strict=True):
                            if j >= first_new:
                                key = (pool[j].skill, pool[j].difficulty)
                                cell_sum[key] = cell_sum.get(key, 0.0) + r
                                cell_n[key] = cell_n.get(key, 0) + 1
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    params = [p for _, p in self._lora]
                    if c.grad_clip > 0:
                        norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
                    else:
                        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
                    if not torch.isfinite(norm):
                        self.optimizer.zero_grad(set_to_none=True)
                        raise TrainingDivergedError(self._diverged(f"gradient norm became {norm.item()}", stats),
                                                    stats.optimizer_steps)
                    self.optimizer.step()
                    self.step += 1
                    losses.append(loss.item())
                    stats.tokens += tokens
                    stats.optimizer_steps += 1
                    stats.flops += flops
        self.model.eval()
        stats.examples = len(examples)
        stats.loss = float(np.mean(losses))
        stats.cell_loss = {k: cell_sum[k] / cell_n[k] for k in cell_sum}
        stats.seconds = time.perf_counter() - t0
        return stats

    def _train_passes(self, pool: list[Example], first_new: int, rng: np.random.Generator, stats: TrainStats,
                      cell_sum: dict[tuple[str, int], float], cell_n: dict[tuple[str, int], int]) -> list[float]:
        """The passes of :meth:`train` with ``pack_tokens`` or ``prefix_cache="step"``: the same
        order, mini-batches and optimiser steps, reading the device once per optimiser step (is the
        loss and the gradient norm finite, before the step) and once at the end (the losses and
        the per-row losses), instead of several times per mini-batch. Returns the batch losses."""
        c = self.config
        params = [p for _, p in self._lora]
        losses: list[torch.Tensor] = []
        rows: list[tuple[np.ndarray, torch.Tensor]] = []
        for epoch in range(c.epochs_per_step):
            order = rng.permutation(len(pool))
            for i in range(0, len(pool), c.batch_size):
                idx = order[i : i + c.batch_size]
                loss, per_row, tokens, flops = self._batch_loss([pool[j] for j in idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if c.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(params, c.grad_clip)
                else:
                    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
                finite = torch.stack([torch.isfinite(loss.detach()), torch.isfinite(norm)]).tolist()  # one sync
                if not all(finite):
                    self.optimizer.zero_grad(set_to_none=True)
                    what = f"training loss became {loss.item()}" if not finite[0] else f"gradient norm became {norm.item()}"
                    raise TrainingDivergedError(self._diverged(what, stats), stats.optimizer_steps)
                self.optimizer.step()
                self.step += 1
                losses.append(loss.detach())
                if epoch == 0:
                    rows.append((idx, per_row))
                stats.tokens += tokens
                stats.optimizer_steps += 1
                stats.flops += flops
        if rows:
            per_row_all = torch.cat([r for _, r in rows]).tolist()
            idx_all = np.concatenate([i for i, _ in rows])
            for j, r in zip(idx_all, per_row_all, strict=True):
                if j >= first_new:
                    key = (pool[j].skill, pool[j].difficulty)
                    cell_sum[key] = cell_sum.get(key, 0.0) + r
                    cell_n[key] = cell_n.get(key, 0) + 1
        return torch.stack(losses).tolist()

    def _diverged(self, what: str, stats: TrainStats) -> str:
        return diverged_message(what, self.step, stats.optimizer_steps, "adapter", "Lower LoRAStudent lr.")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def answer_loss(self, examples: Sequence[Example]) -> np.ndarray:
        """Per example, the mean token cross-entropy of the gold answer and EOS given the prompt."""
        self.model.eval()
        out = np.zeros(len(examples), dtype=np.float64)
        bs = self.config.eval_batch_size
        kv = self._step_kv() if len(examples) else None
        for i in range(0, len(examples), bs):
            out[i : i + bs] = self._batch_loss(examples[i : i + bs], kv)[1].cpu().numpy()
        return out

    @torch.no_grad()
    def predict(self, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
        """Greedy answers, batched with left padding (after the shared prefix): the generated
        text up to the first EOS or newline, stripped."""
        from transformers import GenerationConfig

        max_new_tokens = check_int("predict", "max_new_tokens", max_new_tokens, 1)
        self.model.eval()
        gen = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, pad_token_id=self.pad_id,
            eos_token_id=self._stop_ids,
        )
        results: list[str] = []
        bs = self.config.eval_batch_size
        kv = self._step_kv() if len(prompts) else None
        for i in range(0, len(prompts), bs):
            rows = [self.prompt_ids(p) for p in prompts[i : i + bs]]
            if self.config.decode == "fixed":
                results += [self._decode_answer(r) for r in self._greedy_fixed(rows, kv, max_new_tokens)]
                continue
            ids, mask = self._pad_left(rows)
            B = ids.shape[0]
            with self._autocast():
                if kv is not None:
                    extra, P = {self._cache_kw: self._cache_from(kv, B)}, len(self.prefix_ids)
                else:
                    extra, P = self._context(B)
                if P:
                    prefix = torch.tensor([self.prefix_ids], device=self.device).expand(B, P)
                    ids, mask = torch.cat([prefix, ids], 1), torch.cat([mask.new_ones(B, P), mask], 1)
                out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=gen, **extra)
            for row in out[:, ids.shape[1]:].tolist():
                results.append(self._decode_answer(row))
        return results

    def _greedy_fixed(self, rows: list[list[int]], kv: list[tuple[torch.Tensor, torch.Tensor]] | None,
                      max_new_tokens: int) -> list[list[int]]:
        """``decode="fixed"``: exactly ``max_new_tokens`` greedy tokens per row after the shared
        prefix and the left-padded ``rows``, with explicit 4-D masks (so the model builds none
        from a padding mask) and the argmax kept on the device; one transfer at the end."""
        from transformers import DynamicCache

        ids, mask = self._pad_left(rows)
        B, T = ids.shape
        P, dev = len(self.prefix_ids), self.device
        with self._autocast():
            if P:
                cache = self._cache_from(kv if kv is not None else self._prefix_kv(), B)
            else:
                cache = DynamicCache()
            real = mask.bool()
            causal = torch.ones(T, T, dtype=torch.bool, device=dev).tril()
            eye = torch.eye(T, dtype=torch.bool, device=dev)
            allowed = (causal[None] & real[:, None, :]) | (eye[None] & ~real[:, :, None])  # a pad query sees itself
            if P:
                allowed = torch.cat([torch.ones(B, T, P, dtype=torch.bool, device=dev), allowed], dim=2)
            keys = torch.cat([torch.ones(B, P, dtype=torch.bool, device=dev), real], dim=1)
            pos = P + (mask.cumsum(1) - 1).clamp(min=0)
            keep = {self._keep_kw: 1} if self._keep_kw is not None else {}
            out = self.model(input_ids=ids, attention_mask=self._mask4d(allowed), position_ids=pos, use_cache=True,
                             **{self._cache_kw: cache}, **keep)
            token = out.logits[:, -1].argmax(-1)
            new = [token]
            at = pos[:, -1:] + 1
            for _ in range(max_new_tokens - 1):
                keys = torch.cat([keys, keys.new_ones(B, 1)], dim=1)
                out = self.model(input_ids=token[:, None], attention_mask=self._mask4d(keys[:, None, :]), position_ids=at,
                                 use_cache=True, **{self._cache_kw: cache}, **keep)
                token = out.logits[:, -1].argmax(-1)
                new.append(token)
                at = at + 1
        return torch.stack(new, dim=1).tolist()

    def _decode_answer(self, ids: list[int]) -> str:
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text.split("\n", 1)[0].strip()


def char_tokenizer(chars: str, chat_template: bool = True) -> Any:
    """A one-character-per-token tokenizer: vocabulary ``<pad> <unk> <s> </s>`` (ids 0 to 3) and
    the distinct characters of ``chars``; ``chat_template`` adds the template
    ``<s>{role[0]}:{content}</s>`` per message and ``<s>a:`` as the generation prompt."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    vocab = {t: i for i, t in enumerate(specials + sorted(set(chars) - set(specials)))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>")
    if chat_template:
        tok.chat_template = (
            "{% for m in messages %}{{ '<s>' + m['role'][0] + ':' + m['content'] + '</s>' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<s>a:' }}{% endif %}"
        )
    return tok


def save_random_causal_lm(path: str | Path, chars: str, config: Any, chat_template: bool = True, seed: int = 0,
                          dtype: torch.dtype = torch.float32, device: str = "cpu") -> str:
    """Save a randomly initialised causal LM of any shape (``config``: a transformers config,
    e.g. ``LlamaConfig(...)`` or ``Qwen2Config(...)``, with ``vocab_size`` at least the
    tokenizer's) and :func:`char_tokenizer` of ``chars`` to ``path``; return the path. The pad,
    BOS and EOS ids of ``config`` are set to the tokenizer's (0, 2, 3). For timing a real shape
    with no download (benchmarks/lora_student.py); weights from ``seed``, drawn on ``device``
    (a GPU draws a large model much faster) and saved in ``dtype``."""
    from transformers import AutoModelForCausalLM

    tok = char_tokenizer(chars, chat_template)
    if int(config.vocab_size) < len(tok):
        raise ConfigError(f"save_random_causal_lm: vocab_size {config.vocab_size} is below the tokenizer's {len(tok)}")
    config.pad_token_id, config.bos_token_id, config.eos_token_id = 0, 2, 3
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.device(device):
        torch.manual_seed(int(seed))
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def save_tiny_causal_lm(path: str | Path, chars: str, chat_template: bool = True, seed: int = 0) -> str:
    """Save a small, randomly initialised causal LM with a one-character-per-token tokenizer to
    ``path`` (``save_pretrained`` of both) and return the path: a local model for tests and smoke
    runs of the LoRA student without a download. It is a real model (trained by real gradient
    steps), only small and untrained.

    The model is a 2-layer Llama of width 32 (4 heads, 2 key/value heads, MLP width 64,
    initializer range 0.3 so that a frozen tied embedding still allows confident logits; about
    25k parameters); the tokenizer is :func:`char_tokenizer` of ``chars``. The weights come from
    ``seed`` alone."""
    from transformers import LlamaConfig

    n_vocab = len(char_tokenizer(chars, chat_template=False))
    cfg = LlamaConfig(vocab_size=n_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=True,
                      initializer_range=0.3)
    return save_random_causal_lm(path, chars, cfg, chat_template=chat_template, seed=seed)
