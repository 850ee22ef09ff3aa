"""Students: real torch language models trained by gradient steps.

Imported lazily by the environment so that ``import distillgym`` does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["StudentConfig", "TinyStudent", "TrainStats", "CharTokenizer", "resolve_device"]


def __getattr__(name: str) -> Any:
    if name in ("StudentConfig", "TinyStudent", "TrainStats", "resolve_device"):
        from distillgym.students import tiny

        return getattr(tiny, name)
    if name == "CharTokenizer":
        from distillgym.students.tokenizer import CharTokenizer

        return CharTokenizer
    raise AttributeError(name)
