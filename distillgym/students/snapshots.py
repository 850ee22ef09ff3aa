"""Stored student snapshots: the weights a warm-started student begins every episode from.

A warm start is a plain-student state made once by training, shipped with the package as an
``.npz`` of float32 weights (``distillgym/students/data/NAME.npz``), and loaded at environment
construction (``TeachingEnv(warm_start=NAME)``): the student, or every member of the
population in the native vector env, gets these weights with a fresh optimiser, a fresh
warm-up and an empty replay buffer at every reset. Only weights are stored.

Each snapshot is a :class:`Recipe` in :data:`SNAPSHOTS`: what it was trained on, with which
seeds, and the checksum of the weights it gives (:func:`weights_sha256`: SHA-256 over every
parameter's name, shape and float32 bytes, in the model's canonical order). :func:`load` checks
that checksum, so a file that does not match its recipe is refused. The build is deterministic on
one machine and library build (one torch thread, CPU): ``python -m distillgym.students.snapshots
build NAME`` rebuilds it and prints the checksum; on another CPU or torch build float rounding may
differ, so the rebuilt weights are equivalent, not equal (the checksum then differs and the
command says so). ``python -m distillgym.students.snapshots show NAME`` prints the stored metadata.

**arith-v2-l01** (the warm student of ``ArithSources-v1``, ``ArithSourcesOpen-v1`` and
``ArithForget-v1``): the plain student with the default :class:`StudentConfig` (84k parameters,
AdamW lr 6e-3 with 50 warm-up steps, batch 128, replay fraction 0.75), initial weights from seed 0,
trained for 200 steps of 2,048 examples (409,600) of the ``arith-v2`` *train* part, uniform over
difficulties 0 and 1 of all seven skills (the 14 cells, allocated by the mix level's
largest-remainder rule), step t's examples and shuffling drawn from ``rng_for(0,
STREAM_PRETRAIN, t)``. Built with::

    OMP_NUM_THREADS=1 python -m distillgym.students.snapshots build arith-v2-l01

Provenance (``data/arith-v2-l01.json``, written by that command): built from commit ``440f0db`` on
the development machine (2-core AMD EPYC, Python 3.11.7, torch 2.13.0 CPU, numpy 2.4.6, one torch
thread) in 800 s of wall time while other jobs shared the two cores (load average 5-8; the lead's
prototype of the same recipe took 600 s on an idle core); weights checksum
``3480b241a487e1006c28733bc48724be24b2b20da37d0c32efbad6fd2946553b``; 83,648 parameters (317 KB
compressed). Its validation accuracy at the end (32 validation-part items per cell, seed stream
``rng_for(0, STREAM_VAL, skill, difficulty)``), difficulties 0 / 1: copy 1.00 / 1.00, successor
1.00 / 1.00, add 1.00 / 0.97, sub 1.00 / 1.00, mul 0.97 / 0.91, compare 1.00 / 0.97, chain 0.78 /
0.69 (12 of the 14 cells at >= 0.9); difficulty 2 stays at 0 but compare (0.66) and chain (0.09).
The validation and test parts were never trained on (the train part only), so the environments'
held-out sets stay held out.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, did_you_mean

__all__ = ["Recipe", "SNAPSHOTS", "DATA_DIR", "build", "load", "save", "weights_sha256", "snapshot_path", "main"]

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Where the shipped snapshots live (package data)."""


