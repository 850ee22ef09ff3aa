"""Teachers: policies that choose the student's next training data.

``make_teacher(name, **kwargs)`` builds one by name; ``TEACHERS`` lists the names;
``ppo:PATH`` loads a trained Stable-Baselines3 policy and ``package.module:Class`` a
user's own teacher. Each teacher declares the action levels it acts at (``levels``);
:func:`distillgym.agents.adapters.adapt_teacher` lets it play the others (documented there).
"""

from distillgym.agents import ppo  # noqa: F401  (registers the ppo: prefix; SB3 is imported lazily)
from distillgym.agents.aioli import AioliTeacher
from distillgym.agents.base import PREFIXES, TEACHERS, BaseTeacher, Teacher, make_teacher, register_teacher
from distillgym.agents.doremi import DoReMiTeacher
from distillgym.agents.dump_ucb import DumpUCBTeacher
from distillgym.agents.edge import EdgeTeacher
from distillgym.agents.error_targeting import ErrorTargetingTeacher
from distillgym.agents.ioa import IOATeacher
from distillgym.agents.learning_progress import LearningProgressTeacher
from distillgym.agents.llm_teacher import LLMTeacher
from distillgym.agents.llm_writer import LLMWriter
from distillgym.agents.mixing import MixTeacher, StratifiedTeacher
from distillgym.agents.odm import ODMTeacher
from distillgym.agents.oracle import OracleLookahead
from distillgym.agents.simple import RandomTeacher, SingleSkillTeacher, UniformTeacher
from distillgym.agents.skill_it import SkillItTeacher
from distillgym.agents.tscl import TSCLSamplingTeacher, TSCLWindowTeacher
from distillgym.agents.writer import ScriptedWriter

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
