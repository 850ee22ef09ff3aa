"""Students: real torch language models trained by gradient steps.

The contract and the registry (:mod:`distillgym.students.base`) import no torch; concrete
students are imported when built, so that ``import distillgym`` does not import torch.
"""

from __future__ import annotations

from typing import Any

from distillgym.students.base import STUDENTS, Student, TrainStats, make_student, register_student

__all__ = [
    "STUDENTS",
    "Student",
    "TrainStats",
    "make_student",
    "register_student",
    "StudentConfig",
    "TinyStudent",
    "CharTokenizer",
    "resolve_device",
    "PlainStudent",
    "PopulationStudent",
]


def __getattr__(name: str) -> Any:
    if name in ("StudentConfig", "TinyStudent", "resolve_device"):
        from distillgym.students import hf_student

        return getattr(hf_student, name)
    if name == "PlainStudent":
        from distillgym.students.torch_student import PlainStudent

        return PlainStudent
    if name == "PopulationStudent":
        from distillgym.students.population import PopulationStudent

        return PopulationStudent
    if name == "CharTokenizer":
        from distillgym.students.tokenizer import CharTokenizer

        return CharTokenizer
    raise AttributeError(name)
