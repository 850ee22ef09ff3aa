"""`bench --wandb`: every episode becomes one offline W&B run whose logged values match the results file.

The runs are read back from W&B's own offline files (``run-ID.wandb``), which are a LevelDB-style log of
``wandb.proto.wandb_internal_pb2.Record`` messages, so the test sees exactly what ``wandb sync`` would
upload; no W&B account or network is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distillgym.harness.bench import run_benchmark
from distillgym.harness.benchmark import load_benchmark
from distillgym.harness.results import read_results

_BLOCK = 32768  # LevelDB log block size; every record chunk has a 7-byte header (crc32, length, type)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path):
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (header {data[:7]!r})")
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's tail too short for a header is zero padding
            pos += _BLOCK - pos % _BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if kind == 0:
            break
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (_FULL, _LAST):
            yield pb.Record.FromString(buf)
            buf = b""


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def _read_run(path: Path) -> dict:
    run = {"history": [], "summary": {}, "config": {}}
    for r in _records(path):
        kind = r.WhichOneof("record_type")
        if kind == "run":
            run["group"], run["name"] = r.run.run_group, r.run.display_name
            for item in r.run.config.update:
                run["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in r.config.update:
                run["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            run["history"].append({_key(i): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            for item in r.summary.update:
                run["summary"][_key(item)] = json.loads(item.value_json)
    return run


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    pytest.importorskip("wandb", reason='wandb is an optional extra: pip install "distillgym[wandb]"')
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.delenv("WANDB_PROJECT", raising=False)


def _runs(out: Path) -> list[dict]:
    return [_read_run(f) for f in sorted(out.glob("wandb/offline-run-*/run-*.wandb"))]


def test_wandb_logs_every_episode_and_step_once(offline, tmp_path):
    out = tmp_path / "r"
    run_benchmark(load_benchmark("tiny"), out, progress=False, wandb=True)
    episodes, steps = read_results(out)[:2]
    runs = _runs(out)
    assert len(runs) == len(episodes) == 4

    by_key = {(r["config"]["teacher"], r["config"]["seed"]): r for r in runs}
    assert len(by_key) == 4, "each (teacher, seed) episode must be its own run"
    for ep in episodes:
        run = by_key[(ep["teacher_name"], ep["seed"])]
        assert run["group"] == f"tiny/{ep['teacher']}"
        assert run["name"] == f"{ep['teacher']}-seed{ep['seed']}"
        assert run["config"]["config_hash"] == ep["config_hash"]
        assert run["summary"]["final_test_accuracy"] == pytest.approx(ep["final_test_accuracy"])
        assert run["summary"]["auc"] == pytest.approx(ep["auc"])
        # The logged learning curve is the results file's curve: (examples, validation accuracy) per step.
        logged = [(h["examples"], h["val_accuracy"]) for h in run["history"]]
        assert logged == [tuple(p) for p in ep["curve"]]
        mine = [s for s in steps if (s["teacher"], s["seed"]) == (ep["teacher"], ep["seed"])]
        assert [h["reward"] for h in run["history"][1:]] == pytest.approx([s["reward"] for s in mine])

    # Resuming a finished suite runs nothing and so logs nothing: no episode is logged twice.
    run_benchmark(load_benchmark("tiny"), out, progress=False, wandb=True)
    assert len(_runs(out)) == 4
