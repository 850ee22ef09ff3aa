"""Seeds reserved for teachers' reference runs (distillgym.seeding.REFERENCE_SEEDS): no benchmark uses them,
and every teacher's reference or proxy seed lies in them (issue 20, item 7)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from distillgym.errors import ConfigError
from distillgym.harness.benchmark import SHIPPED, Benchmark, TeacherEntry, load_benchmark
from distillgym.seeding import REFERENCE_SEED, REFERENCE_SEEDS

REPO = Path(__file__).resolve().parents[1]
TOMLS = sorted(SHIPPED.glob("*.toml")) + sorted((REPO / "benchmarks" / "suites").glob("*.toml"))


def _seeds(path: Path) -> list[int]:
    return list(load_benchmark(str(path)).seeds)


def _reference_params(cls) -> dict[str, object]:
    """A teacher's constructor parameters that seed a run of its own (``reference_seed``, ``proxy_seed``, ...)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    return {n: p.default for n, p in params.items() if n.endswith("_seed") and n != "seed"}


def test_every_benchmark_avoids_the_reserved_reference_seeds():
    assert TOMLS, "no benchmark files found"
    for path in TOMLS:
        bench = load_benchmark(str(path))
        assert bench.seeds and not [s for s in bench.seeds if s in REFERENCE_SEEDS], path.name
        bench.validate()  # and the loader's own check agrees
        for t in bench.teachers:
            for k, v in t.kwargs.items():
                if k.endswith("_seed"):
                    assert v in REFERENCE_SEEDS and v not in bench.seeds, (path.name, t.label, k)


def test_every_teachers_reference_seed_is_reserved_and_used_by_no_benchmark():
    """DoReMi's reference seed was 1000, the first held-out seed of learned-v2 (1000-1009)."""
    from distillgym.teachers import TEACHERS

    used = {s for p in TOMLS for s in _seeds(p)}
    found = {}
    for name in sorted(TEACHERS):
        for param, default in _reference_params(TEACHERS[name]).items():
            found[(name, param)] = default
            assert default in REFERENCE_SEEDS and default not in used, (name, param, default)
    assert found[("doremi", "reference_seed")] == REFERENCE_SEED


def test_reserved_seeds_are_refused_by_benchmarks_and_reference_seeds_outside_them_by_doremi():
    with pytest.raises(ConfigError, match="reserved for teachers' reference runs"):
        Benchmark("b", "distillgym/ArithMix-v1", [0, REFERENCE_SEED], [TeacherEntry("uniform")], {}).validate()
    from distillgym.teachers.doremi import DoReMiTeacher

    with pytest.raises(ConfigError, match="reserved range"):
        DoReMiTeacher(reference_seed=1000)
    assert DoReMiTeacher(reference_seed=REFERENCE_SEED + 7).reference_seed == REFERENCE_SEED + 7
