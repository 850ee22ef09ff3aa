"""The results file ``DIR/results.jsonl``: what a benchmark run writes, and reading it back.

For each finished episode, its step lines (``"type": "step"``) and then its episode line
(``"type": "episode"``: teacher, seed, env id and version, package version, config hash, ``status``,
final test accuracy, validation curve and its area ``auc``, examples and seconds spent, invalid
actions, ``costs``, ``fingerprint`` (:func:`distillgym.harness.fingerprint.fingerprint`: software
versions, git commit, CPU, device, threads), ``reference_row``, the resolved ``env_config`` and
``teacher_args``), all written by one ``os.write`` call and fsynced, so an episode is in the file
whole or not at all. Credentials (``api_key`` arguments, ``OPENAI_API_KEY`` and the like) are
redacted from everything written (results, benchmark record, wandb config) and hashed as
``<redacted>``. A failed episode has one line (``status: "failed"``) and no step lines.

:func:`read_results` prefers an ok line over a failed one of the same key (label, seed, config
hash). Lines that are not valid results (corrupt, truncated, or from another format) are reported
with file and line number and skipped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError
from distillgym.harness.benchmark import Job
from distillgym.harness.fingerprint import HASH_VERSION, redact, scrub, secret_values
from distillgym.harness.leaderboard import curve_auc

__all__ = ["RESULT_FORMAT", "RESULTS_FILE", "read_results", "ResultsWriter", "episode_lines", "curve", "is_ok"]

RESULT_FORMAT = "distillgym.results/1"
RESULTS_FILE = "results.jsonl"


def _warn(msg: str) -> None:
    print(f"distillgym: warning: {msg}", file=sys.stderr)


_EPISODE_KEYS = ("teacher", "seed", "env", "config_hash", "final_test_accuracy")


def is_ok(rec: dict[str, Any]) -> bool:
    return rec.get("status", "ok") == "ok"


def read_results(path: str | os.PathLike[str], warn: Callable[[str], None] = _warn) -> tuple[list[dict], list[dict]]:
    """Episode and step records of a results file (or of ``DIR/results.jsonl``).

    Corrupt, truncated or foreign lines are reported through ``warn`` with file and line
    number and skipped. One episode is kept per key (teacher label, seed, config hash): an ok line
    (``status`` "ok", or no status: lines written before the field) is preferred over a failed one
    wherever each comes in the file; of several failed lines the last is kept; a repeated ok line is
    reported and only its first copy kept. Failed episodes are returned too (the leaderboard counts
    them); they have no step lines."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.exists():
        raise ConfigError(f"no results at {str(p)!r}; run `distillgym bench SUITE --out DIR` first")
    episodes: list[dict | None] = []
    steps: list[dict] = []
    where: dict[tuple, int] = {}
    with open(p, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if not raw.endswith(b"\n"):
                warn(f"{p}:{n}: truncated last line (no newline), skipped")
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                warn(f"{p}:{n}: not valid JSON ({err.__class__.__name__}), skipped")
                continue
            if not isinstance(rec, dict) or rec.get("format") != RESULT_FORMAT:
                warn(f"{p}:{n}: not a {RESULT_FORMAT} record, skipped")
                continue
            kind = rec.get("type")
            if kind == "episode":
                missing = [k for k in _EPISODE_KEYS if k not in rec]
                if missing:
                    warn(f"{p}:{n}: episode record lacks {missing}, skipped")
                    continue
                key = (rec["teacher"], rec["seed"], rec["config_hash"])
                if "auc" not in rec and "curve" in rec:  # lines written before the field existed
                    rec["auc"] = curve_auc(rec["curve"])
                if key in where:
                    prev = episodes[where[key]] or {}
                    if is_ok(prev):
                        if is_ok(rec):
                            warn(f"{p}:{n}: duplicate episode {key}, skipped")
                        continue  # an ok line wins over a later failed one
                    episodes[where[key]] = None  # a failed line gives way to a later ok or failed one
                where[key] = len(episodes)
                episodes.append(rec)
            elif kind == "step":
                steps.append(rec)
            else:
                warn(f"{p}:{n}: unknown record type {kind!r}, skipped")
    kept = [e for e in episodes if e is not None]
    finished = {(e["teacher"], e["seed"], e["config_hash"]) for e in kept if is_ok(e)}
    steps = [s for s in steps if (s.get("teacher"), s.get("seed"), s.get("config_hash")) in finished]
    return kept, steps


def _repair_tail(p: Path) -> None:
    """Cut a partial last line left by a crash (never seen with single-write appends, but
    cheap to guarantee)."""
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        data = f.seek(0) or f.read()
        cut = data.rfind(b"\n") + 1
        _warn(f"{p}: removing a truncated last line ({len(data) - cut} bytes) left by an interrupted run")
        f.truncate(cut)


def curve(result: dict[str, Any]) -> list[tuple[int, float]]:
    """The episode's validation learning curve: (examples spent, mean validation accuracy), from reset on."""
    points = [(0, result["val_accuracy_start"])]
    spent = 0
    for s in result["steps"]:
        spent += s["examples"]
        points.append((spent, s["val_accuracy"]))
    return points


def _env_version(env_id: str) -> str:
    return env_id.rsplit("-v", 1)[-1] if "-v" in env_id else ""


def episode_lines(job: Job, result: dict[str, Any], version: str) -> bytes:
    """The lines of one finished (or failed) episode, credentials redacted and scrubbed."""
    common = {
        "format": RESULT_FORMAT,
        "suite": job.suite,
        "teacher": job.label,
        "teacher_name": job.teacher,
        "seed": job.seed,
        "config_hash": job.config_hash,
    }
    described = {
        "env": job.env,
        "env_version": _env_version(job.env),
        "env_kwargs": redact(job.env_kwargs),
        "teacher_kwargs": redact(job.teacher_kwargs),
        "config_hash_version": HASH_VERSION,
        "env_config": redact(job.env_config),
        "teacher_args": job.teacher_identity.get("args", {}),
        "teacher_content": job.teacher_identity.get("content", {}),
        "package_version": version,
    }
    if result.get("status") == "failed":
        episode = {
            **common, "type": "episode", **described, "status": "failed",
            "final_test_accuracy": None,
            "error": result["error"],
            "traceback": result["traceback"],
            "steps_completed": int(result.get("steps_completed", 0)),
            "reference_row": bool(result.get("reference_row", False)),
            "fingerprint": result.get("fingerprint"),
            "seconds": float(result.get("seconds", 0.0)),
            "finished_at": time.time(),
        }
        lines = [json.dumps(episode)]
    else:
        lines = [json.dumps({**common, "type": "step", **s}) for s in result["steps"]]
        episode = {k: v for k, v in result.items() if k not in ("steps", "teacher", "seed")}
        episode_curve = curve(result)
        episode.update(
            {
                **common,
                "type": "episode",
                **described,
                "status": "ok",
                "teacher_stats": redact(result.get("teacher_stats", {})),
                "curve": episode_curve,
                "auc": curve_auc(episode_curve),
                "invalid_actions": int(result.get("teacher_stats", {}).get("invalid_replies", 0)),
                "finished_at": time.time(),
            }
        )
        lines.append(json.dumps(episode))
    text = "\n".join(lines) + "\n"
    return scrub(text, secret_values(job.teacher_kwargs, job.env_kwargs)).encode()


class ResultsWriter:
    """Appends whole episodes to ``DIR/results.jsonl`` with one write each."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS_FILE
        _repair_tail(self.path)

    def episodes(self) -> list[dict]:
        """The episode records in the file (ok and failed), as :func:`read_results` keeps them."""
        if not self.path.exists():
            return []
        return read_results(self.path)[0]

    def finished(self) -> set[tuple[str, int, str]]:
        """Keys (label, seed, config hash) of the ok episodes in the file; failed ones are not
        finished, so a rerun retries them."""
        return {(e["teacher"], e["seed"], e["config_hash"]) for e in self.episodes() if is_ok(e)}

    def append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - only on a full disk
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
