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
    "default_target_modules",
    "save_tiny_causal_lm",
]

PROMPT_FORMATS = ("fewshot", "plain", "chat")
MODES = ("continue", "retrain")

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
    """Rows per forward pass in ``predict`` and ``answer_loss``."""

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
            model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, dtype=torch.float32)
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

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
        """Logits (B, keep, V) of the last ``keep`` positions of the left-padded rows ``ids``,
        each row preceded by the shared prefix."""
        B = ids.shape[0]
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

    def _batch_loss(self, examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor, int, float]:
        """(mean token loss of the batch, (B,) per-row mean loss detached, tokens, training FLOPs).

        Tokens are the rows' real tokens plus the prefix once; FLOPs follow
        :meth:`flops_per_token` with the output head counted at the computed logits only."""
        rows, n_scored = self._rows(examples)
        ids, mask = self._pad_left(rows)
        K = max(n_scored)
        with self._autocast():
            logits = self._forward(ids, mask, K + 1)[:, :-1].float()  # position t predicts t + 1
        targets = torch.full((len(rows), K), -100, dtype=torch.long, device=self.device)
        for b, n in enumerate(n_scored):
            targets[b, K - n:] = ids[b, ids.shape[1] - n:]
        tok = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="none")
        tok = tok.view(targets.shape)
        scored = (targets != -100).sum(1)
        loss = tok.sum() / scored.sum()
        per_row = (tok.detach().sum(1) / scored).double()
        tokens = int(mask.sum().item()) + len(self.prefix_ids)
        kept = len(rows) * (K + 1) + (1 if self.prefix_ids else 0)
        return loss, per_row, tokens, self._batch_flops(tokens, kept, len(self.prefix_ids) + ids.shape[1])

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
            for epoch in range(c.epochs_per_step):
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

    def _diverged(self, what: str, stats: TrainStats) -> str:
        return diverged_message(what, self.step, stats.optimizer_steps, "adapter", "Lower LoRAStudent lr.")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def answer_loss(self, examples: Sequence[Example]) -> np.ndarray:
        """Per example, the mean token cross-entropy of the gold answer and EOS given the prompt."""
        self.model.eval()
        out = np.zeros(len(examples), dtype=np.float64)
        bs = self.config.eval_batch_size
        for i in range(0, len(examples), bs):
            out[i : i + bs] = self._batch_loss(examples[i : i + bs])[1].cpu().numpy()
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
        for i in range(0, len(prompts), bs):
            rows = [self.prompt_ids(p) for p in prompts[i : i + bs]]
            ids, mask = self._pad_left(rows)
            B = ids.shape[0]
            with self._autocast():
                extra, P = self._context(B)
                if P:
                    prefix = torch.tensor([self.prefix_ids], device=self.device).expand(B, P)
                    ids, mask = torch.cat([prefix, ids], 1), torch.cat([mask.new_ones(B, P), mask], 1)
                out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=gen, **extra)
            for row in out[:, ids.shape[1]:].tolist():
                results.append(self._decode_answer(row))
        return results

    def _decode_answer(self, ids: list[int]) -> str:
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return text.split("\n", 1)[0].strip()


def save_tiny_causal_lm(path: str | Path, chars: str, chat_template: bool = True, seed: int = 0) -> str:
    """Save a small, randomly initialised causal LM with a one-character-per-token tokenizer to
    ``path`` (``save_pretrained`` of both) and return the path: a local model for tests and smoke
    runs of the LoRA student without a download. It is a real model (trained by real gradient
    steps), only small and untrained.

    The model is a 2-layer Llama of width 32 (4 heads, 2 key/value heads, MLP width 64,
    initializer range 0.3 so that a frozen tied embedding still allows confident logits; about
    25k parameters); the tokenizer's vocabulary is ``<pad> <unk> <s> </s>`` and the distinct
    characters of ``chars``. ``chat_template`` adds the template ``<s>{role[0]}:{content}</s>``
    per message and ``<s>a:`` as the generation prompt (its letters must be in ``chars`` for the
    ``chat`` prompt format to encode it). The weights come from ``seed`` alone."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

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
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      pad_token_id=0, bos_token_id=2, eos_token_id=3, tie_word_embeddings=True,
                      initializer_range=0.3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
