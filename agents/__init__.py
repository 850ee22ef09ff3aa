"""Teachers: policies that choose the student's next training data.

``make_teacher(name, **kwargs)`` builds one by name; ``TEACHERS`` lists the names.
"""

from distillgym.agents.base import TEACHERS, BaseTeacher, Teacher, make_teacher, register_teacher
from distillgym.agents.ioa import IOATeacher
from distillgym.agents.simple import RandomTeacher, SingleSkillTeacher, UniformTeacher

__all__ = [
    "TEACHERS",
    "BaseTeacher",
    "Teacher",
    "make_teacher",
    "register_teacher",
    "IOATeacher",
    "RandomTeacher",
    "SingleSkillTeacher",
    "UniformTeacher",
]
