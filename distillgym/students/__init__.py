"""Students: real torch language models trained by gradient steps.

The contract is in :mod:`distillgym.students.base`. Built in (the registry :data:`STUDENTS`):

- ``tiny``: :mod:`~distillgym.students.hf_student`, a small Llama-config causal transformer over
  characters built with Hugging Face transformers (the v0 and v1 ids);
- ``plain``: :mod:`~distillgym.students.torch_student`, the same architecture written in plain torch,
  with token-row replay (the v2 ids); :mod:`~distillgym.students.population` trains P of them as one
  batched model (the native vector env);
- ``lora``: :mod:`~distillgym.students.lora`, a pretrained Hugging Face causal LM with a LoRA adapter.

The registry imports no torch; a student's module is imported when it is built, so that
``import distillgym`` does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillgym.registry import Registry
from distillgym.students.base import Student, TrainStats
from distillgym.tasks.base import TaskSuite

__all__ = [
    "STUDENTS",
    "Student",
    "TrainStats",
    "make_student",
    "register_student",
    "StudentConfig",
    "TinyStudent",
    "CharTokenizer",
    "PlainStudent",
    "PopulationStudent",
    "POPULATIONS",
    "register_population",
    "make_population",
]

STUDENTS = Registry("student", {
    "tiny": "distillgym.students.hf_student:TinyStudent.for_suite",
    "plain": "distillgym.students.torch_student:PlainStudent.for_suite",
    "lora": "distillgym.students.lora:LoRAStudent.for_suite",
})


POPULATIONS = Registry("population", {
    "plain": "distillgym.students.population:PopulationStudent.of",
})
"""Student name -> ``factory(student, size, member_chunk=None)``: ``size`` students of that kind and
configuration as one batched model, with :class:`~distillgym.students.population.PopulationStudent`'s
interface. A student whose ``name`` is here gets a native vector env (:mod:`distillgym.vector`)."""


def register_population(name: str, factory: Callable[..., Any] | str) -> None:
    """Give the student named ``name`` a population (and so a native vector env)."""
    POPULATIONS.register(name, factory)


def make_population(student: Any, size: int, member_chunk: int | None = None) -> Any:
    """``size`` students of ``student``'s kind and configuration as one population; raises
    :class:`~distillgym.errors.ConfigError` for a student without one."""
    from distillgym.errors import ConfigError

    name = getattr(student, "name", type(student).__name__)
    if name not in POPULATIONS:
        raise ConfigError(
            f"a {name!r} student ({type(student).__name__}) has no population (students with one: "
            f"{sorted(POPULATIONS)}); register one with distillgym.students.register_population"
        )
    return POPULATIONS[name](student, size, member_chunk=member_chunk)


def register_student(name: str, factory: Callable[..., Student] | str) -> None:
    """Add a student: ``factory(suite, **kwargs)``, or ``"module:attr"`` imported on first use."""
    STUDENTS.register(name, factory)


def make_student(spec: str | Student, suite: TaskSuite, **kwargs: Any) -> Student:
    """A student by registered name (built for ``suite``) or a student object as is."""
    return STUDENTS.build(spec, "train", suite, **kwargs)


_LAZY = {
    "StudentConfig": "distillgym.students.char_lm:StudentConfig",
    "TinyStudent": "distillgym.students.hf_student:TinyStudent",
    "PlainStudent": "distillgym.students.torch_student:PlainStudent",
    "PopulationStudent": "distillgym.students.population:PopulationStudent",
    "CharTokenizer": "distillgym.students.tokenizer:CharTokenizer",
}


def __getattr__(name: str) -> Any:  # the classes import torch: only when asked for
    if name in _LAZY:
        from distillgym.registry import import_object

        return import_object(_LAZY[name], "student class")
    raise AttributeError(name)
