"""Data engines: turn a plan [(skill, difficulty, n)] into verified training examples."""

from distillgym.engines.procedural import EngineCost, ProceduralEngine

__all__ = ["EngineCost", "ProceduralEngine"]
