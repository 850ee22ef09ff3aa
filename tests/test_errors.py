"""The error hierarchy, name suggestions, and the light top-level import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import distillgym
from distillgym.errors import (
    ConfigError,
    DependencyMissingError,
    DistillGymError,
    InvalidActionError,
    TrainingDivergedError,
    UnknownNameError,
    did_you_mean,
    require,
)


def test_hierarchy():
    for cls, builtin in (
        (ConfigError, ValueError),
        (InvalidActionError, ValueError),
        (UnknownNameError, KeyError),
        (TrainingDivergedError, RuntimeError),
        (DependencyMissingError, ImportError),
    ):
        assert issubclass(cls, DistillGymError) and issubclass(cls, builtin)
    for name in ("ConfigError", "DistillGymError", "InvalidActionError", "TrainingDivergedError", "UnknownNameError"):
        assert getattr(distillgym, name) is getattr(distillgym.errors, name)


def test_require_imports_or_names_the_extra():
    assert require("json", "reading results", "test") is sys.modules["json"]
    with pytest.raises(DependencyMissingError, match=r'plotting needs no_such_pkg .*pip install "distillgym\[plots\]" now') as e:
        require("no_such_pkg.sub", "plotting", "plots", " now")
    assert isinstance(e.value, ImportError) and e.value.__cause__ is None


def test_unknown_name_error_message_is_not_quoted():
    # KeyError's str() would wrap the message in quotes
    assert str(UnknownNameError("no such thing")) == "no such thing"
    assert str(UnknownNameError()) == ""
    with pytest.raises(KeyError):
        raise UnknownNameError("x")


def test_did_you_mean():
    msg = did_you_mean("addd", ["copy", "add", "sub"])
    assert msg == "valid values are ['copy', 'add', 'sub']. Did you mean 'add'?"
    assert did_you_mean("zzzz", ["copy", "add"]) == "valid values are ['copy', 'add']."


def test_import_distillgym_does_not_import_torch():
    code = (
        "import sys, distillgym, gymnasium as gym; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "assert 'transformers' not in sys.modules, 'transformers imported'; "
        "assert 'distillgym/ArithSkills-v0' in gym.registry; "
        "import distillgym.agents, distillgym.runner, distillgym.cli, distillgym.students; "
        "assert 'torch' not in sys.modules, 'torch imported by a submodule'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
