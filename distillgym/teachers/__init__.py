"""Teachers: policies that choose the student's next training data.

``make_teacher(name, **kwargs)`` builds one by name; ``TEACHERS`` lists the names;
``ppo:PATH`` loads a trained Stable-Baselines3 policy and ``package.module:Class`` a
user's own teacher. Each teacher declares the action levels it acts at (``levels``);
:func:`distillgym.teachers.adapters.adapt_teacher` lets it play the others (documented there).
"""

from distillgym.teachers import ppo  # noqa: F401  (registers the ppo: prefix; SB3 is imported lazily)
from distillgym.teachers.aioli import AioliTeacher
from distillgym.teachers.base import PREFIXES, TEACHERS, BaseTeacher, Teacher, make_teacher, register_teacher
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
