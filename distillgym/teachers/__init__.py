"""Teachers: policies that choose the student's next training data.

``make_teacher(name, **kwargs)`` builds one by name from the registry :data:`TEACHERS`
(``distillgym teachers`` lists them); ``ppo:PATH`` loads a trained Stable-Baselines3 policy and
``cem:PATH`` a linear mix policy trained by the cross-entropy method (:data:`PREFIXES`), and
``package.module:Class`` a user's own teacher. Each teacher declares the action levels it acts at (``levels``); :func:`distillgym.teachers.adapters.adapt_teacher` lets it
play the others (documented there). One file per teacher (or family), each citing its source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.registry import Registry, import_object
from distillgym.teachers.aioli import AioliTeacher
from distillgym.teachers.base import BaseTeacher, Teacher
from distillgym.teachers.doremi import DoReMiTeacher
from distillgym.teachers.dump_ucb import DumpUCBTeacher
from distillgym.teachers.edge import EdgeTeacher
from distillgym.teachers.error_targeting import ErrorTargetingTeacher
from distillgym.teachers.ioa import IOATeacher
from distillgym.teachers.learning_progress import LearningProgressTeacher
from distillgym.teachers.llm_teacher import LLMTeacher
from distillgym.teachers.llm_writer import LLMWriter
from distillgym.teachers.mixing import MixTeacher, StratifiedTeacher
from distillgym.teachers.odm import ODMTeacher
from distillgym.teachers.oracle import OracleLookahead
from distillgym.teachers.simple import RandomTeacher, SingleSkillTeacher, UniformTeacher
from distillgym.teachers.skill_it import SkillItTeacher
from distillgym.teachers.tscl import TSCLSamplingTeacher, TSCLWindowTeacher
from distillgym.teachers.writer import ScriptedWriter

__all__ = [
    "PREFIXES",
    "TEACHERS",
    "BaseTeacher",
    "Teacher",
    "make_teacher",
    "register_teacher",
    "DumpUCBTeacher",
    "EdgeTeacher",
    "ErrorTargetingTeacher",
    "IOATeacher",
    "LearningProgressTeacher",
    "LLMTeacher",
    "LLMWriter",
    "MixTeacher",
    "StratifiedTeacher",
    "OracleLookahead",
    "ODMTeacher",
    "SkillItTeacher",
    "DoReMiTeacher",
    "AioliTeacher",
    "ScriptedWriter",
    "RandomTeacher",
    "SingleSkillTeacher",
    "UniformTeacher",
    "TSCLSamplingTeacher",
    "TSCLWindowTeacher",
]

TEACHERS = Registry("teacher", {
    # controls
    "random": "distillgym.teachers.simple:RandomTeacher",
    "uniform": "distillgym.teachers.simple:UniformTeacher",
    "single-skill": "distillgym.teachers.simple:SingleSkillTeacher",
    # curricula (cell level)
    "ioa": "distillgym.teachers.ioa:IOATeacher",
    "tscl-window": "distillgym.teachers.tscl:TSCLWindowTeacher",
    "tscl-sampling": "distillgym.teachers.tscl:TSCLSamplingTeacher",
    "learning-progress": "distillgym.teachers.learning_progress:LearningProgressTeacher",
    "dump-ucb": "distillgym.teachers.dump_ucb:DumpUCBTeacher",
    "error-targeting": "distillgym.teachers.error_targeting:ErrorTargetingTeacher",
    "edge": "distillgym.teachers.edge:EdgeTeacher",
    # data mixing (mix level)
    "stratified": "distillgym.teachers.mixing:StratifiedTeacher",
    "odm": "distillgym.teachers.odm:ODMTeacher",
    "skill-it": "distillgym.teachers.skill_it:SkillItTeacher",
    "doremi": "distillgym.teachers.doremi:DoReMiTeacher",
    "aioli": "distillgym.teachers.aioli:AioliTeacher",
    # the headroom search's policy family (mix and cell levels; teachers/family.py): fixed mixes, schedules,
    # adaptive rules; error-mix is also a heuristic baseline
    "fixed-mix": "distillgym.teachers.fixed_mix:FixedMixTeacher",
    "dirichlet-mix": "distillgym.teachers.fixed_mix:DirichletMixTeacher",
    "easy-to-hard": "distillgym.teachers.schedules:EasyToHardTeacher",
    "warmup-equal": "distillgym.teachers.schedules:WarmupEqualTeacher",
    "prereq-first": "distillgym.teachers.schedules:PrereqFirstTeacher",
    "error-mix": "distillgym.teachers.adaptive_mix:ErrorMixTeacher",
    "progress-mix": "distillgym.teachers.adaptive_mix:ProgressMixTeacher",
    "mastery-gated": "distillgym.teachers.adaptive_mix:MasteryGatedTeacher",
    # writers (open level)
    "scripted-writer": "distillgym.teachers.writer:ScriptedWriter",
    "llm-writer": "distillgym.teachers.llm_writer:LLMWriter",
    # a language model chooses
    "llm": "distillgym.teachers.llm_teacher:LLMTeacher",
    # a reference, not a valid teacher (it peeks through env snapshots)
    "oracle-lookahead": "distillgym.teachers.oracle:OracleLookahead",
})

PREFIXES = Registry("teacher prefix", {
    "ppo": "distillgym.teachers.ppo:PPOTeacher",  # ppo:PATH, a policy saved by `distillgym train-teacher`
    "cem": "distillgym.teachers.cem:CEMTeacher",  # cem:PATH, saved by `distillgym train-teacher --algo cem`
})
"""``prefix:ARG`` teacher names: ``PREFIXES[prefix](ARG, **kwargs)`` builds the teacher."""


def register_teacher(name: str) -> Callable[[type], type]:
    """``@register_teacher("my-teacher")`` above a class adds it to :data:`TEACHERS`."""
    return TEACHERS.register(name)


def make_teacher(name: str, **kwargs: Any) -> Teacher:
    """Build a teacher: a registered name (``distillgym teachers``), ``ppo:PATH`` (a saved
    Stable-Baselines3 policy), ``cem:PATH`` (a saved linear mix policy), or ``package.module:ClassName`` (a user's own teacher class,
    constructed with ``kwargs``)."""
    prefix, sep, rest = name.partition(":")
    if sep and prefix in PREFIXES:
        return _construct(PREFIXES[prefix], name, kwargs, rest)
    if sep:
        cls = import_object(name, "teacher")
        teacher = _construct(cls, name, kwargs)
        for attr in ("reset", "act"):
            if not callable(getattr(teacher, attr, None)):
                raise UnknownNameError(f"{name!r} does not implement the Teacher protocol: it has no {attr}() method")
        if not hasattr(teacher, "update"):
            teacher.update = lambda *a, **k: None
        if not hasattr(teacher, "name"):
            teacher.name = name
        return teacher
    return _construct(TEACHERS[name], name, kwargs)


def _construct(factory: Any, name: str, kwargs: dict[str, Any], *args: Any) -> Any:
    """``factory(*args, **kwargs)``; arguments it does not take raise :class:`ConfigError` naming the
    ones it does (not a bare TypeError)."""
    import inspect

    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(*args, **kwargs)
        except TypeError as err:
            names = [p.name for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            raise ConfigError(f"teacher {name!r}: {err}; its arguments are {names[len(args):]}") from None
    return factory(*args, **kwargs)
