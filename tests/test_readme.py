"""Every ```python block of README.md runs on its own, as written (issue 20, item 15).

Each block is executed in a fresh namespace (so a block that relies on an earlier one's imports
fails). To keep CI fast the registered defaults of every ``distillgym/...`` id are made small for
the duration (a 2-step episode with few validation and test items): the README's code itself is
not changed, and whatever keyword arguments it passes still override those defaults, as a user's
would.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import gymnasium as gym
import pytest

import distillgym  # noqa: F401  (registers the ids)

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)
SMALL = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs_as_written(index, monkeypatch):
    for env_id, spec in list(gym.registry.items()):
        if env_id.startswith("distillgym/"):
            monkeypatch.setattr(spec, "kwargs", {**spec.kwargs, **SMALL})
    code = BLOCKS[index]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})
    assert out.getvalue().strip(), "a README block prints what it shows"


def test_the_main_job_installs_what_the_benchmark_and_its_plots_need():
    """The README's main-job line installs the [plots] extra, not [test] (about 170 packages with gradio,
    ray and pyarrow; issue 20, item 17); the tests line keeps [test] (.ci/run runs it)."""
    lines = README.read_text().splitlines()
    job = lines[lines.index(next(x for x in lines if x.startswith("# main job"))) + 1]
    tests = lines[lines.index("# tests") + 1]
    assert 'pip install -e ".[plots]"' in job and "[test]" not in job and job.endswith("distillgym bench quick --workers 2")
    assert 'pip install -e ".[test]"' in tests and "pytest" in tests
