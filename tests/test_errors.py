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
    check_bool,
    check_choice,
    check_int,
    check_number,
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


def test_argument_checks():
    import numpy as np

    assert check_int("T", "window", np.int64(3), 1) == 3 and type(check_int("T", "w", 3, 1)) is int
    for bad in (0, True, 2.0, "3"):
        with pytest.raises(ConfigError, match=r"^T window must be an integer >= 1, got"):
            check_int("T", "window", bad, 1)
    assert check_number("T", "eps", np.float32(0.5), 0, 1) == 0.5
    for bad, kw, rule in (
        (1.5, dict(low=0, high=1), r"a number in \[0, 1\]"),
        (0, dict(low=0, high=1, open_low=True), r"a number in \(0, 1\]"),
        (1.0, dict(low=0, high=1, open_low=True, open_high=True), r"a number in \(0, 1\)"),
        (0.0, dict(low=0, open_low=True), "a finite number > 0"),
        (float("inf"), dict(low=0), "a finite number >= 0"),
        (True, dict(low=0, high=1), r"a number in \[0, 1\]"),
        ("a", dict(), "a finite number"),
    ):
        with pytest.raises(ConfigError, match=rf"^T eps must be {rule}, got"):
            check_number("T", "eps", bad, **kw)
    with pytest.raises(ConfigError, match=r"^timeout must be"):  # no owner: a plain function argument
        check_number("", "timeout", -1, 0)
    assert check_bool("T", "absolute", np.bool_(True)) is True
    with pytest.raises(ConfigError, match="True or False"):
        check_bool("T", "absolute", "yes")
    assert check_choice("mode", "closest", ("closest", "sample")) == "closest"
    with pytest.raises(UnknownNameError, match="Did you mean 'closest'"):
        check_choice("mode", "closet", ("closest", "sample"))


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
        "import distillgym.teachers, distillgym.harness.runner, distillgym.harness.cli, distillgym.students; "
        "assert 'torch' not in sys.modules, 'torch imported by a submodule'"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
