"""Where things run and where they are kept: the torch device, the cache directory, headless plots.

Shared by every part (students, the LLM engine and backends, teachers, the harness), so it imports
nothing heavy at module level: torch and matplotlib are imported when a function needs them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, require

__all__ = ["resolve_device", "cache_dir", "pyplot", "free_memory"]


def resolve_device(device: str) -> Any:
    """The ``torch.device`` for ``device``: ``"auto"`` picks ``cuda`` when present, else ``cpu``;
    ``"cpu"`` and ``"cuda[:N]"`` force it (``cuda`` without CUDA is a :class:`ConfigError`)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def free_memory(device: Any) -> int | None:
    """Bytes free on ``device`` (a ``torch.device``): CUDA's free memory, or the host's available
    memory for ``cpu`` (Linux ``MemAvailable``, else free physical pages); None when unknown."""
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def cache_dir() -> Path:
    """distillgym's cache directory (pre-trained student bases, converted models, DoReMi's reference
    runs): ``$DISTILLGYM_CACHE``, else ``$XDG_CACHE_HOME/distillgym``, else ``~/.cache/distillgym``."""
    root = os.environ.get("DISTILLGYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "distillgym"
    )
    return Path(root)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (the ``plots`` extra)."""
    require("matplotlib", "plotting", "plots").use("Agg")
    import matplotlib.pyplot as plt

    return plt
