"""benchmarks/gpu_check.sh's machine record (env.json) on a machine like the device machine, whose
image may have no git: the record (GPU, library versions) must still be written, with no commit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def test_the_machine_record_is_written_without_git(tmp_path):
    text = SCRIPT.read_text()
    block = re.search(r"\$PY - > \"\$OUT/env.json\" <<'PYEOF'\n(.*?)\nPYEOF\n", text, re.S)
    assert block, "gpu_check.sh no longer writes env.json from a python block"
    env = {k: v for k, v in os.environ.items() if k != "PATH"}
    env["PATH"] = str(tmp_path)  # an empty folder: no git (nor anything else) to run
    proc = subprocess.run([sys.executable, "-c", block.group(1)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(proc.stdout)
    assert record["commit"] is None
    assert {"torch", "transformers", "peft", "gymnasium", "gpu"} <= set(record)
