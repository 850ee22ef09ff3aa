"""Data engines: turn a plan [(skill, difficulty, n)] into verified training examples."""

from distillgym.engines.base import ENGINES, DataEngine, EngineCost, make_engine, register_engine
from distillgym.engines.procedural import ProceduralEngine

__all__ = ["ENGINES", "DataEngine", "EngineCost", "ProceduralEngine", "make_engine", "register_engine"]