@dataclass(frozen=True)
class Recipe:
    """How a snapshot is made: the plain student (``student`` holds :class:`StudentConfig` fields
    other than the defaults) trained for ``steps`` steps of ``examples_per_step`` examples of
    ``suite``'s train part, uniform over ``difficulties`` of every skill; initial weights from
    ``seed``, step t's data and shuffling from ``rng_for(seed, STREAM_PRETRAIN, t)``.
    ``sha256``: the checksum of the weights the recipe gives (None until built)."""

    suite: str = "arith-v2"
    difficulties: tuple[int, ...] = (0, 1)
    steps: int = 200
    examples_per_step: int = 2048
    seed: int = 0
    student: dict[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    description: str = ""


SNAPSHOTS: dict[str, Recipe] = {
    "arith-v2-l01": Recipe(
        suite="arith-v2", difficulties=(0, 1), steps=200, examples_per_step=2048, seed=0,
        sha256="3480b241a487e1006c28733bc48724be24b2b20da37d0c32efbad6fd2946553b",
        description="the plain student trained on difficulties 0-1 of every arith-v2 skill (409,600 examples)",
    ),
}
"""Registered snapshots by name (see the module docstring)."""


def snapshot_path(name: str) -> Path:
    """The shipped ``.npz`` of a registered snapshot."""
    if name not in SNAPSHOTS:
        raise UnknownNameError(f"unknown student snapshot {name!r}: {did_you_mean(name, SNAPSHOTS)}")
    return DATA_DIR / f"{name}.npz"


def weights_sha256(weights: dict[str, Any], names: list[str] | None = None) -> str:
    """SHA-256 over each parameter's name, shape and float32 little-endian bytes, in ``names``
    order (default: sorted names)."""
    h = hashlib.sha256()
    for name in names or sorted(weights):
        a = np.ascontiguousarray(_numpy(weights[name]), dtype="<f4")
        h.update(name.encode())
        h.update(json.dumps(list(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def save(weights: dict[str, Any], path: str | Path) -> str:
    """Write ``weights`` as an ``.npz`` of float32 arrays, byte for byte the same for the same
    weights (fixed zip timestamps, sorted names); returns the weights' checksum."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(weights):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(_numpy(weights[name]), dtype="<f4"),
                                      allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    return weights_sha256(weights)


def load(spec: str | Path, check: bool = True) -> dict[str, Any]:
    """The weights of a registered snapshot (by name) or of an ``.npz`` file (by path), as float32
    CPU tensors keyed by parameter name. A registered snapshot's checksum is checked against its
    recipe (``check``); a mismatch raises :class:`ConfigError`."""
    import torch

    name = str(spec)
    if name in SNAPSHOTS:
        path, expected = snapshot_path(name), SNAPSHOTS[name].sha256
    else:
        path, expected = Path(name), None
        if path.suffix != ".npz":
            raise UnknownNameError(
                f"warm start {name!r} is neither a registered student snapshot nor an .npz file: "
                f"{did_you_mean(name, SNAPSHOTS)}"
            )
    if not path.is_file():
        hint = (f"; rebuild it with: python -m distillgym.students.snapshots build {name}" if name in SNAPSHOTS
                else "")
        raise ConfigError(f"student snapshot file {str(path)!r} does not exist{hint}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: np.array(data[k], dtype=np.float32) for k in data.files}
    if check and expected is not None and weights_sha256(arrays) != expected:
        raise ConfigError(
            f"student snapshot {name!r} ({path}) has checksum {weights_sha256(arrays)}, but its recipe says "
            f"{expected}: the file is not the registered snapshot; rebuild it with "
            f"python -m distillgym.students.snapshots build {name}"
        )
    return {k: torch.from_numpy(v) for k, v in arrays.items()}


def _metadata(name: str) -> dict[str, Any]:
    path = DATA_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def build(recipe: Recipe, progress: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train the recipe's student (CPU, deterministic on one machine); returns ``(weights,
    metadata)``. ``progress(step, seconds)``, if given, is called after each step."""
    import torch

    from distillgym.seeding import STREAM_PRETRAIN, STREAM_VAL, rng_for
    from distillgym.students.torch_student import PlainStudent
    from distillgym.tasks import make_suite

    suite = make_suite(recipe.suite)
    student = PlainStudent.for_suite(suite, device="cpu", **{"init_seed": recipe.seed, **recipe.student})
    D = suite.n_difficulties
    bad = [d for d in recipe.difficulties if not 0 <= d < D]
    if bad:
        raise ConfigError(f"recipe difficulties {bad} are outside 0..{D - 1} of suite {suite.name!r}")
    # the equal mix over the recipe's cells, as the mix level's largest-remainder rule allocates it:
    # n // k examples each, one more for the first n % k cells in skill-major order (equal quotas tie)
    cells = [(s, d) for s in suite.skills for d in sorted(set(recipe.difficulties))]
    k = len(cells)
    n = recipe.examples_per_step
    items = [(s, d, n // k + (j < n % k)) for j, (s, d) in enumerate(cells)]
    t0 = time.perf_counter()
    for t in range(recipe.steps):
        rng = rng_for(recipe.seed, STREAM_PRETRAIN, t)
        examples = suite.generate_plan_arrays(items, rng, split="train")  # type: ignore[attr-defined]
        student.train(examples, rng, track_cells=False)
        if progress is not None:
            progress(t + 1, time.perf_counter() - t0)
    seconds = time.perf_counter() - t0
    # validation accuracy per cell at the end (the validation part: never trained on)
    acc = np.zeros((len(suite.skills), D))
    for i, s in enumerate(suite.skills):
        for d in range(D):
            val = suite.generate(s, d, rng_for(recipe.seed, STREAM_VAL, i, d), 32, split="val", distinct=True)
            acc[i, d] = float(np.mean(student.score(val)))
    state = student.state()
    from distillgym.students.torch_student import param_shapes

    meta = {
        "recipe": asdict(recipe) | {"sha256": None},
        "sha256": weights_sha256(state),
        "seconds": round(seconds, 1),
        "examples": recipe.steps * recipe.examples_per_step,
        "val_accuracy": acc.round(4).tolist(),
        "skills": list(suite.skills),
        "n_params": int(sum(int(np.prod(s)) for s in param_shapes(student.model_config).values())),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                    "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads()},
    }
    return state, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distillgym.students.snapshots",
                                     description="Build or show the stored student snapshots (warm starts).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train a registered snapshot and write its .npz and .json")
    b.add_argument("name", choices=sorted(SNAPSHOTS))
    b.add_argument("--out", default=None, help="directory to write NAME.npz and NAME.json (default: the package's)")
    b.add_argument("--commit", default="", help="the distillgym commit built from (recorded in the metadata)")
    s = sub.add_parser("show", help="print a snapshot's stored metadata")
    s.add_argument("name", choices=sorted(SNAPSHOTS))
    args = parser.parse_args(argv)
    if args.cmd == "show":
        print(json.dumps(_metadata(args.name), indent=2))
        return 0
    import torch

    torch.set_num_threads(1)
    recipe = SNAPSHOTS[args.name]

    def progress(step: int, seconds: float) -> None:
        if step % 10 == 0 or step == recipe.steps:
            print(f"step {step}/{recipe.steps}  {seconds:.0f} s", file=sys.stderr, flush=True)

    state, meta = build(recipe, progress)
    meta["name"] = args.name
    meta["commit"] = args.commit
    meta["build_command"] = f"OMP_NUM_THREADS=1 python -m distillgym.students.snapshots build {args.name}"
    out = Path(args.out) if args.out else DATA_DIR
    save(state, out / f"{args.name}.npz")
    (out / f"{args.name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    same = meta["sha256"] == recipe.sha256
    print(f"wrote {out / (args.name + '.npz')}: sha256 {meta['sha256']} "
          f"({'equal to' if same else 'differs from'} the recipe's {recipe.sha256}), {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
