"""Train a linear per-cell mix teacher with the cross-entropy method, one population of students per generation.

An episode of a teaching env costs seconds to a minute of student training, so a teacher trainer
sees hundreds of episodes, not the millions of transitions PPO wants. The cross-entropy method
(CEM; Rubinstein 1999, for policy search Mannor, Rubinstein and Gat 2003 and Szita and Lőrincz
2006) needs nothing but whole-episode returns: it keeps a Gaussian over the policy's parameters,
evaluates a generation of candidates drawn from it, and moves the Gaussian to the best of them.
The policy is :class:`~distillgym.train.mix_policy.LinearMixPolicy` (a few dozen weights over the
per-cell features of :mod:`distillgym.train.mix_policy`), whose zero weights are the equal mix.

One generation ``g`` (:func:`train_cem`):

1. ``population`` candidates ``theta_i = mu + sigma * eps_i``, ``eps`` standard normal from the
   run's own generator (``rng_for(seed, CEM_STREAM, g)``); with ``mirrored`` (default) the second
   half is the first half's mirror image (``eps_{i + n/2} = -eps_i``), which halves the noise of
   the elite mean along each drawn direction;
2. ``seeds_per_generation`` new episode seeds from the reserved range
   :data:`distillgym.seeding.TEACHER_TRAINING_SEEDS` (:func:`training_seeds`; disjoint from every
   benchmark's seeds), **common to every candidate** of the generation, so candidates are compared
   on the same students, data and validation items (common random numbers);
3. every (candidate, seed) pair is one sub-env of one native vector env
   (``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``: the students are
   one population, :mod:`distillgym.vector`), plus the current mean ``mu`` and the untrained init
   (``theta = 0``, the equal mix) on the same seeds as references (``eval_mean``, ``eval_init``:
   they do not enter the update; they make the training curve). With more pairs than ``num_envs``
   the pairs run in chunks of ``num_envs`` (the last one padded with copies, whose results are
   dropped);
4. **fitness** of a candidate = the mean over the generation's seeds of its episode **return**,
   the sum of the env's rewards (with ``delta_mean``: the final minus the initial validation mean,
   weighted where the env weighs cells). The hidden-test accuracy at the end of each episode is
   recorded in the log for the curve and is never read by the update;
5. ``elite`` best candidates (ties: lower index) give the update, smoothed:
   ``mu <- (1 - a) mu + a mean(elite)``, ``sigma^2 <- (1 - a) sigma^2 + a var(elite)``, then
   ``sigma >= min_sigma`` (a floor that keeps it exploring; ``a`` = ``smoothing``).

The trained policy is the final mean ``mu`` (written as ``OUT/policy.json`` after every generation).

Files in ``OUT/``: ``run.json`` (the configuration; a resumed run must match it),
``checkpoints/gen_<G>.json`` (``mu``, ``sigma`` after ``G`` generations: a resumed run continues from
the latest and computes exactly what an uninterrupted run would, since every generation's
candidates and seeds derive from ``(seed, g)``; a generation that raised, e.g. a student that
diverged, is run again from its start), ``log.jsonl`` (one line per generation: seeds,
candidates, every episode's return, validation and test accuracy, the elite, ``mu``, ``sigma``,
seconds), ``policy.json`` (the policy, with the training record: command, seeds, wall time,
hardware, versions), ``curve.png`` (:func:`plot_cem_curve`) and ``README.md`` (:func:`render_readme`: the
record, the training curve's numbers and what the policy learned). ``generations=0`` writes the untrained
policy (``theta = 0``), the control that shows what training added. The policy plays as the teacher
``cem:OUT/policy.json`` (:mod:`distillgym.teachers.cem`); ``distillgym train-teacher --algo cem`` is
the command line.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, check_bool, check_int, check_number, did_you_mean
from distillgym.seeding import TEACHER_TRAINING_SEEDS, rng_for
from distillgym.train.mix_policy import LinearMixPolicy, MixFeatures
from distillgym.train.ppo import run_hardware  # one record of where a training run ran (PPO and CEM)

__all__ = [
    "CEMConfig",
    "CEM_STREAM",
    "SEEDS_PER_RUN",
    "VEC_MODES",
    "LOG_FILE",
    "train_cem",
    "training_seeds",
    "cem_update",
    "sample_candidates",
    "evaluate_policies",
    "read_log",
    "plot_cem_curve",
    "render_readme",
    "latest_generation",
]

CEM_STREAM = 22_001
"""The stream index of the candidates' noise: ``rng_for(seed, CEM_STREAM, generation)``."""
SEEDS_PER_RUN = 1_000_000
"""Training seeds of run seed ``s``: ``TEACHER_TRAINING_SEEDS.start + s * SEEDS_PER_RUN + ...``."""
VEC_MODES = ("native", "sync")
LOG_FILE = "log.jsonl"
_RUN_KEYS = ("algo", "env", "env_kwargs", "config", "seed", "num_envs", "vec")


@dataclass
class CEMConfig:
    """The cross-entropy method's settings (see the module docstring for how each is used)."""

    population: int = 8
    """Candidates per generation (even when ``mirrored``)."""
    seeds_per_generation: int = 2
    """Episode seeds per generation, common to all candidates; fitness is the mean return over them."""
    elite: int = 3
    """How many of the best candidates make the update (1 <= elite < population)."""
    sigma0: float = 0.5
    """Initial standard deviation of every weight (scores are in nats of mix weight)."""
    smoothing: float = 0.7
    """``a`` in ``mu <- (1 - a) mu + a mean(elite)`` (and the same for the variance); 1: no smoothing."""
    min_sigma: float = 0.05
    """Floor of every standard deviation after an update."""
    mirrored: bool = True
    """Draw the second half of the candidates as the first half's mirror images about ``mu``."""
    eval_mean: bool = True
    """Also run the current mean ``mu`` on the generation's seeds (the training curve; not in the update)."""
    eval_init: bool = True
    """Also run the untrained init (``theta = 0``, the equal mix) on the same seeds (the paired baseline)."""
    temperature: float = 1.0
    """The policy's softmax temperature (fixed; the weights' scale is what is learned)."""
    groups: list[str] | None = None
    """Feature groups of :mod:`distillgym.train.mix_policy` (None: every group the env has)."""
    init_theta: list[float] | None = field(default=None)
    """Starting mean (None: zeros, the equal mix)."""

    def validate(self) -> CEMConfig:
        check_int("CEMConfig", "population", self.population, 2)
        check_int("CEMConfig", "seeds_per_generation", self.seeds_per_generation, 1)
        check_int("CEMConfig", "elite", self.elite, 1)
        if self.elite >= self.population:
            raise ConfigError(f"CEMConfig elite must be smaller than population ({self.population}), got {self.elite}")
        check_number("CEMConfig", "sigma0", self.sigma0, 0, open_low=True)
        check_number("CEMConfig", "smoothing", self.smoothing, 0, 1, open_low=True)
        check_number("CEMConfig", "min_sigma", self.min_sigma, 0)
        check_number("CEMConfig", "temperature", self.temperature, 0, open_low=True)
        for name in ("mirrored", "eval_mean", "eval_init"):
            check_bool("CEMConfig", name, getattr(self, name))
        if self.mirrored and self.population % 2:
            raise ConfigError(f"CEMConfig population must be even when mirrored, got {self.population}")
        if self.groups is not None and (isinstance(self.groups, str) or not all(isinstance(g, str) for g in self.groups)):
            raise ConfigError(f"CEMConfig groups must be a list of feature group names, got {self.groups!r}")
        return self

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, Any] | None) -> CEMConfig:
        """A config from a dict (the command line's ``--cem-kwargs``); unknown keys are named."""
        kwargs = dict(kwargs or {})
        names = [f.name for f in cls.__dataclass_fields__.values()]
        bad = [k for k in kwargs if k not in names]
        if bad:
            raise ConfigError(f"unknown CEM setting(s) {bad}: {did_you_mean(bad[0], names)}")
        return cls(**kwargs).validate()


def training_seeds(run_seed: int, generation: int, n: int) -> list[int]:
    """The ``n`` episode seeds of a generation: ``TEACHER_TRAINING_SEEDS.start + run_seed * SEEDS_PER_RUN
    + generation * n + j``; :class:`ConfigError` if that leaves the reserved range or the run's share."""
    check_int("", "run_seed", run_seed, 0)
    check_int("", "generation", generation, 0)
    check_int("", "n", n, 1)
    if (generation + 1) * n > SEEDS_PER_RUN:
        raise ConfigError(f"generation {generation} x {n} seeds leaves the run's share of {SEEDS_PER_RUN} training seeds")
    first = TEACHER_TRAINING_SEEDS.start + run_seed * SEEDS_PER_RUN + generation * n
    if first + n > TEACHER_TRAINING_SEEDS.stop:
        raise ConfigError(f"run seed {run_seed} is too large: its training seeds would leave the reserved range "
                          f"{TEACHER_TRAINING_SEEDS}; use a seed below {len(TEACHER_TRAINING_SEEDS) // SEEDS_PER_RUN}")
    return [first + j for j in range(n)]


def sample_candidates(mu: np.ndarray, sigma: np.ndarray, config: CEMConfig, run_seed: int, generation: int) -> np.ndarray:
    """``(population, n_features)`` candidates of a generation (see the module docstring)."""
    rng = rng_for(run_seed, CEM_STREAM, generation)
    n = config.population
    if config.mirrored:
        half = rng.standard_normal((n // 2, mu.size))
        eps = np.concatenate([half, -half])
    else:
        eps = rng.standard_normal((n, mu.size))
    return mu[None, :] + sigma[None, :] * eps


def cem_update(mu: np.ndarray, sigma: np.ndarray, candidates: np.ndarray, fitness: np.ndarray,
               config: CEMConfig) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The smoothed CEM update; returns the new ``mu``, ``sigma`` and the elite's indices (best first)."""
    fitness = np.asarray(fitness, dtype=np.float64)
    if not np.all(np.isfinite(fitness)):
        raise ConfigError(f"CEM fitness must be finite, got {fitness.tolist()}")
    order = np.lexsort((np.arange(len(fitness)), -fitness))  # best first, ties by lower index
    elite = [int(i) for i in order[: config.elite]]
    e = candidates[elite]
    a = config.smoothing
    new_mu = (1.0 - a) * mu + a * e.mean(axis=0)
    new_var = (1.0 - a) * sigma**2 + a * e.var(axis=0)
    new_sigma = np.maximum(np.sqrt(new_var), config.min_sigma)
    return new_mu, new_sigma, elite


# ---------------------------------------------------------------------------- running policies on a vector env
def _sub_infos(venv: Any, infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Per sub-env ``info`` dicts: the native env's ``last_infos``, else Gymnasium's batched dict unbatched."""
    last = getattr(venv, "last_infos", None)
    if isinstance(last, (list, tuple)) and len(last) == n:
        return list(last)

    def unbatch(d: dict[str, Any], i: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if k.startswith("_"):
                continue
            mask = d.get("_" + k)
            if mask is not None and not bool(np.asarray(mask)[i]):
                continue
            out[k] = unbatch(v, i) if isinstance(v, dict) else v[i]
        return out

    return [unbatch(infos, i) for i in range(n)]


def make_vector_env(env_id: str, num_envs: int, env_kwargs: dict[str, Any], vec: str = "native") -> Any:
    """``num_envs`` sub-envs of ``env_id``: the native population env (``vec="native"``, ids with a
    vector entry point) or Gymnasium's ``SyncVectorEnv`` (``"sync"``), autoreset ``NEXT_STEP``."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the ids)

    if vec not in VEC_MODES:
        raise UnknownNameError(f"unknown vec {vec!r}: {did_you_mean(str(vec), VEC_MODES)}")
    if env_id not in gym.registry:
        from distillgym.envs import ENV_IDS

        raise UnknownNameError(f"unknown env {env_id!r}: {did_you_mean(env_id, ENV_IDS)}")
    if vec == "native" and gym.spec(env_id).vector_entry_point is None:
        raise ConfigError(f"{env_id!r} has no native vector env (no vector entry point); use vec='sync' "
                          "(--vec sync) or a v2 id such as distillgym/ArithMix-v2")
    mode = "vector_entry_point" if vec == "native" else "sync"
    try:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **env_kwargs)
    except TypeError as err:
        raise ConfigError(f"bad env kwargs {env_kwargs!r} for {env_id!r}: {err}") from None


def _run_chunk(venv: Any, policies: list[LinearMixPolicy], seeds: list[int], groups: list[str] | None) -> list[dict[str, Any]]:
    """One episode per sub-env: sub-env i plays ``policies[i]`` from seed ``seeds[i]``."""
    from gymnasium.vector.utils import iterate

    n = venv.num_envs
    obs, infos = venv.reset(seed=list(seeds))
    obs_list = list(iterate(venv.observation_space, obs))
    info_list = _sub_infos(venv, infos, n)
    feats = [MixFeatures.from_info(info_list[i], groups, obs_list[i]) for i in range(n)]
    for i, f in enumerate(feats):
        policies[i].check_env(f, f" of sub-env {i}")
    phi = [f.reset(obs_list[i], info_list[i]) for i, f in enumerate(feats)]
    shape = tuple(venv.single_action_space.shape)
    equal = np.ones(shape, np.float32)  # the action of a sub-env that already ended (NEXT_STEP ignores it)
    done = np.zeros(n, dtype=bool)
    ret = np.zeros(n)
    steps = np.zeros(n, dtype=int)
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    mixes: list[list[np.ndarray]] = [[] for _ in range(n)]
    while not done.all():
        actions = []
        for i in range(n):
            if done[i]:
                actions.append(equal)
                continue
            p = policies[i].mix(phi[i])
            mixes[i].append(p)
            a = policies[i].act(phi[i])
            if a.shape != shape:
                raise ConfigError(f"the policy's action has shape {a.shape}, the env's {shape}")
            actions.append(a)
        obs, rewards, term, trunc, infos = venv.step(np.stack(actions))
        obs_list = list(iterate(venv.observation_space, obs))
        info_list = _sub_infos(venv, infos, n)
        for i in range(n):
            if done[i]:
                continue
            ret[i] += float(rewards[i])
            steps[i] += 1
            if term[i] or trunc[i]:
                done[i] = True
                final = info_list[i].get("final") or {}
                out[i] = {
                    "return": float(ret[i]),
                    "steps": int(steps[i]),
                    "val_start": final.get("val_accuracy_start"),
                    "val_end": final.get("val_accuracy_end"),
                    "test": final.get("test_accuracy"),  # recorded for the curve; never used by the update
                    "mean_mix": np.mean(mixes[i], axis=0).round(5).tolist(),
                }
            else:
                phi[i] = feats[i].step(obs_list[i], info_list[i])
    return out


def evaluate_policies(venv: Any, policies: list[LinearMixPolicy], seeds: list[int],
                      groups: list[str] | None = None) -> list[dict[str, Any]]:
    """Every (policy, seed) pair (policy-major: ``[(p0, s0), (p0, s1), ..., (p1, s0), ...]``) as one
    episode on ``venv``'s sub-envs, in chunks of ``venv.num_envs`` (the last chunk padded with
    copies of its last pair, whose results are dropped); returns one record per pair: ``return``,
    ``steps``, ``val_start``, ``val_end``, ``test`` and the episode's ``mean_mix``."""
    pairs = [(p, s) for p in range(len(policies)) for s in seeds]
    n = venv.num_envs
    out: list[dict[str, Any]] = []
    for start in range(0, len(pairs), n):
        chunk = pairs[start:start + n]
        real = len(chunk)
        chunk = chunk + [chunk[-1]] * (n - real)
        res = _run_chunk(venv, [policies[p] for p, _ in chunk], [s for _, s in chunk], groups)
        out.extend(res[:real])
    return out


# ---------------------------------------------------------------------------- records
def _versions() -> dict[str, str]:
    import gymnasium
    import torch

    import distillgym

    return {"python": platform.python_version(), "distillgym": distillgym.__version__, "torch": torch.__version__,
            "gymnasium": gymnasium.__version__, "numpy": np.__version__}


def latest_generation(out_dir: str | os.PathLike[str]) -> int | None:
    """The largest ``G`` of ``OUT/checkpoints/gen_<G>.json``, or None."""
    best = None
    for p in (Path(out_dir) / "checkpoints").glob("gen_*.json"):
        stem = p.stem[4:]
        if stem.isdigit() and (best is None or int(stem) > best):
            best = int(stem)
    return best


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    tmp.replace(path)


def read_log(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The generations of ``OUT/log.jsonl``, in order."""
    p = Path(out_dir) / LOG_FILE
    if not p.is_file():
        raise ConfigError(f"no {LOG_FILE} in {str(out_dir)!r}; it is written by train_cem while it trains")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------- the trainer
def train_cem(
    env_id: str,
    out_dir: str | os.PathLike[str],
    generations: int = 20,
    config: CEMConfig | dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    num_envs: int | None = None,
    vec: str = "native",
    resume: bool = False,
    max_seconds: float | None = None,
    torch_threads: int | None = None,
    command: str | None = None,
    plot: bool = True,
    verbose: int = 1,
) -> dict[str, Any]:
    """Train a :class:`~distillgym.train.mix_policy.LinearMixPolicy` with CEM; returns a JSON-able summary.

    ``generations``: how many generations the run has in all (a resumed run continues up to it;
    0 writes the untrained policy). ``config``: :class:`CEMConfig` or a dict of its fields.
    ``num_envs``: sub-envs of the vector env (default: every (policy, seed) pair of a generation at
    once). ``vec``: ``"native"`` (one population of students) or ``"sync"`` (ids without a native
    vector env). ``resume``: continue from the latest checkpoint in ``out_dir`` (same configuration).
    ``max_seconds``: do not start a generation expected (by the last one's wall time) to end after
    this much wall time of this call. ``torch_threads``: ``torch.set_num_threads`` here (the native
    env trains its students in this process). ``command``: recorded in ``policy.json``.

    Returns ``{"path", "out_dir", "generations", "requested_generations", "episodes", "seconds",
    "stopped_by_time", "resumed_from", "curve_png", "final_mean_gain"}`` (the last generation's
    paired gain of the mean over the init in validation return, when both were run)."""
    t0 = time.perf_counter()
    cfg = config if isinstance(config, CEMConfig) else CEMConfig.from_kwargs(config)
    cfg.validate()
    check_int("", "generations", generations, 0)
    check_int("", "seed", seed, 0)
    if vec not in VEC_MODES:
        raise UnknownNameError(f"unknown vec {vec!r}: {did_you_mean(str(vec), VEC_MODES)}")
    if num_envs is not None:
        check_int("", "num_envs", num_envs, 1)
    if max_seconds is not None:
        check_number("", "max_seconds", max_seconds, 0.0)
    if torch_threads is not None:
        check_int("", "torch_threads", torch_threads, 1)
        import torch

        torch.set_num_threads(int(torch_threads))
    env_kwargs = dict(env_kwargs or {})
    if generations:
        training_seeds(seed, generations - 1, cfg.seeds_per_generation)  # the whole run's seeds fit the range

    # The env's features (and so the policy's weights) from one single env's static info.
    import gymnasium as gym

    import distillgym  # noqa: F401
    from distillgym.envs import ENV_IDS

    if env_id not in gym.registry:
        raise UnknownNameError(f"unknown env {env_id!r}: {did_you_mean(env_id, ENV_IDS)}")
    try:
        probe = gym.make(env_id, **env_kwargs)
    except TypeError as err:
        raise ConfigError(f"bad env kwargs {env_kwargs!r} for {env_id!r}: {err}") from None
    static = probe.unwrapped.static_info()
    probe.close()
    features = MixFeatures.from_info(static, cfg.groups)
    n_feat = features.n_features
    if cfg.init_theta is not None and len(cfg.init_theta) != n_feat:
        raise ConfigError(f"CEMConfig init_theta must have {n_feat} weights ({features.names}), got {len(cfg.init_theta)}")

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    n_refs = int(cfg.eval_mean) + int(cfg.eval_init)
    pairs = (cfg.population + n_refs) * cfg.seeds_per_generation
    n_env = int(num_envs) if num_envs is not None else pairs
    run = json.loads(json.dumps({"algo": "cem", "env": env_id, "env_kwargs": env_kwargs, "config": asdict(cfg),
                                 "seed": seed, "num_envs": n_env, "vec": vec, "level": static["level"],
                                 "features": features.names}))
    run_path = out / "run.json"
    start = latest_generation(out) if resume else None
    if start is not None and run_path.is_file():
        before = json.loads(run_path.read_text())
        diff = [k for k in _RUN_KEYS if before.get(k) != run.get(k)]
        if diff:
            raise ConfigError(
                f"cannot resume {str(out)!r}: its run.json differs in {diff} (was { {k: before.get(k) for k in diff} }, "
                f"now { {k: run.get(k) for k in diff} }); resume with the same arguments or train into a new --out folder"
            )
    elif not resume and latest_generation(out) is not None:
        raise ConfigError(f"{str(out)!r} already holds checkpoints of a run; pass resume=True (--resume) to continue "
                          "it or choose a new --out folder")
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    _write_json(run_path, run)

    if start is not None:
        ck = json.loads((ckpt_dir / f"gen_{start:04d}.json").read_text())
        mu, sigma = np.asarray(ck["mu"], np.float64), np.asarray(ck["sigma"], np.float64)
        log_p = out / LOG_FILE
        if log_p.is_file():  # keep the generations the checkpoint includes (a crash may have left one more)
            kept = [ln for ln in log_p.read_text().splitlines() if ln.strip() and json.loads(ln)["generation"] < start]
            log_p.write_text("".join(ln + "\n" for ln in kept))
    else:
        start = 0
        mu = np.zeros(n_feat) if cfg.init_theta is None else np.asarray(cfg.init_theta, np.float64)
        sigma = np.full(n_feat, cfg.sigma0)
        _write_json(ckpt_dir / "gen_0000.json", {"generation": 0, "mu": mu.tolist(), "sigma": sigma.tolist()})
        (out / LOG_FILE).write_text("")
    hardware_start = run_hardware(env_kwargs)

    def policy_of(theta: np.ndarray) -> LinearMixPolicy:
        return LinearMixPolicy(features.names, theta, cfg.temperature, features.groups)

    venv = None
    g = start
    stopped_by_time = False
    last_seconds: float | None = None
    episodes = 0
    final_gain: float | None = None
    try:
        while g < generations:
            if max_seconds is not None and last_seconds is not None:
                if time.perf_counter() - t0 + last_seconds > max_seconds:
                    stopped_by_time = True
                    break
            tg = time.perf_counter()
            if venv is None:
                venv = make_vector_env(env_id, n_env, env_kwargs, vec)
            seeds = training_seeds(seed, g, cfg.seeds_per_generation)
            cands = sample_candidates(mu, sigma, cfg, seed, g)
            thetas = list(cands)
            refs: list[str] = []
            if cfg.eval_mean:
                thetas.append(mu.copy())
                refs.append("mean")
            if cfg.eval_init:
                thetas.append(np.zeros(n_feat))
                refs.append("init")
            res = evaluate_policies(venv, [policy_of(t) for t in thetas], seeds, cfg.groups)
            episodes += len(res)
            m = cfg.seeds_per_generation
            rets = np.array([r["return"] for r in res], dtype=np.float64).reshape(len(thetas), m)
            fitness = rets.mean(axis=1)
            new_mu, new_sigma, elite = cem_update(mu, sigma, cands, fitness[: cfg.population], cfg)
            per = [res[i * m:(i + 1) * m] for i in range(len(thetas))]
            entry: dict[str, Any] = {
                "generation": g,
                "seeds": seeds,
                "fitness": fitness[: cfg.population].tolist(),
                "returns": rets[: cfg.population].tolist(),
                "elite": elite,
                "candidates": [c.tolist() for c in cands],
                "episodes": [[{k: v for k, v in r.items() if k != "mean_mix"} for r in p] for p in per[: cfg.population]],
                "mu_before": mu.tolist(),
                "sigma_before": sigma.tolist(),
                "mu": new_mu.tolist(),
                "sigma": new_sigma.tolist(),
            }
            for j, name in enumerate(refs):
                i = cfg.population + j
                entry[name] = {"fitness": float(fitness[i]), "returns": rets[i].tolist(),
                               "val_end": [r["val_end"] for r in per[i]], "test": [r["test"] for r in per[i]],
                               "mean_mix": per[i][0]["mean_mix"]}
            if "mean" in entry and "init" in entry:
                entry["mean_gain"] = entry["mean"]["fitness"] - entry["init"]["fitness"]
                final_gain = entry["mean_gain"]
            mu, sigma = new_mu, new_sigma
            g += 1
            last_seconds = time.perf_counter() - tg
            entry["seconds"] = last_seconds
            entry["load_average"] = run_hardware(env_kwargs).get("load_average")
            # checkpoint first, then the log line: a crash in between repeats no generation on resume
            _write_json(ckpt_dir / f"gen_{g:04d}.json", {"generation": g, "mu": mu.tolist(), "sigma": sigma.tolist()})
            with open(out / LOG_FILE, "a") as f:
                f.write(json.dumps(entry) + "\n")
                f.flush()
                os.fsync(f.fileno())
            _save_policy(out, policy_of(mu), env_id, env_kwargs, run, g, generations, t0, hardware_start, command,
                         start, stopped_by_time=False)
            if verbose:
                gain = f", mean - init {entry['mean_gain']:+.4f}" if "mean_gain" in entry else ""
                print(f"[cem] generation {g}/{generations}: fitness best {fitness[elite[0]]:+.4f} median "
                      f"{float(np.median(fitness[: cfg.population])):+.4f}{gain}, sigma {float(sigma.mean()):.3f}, "
                      f"{last_seconds:.0f} s", flush=True)
    finally:
        if venv is not None:
            venv.close()
    path = _save_policy(out, policy_of(mu), env_id, env_kwargs, run, g, generations, t0, hardware_start, command,
                        start, stopped_by_time)
    (out / "README.md").write_text(render_readme(out))
    curve_png: str | None = None
    if plot and g > 0:
        try:
            curve_png = str(plot_cem_curve(out))
        except ConfigError as err:  # matplotlib missing: the log is still there
            curve_png = f"(not drawn: {err})"
    return {
        "path": str(path),
        "out_dir": str(out),
        "generations": g,
        "requested_generations": generations,
        "episodes": episodes,
        "seconds": time.perf_counter() - t0,
        "stopped_by_time": stopped_by_time,
        "resumed_from": start if resume and start else None,
        "curve_png": curve_png,
        "final_mean_gain": final_gain,
    }


def _save_policy(out: Path, policy: LinearMixPolicy, env_id: str, env_kwargs: dict[str, Any], run: dict[str, Any],
                 done: int, requested: int, t0: float, hardware: dict[str, Any], command: str | None, start: int,
                 stopped_by_time: bool) -> Path:
    """``OUT/policy.json``: the current mean with the training record (segments of resumed runs kept)."""
    path = out / "policy.json"
    previous: dict[str, Any] = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text()).get("training", {})
        except (OSError, ValueError):
            previous = {}
    segments = [s for s in previous.get("segments", []) if s.get("from_generation", -1) < start]
    seconds = time.perf_counter() - t0
    segments.append({"from_generation": start, "to_generation": done, "seconds": seconds, "command": command,
                     "stopped_by_time": stopped_by_time, "hardware": hardware})
    cfg = run["config"]
    training = {
        "algo": "cem",
        "generations": done,
        "requested_generations": requested,
        "episodes": done * ((cfg["population"] + int(cfg["eval_mean"]) + int(cfg["eval_init"]))
                            * cfg["seeds_per_generation"]),
        "seed": run["seed"],
        "training_seeds": ([training_seeds(run["seed"], 0, cfg["seeds_per_generation"])[0],
                            training_seeds(run["seed"], done - 1, cfg["seeds_per_generation"])[-1]] if done else []),
        "config": cfg,
        "num_envs": run["num_envs"],
        "vec": run["vec"],
        "seconds": sum(s["seconds"] for s in segments),
        "segments": segments,
        "command": command,
        "hardware": hardware,
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return policy.save(path, env=env_id, env_kwargs=env_kwargs, level=run["level"], training=training)


# ---------------------------------------------------------------------------- the training curve
def plot_cem_curve(out_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None) -> Path:
    """Draw ``OUT/curve.png`` from ``log.jsonl``; returns its path.

    Three panels against the generation: (1) every candidate's fitness (points; the training
    seeds change every generation, so compare within a generation), the mean's and the init's;
    (2) the mean's paired gain over the init on the same seeds (validation return, the fitness
    scale) and in hidden-test accuracy (recorded, never used by the update), with running means of 3;
    (3) the mean standard deviation of the search and the norm of the mean's weights."""
    from distillgym.runtime import pyplot

    log = read_log(out_dir)
    if not log:
        raise ConfigError(f"{str(out_dir)!r}: log.jsonl has no generation yet")
    plt = pyplot()
    fig, axes = plt.subplots(3, 1, figsize=(8, 9.5), sharex=True)
    gens = [e["generation"] + 1 for e in log]
    ax = axes[0]
    for x, e in zip(gens, log, strict=True):
        ax.scatter([x] * len(e["fitness"]), e["fitness"], s=10, alpha=0.4, color="C0")
    ax.scatter([], [], s=10, color="C0", label="candidates (mean return over the generation's seeds)")
    for key, colour, label in (("mean", "C1", "current mean (the policy)"), ("init", "C2", "untrained init (equal mix)")):
        if key in log[0]:
            ax.plot(gens, [e[key]["fitness"] for e in log], marker="o", ms=3, color=colour, label=label)
    ax.set_ylabel("fitness (validation return)")
    ax.legend(loc="best", fontsize=8)
    ax = axes[1]
    if "mean" in log[0] and "init" in log[0]:
        val = [e["mean"]["fitness"] - e["init"]["fitness"] for e in log]
        test = [float(np.mean(e["mean"]["test"]) - np.mean(e["init"]["test"]))
                if all(t is not None for t in e["mean"]["test"] + e["init"]["test"]) else math.nan for e in log]
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.plot(gens, val, marker="o", ms=3, color="C1", alpha=0.5, label="validation return (fitness)")
        ax.plot(gens, _rolling(val, 3), color="C1", label="validation, mean of last 3")
        ax.plot(gens, test, marker="s", ms=3, color="C3", alpha=0.5, label="hidden-test accuracy (not used in training)")
        ax.plot(gens, _rolling(test, 3), color="C3", label="test, mean of last 3")
        ax.legend(loc="best", fontsize=8)
    ax.set_ylabel("mean - init (same seeds)")
    ax = axes[2]
    ax.plot(gens, [float(np.mean(e["sigma"])) for e in log], marker=".", color="C4", label="mean sigma")
    ax.set_ylabel("mean sigma", color="C4")
    ax2 = ax.twinx()
    ax2.plot(gens, [float(np.linalg.norm(e["mu"])) for e in log], marker=".", color="C5", label="|mu|")
    ax2.set_ylabel("|mu| (norm of the policy's weights)", color="C5")
    ax.set_xlabel("generation")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    run_p = Path(out_dir) / "run.json"
    title = str(out_dir)
    if run_p.is_file():
        run = json.loads(run_p.read_text())
        c = run["config"]
        secs = sum(e.get("seconds", 0.0) for e in log)
        title = (f"CEM on {run['env']}: {len(log)} generations x {c['population']} candidates x "
                 f"{c['seeds_per_generation']} seeds, {secs / 3600:.2f} h")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path) if path is not None else Path(out_dir) / "curve.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def render_readme(out_dir: str | os.PathLike[str]) -> str:
    """A Markdown record of a CEM run folder: the command, env, seeds, wall time, hardware and versions
    (from ``policy.json``), the curve's numbers per generation (from ``log.jsonl``), the policy's largest
    weights, and its mean mix per cell in the last generation it was run."""
    out = Path(out_dir)
    pol = json.loads((out / "policy.json").read_text())
    tr = pol.get("training", {})
    log = read_log(out) if (out / LOG_FILE).is_file() else []
    hw = tr.get("hardware", {})
    lines = [
        f"# CEM teacher: {pol.get('env')}",
        "",
        f"A linear per-cell mix policy (`distillgym.train.mix_policy`, {len(pol['feature_names'])} weights, feature "
        f"groups {pol.get('groups')}) trained by the cross-entropy method (`distillgym.train.cem`). Play it with "
        f"`distillgym run --env {pol.get('env')} --teacher cem:{out / 'policy.json'}`.",
        "",
        "## Training record",
        "",
        f"- command: `{tr.get('command')}`" + ("" if len(tr.get("segments", [])) < 2 else
                                                f" (in {len(tr['segments'])} segments: " + "; ".join(
                                                    f"`{s.get('command')}`" for s in tr["segments"]) + ")"),
        f"- env: `{pol.get('env')}` with env kwargs `{json.dumps(pol.get('env_kwargs'))}`",
        f"- generations: {tr.get('generations')} (requested {tr.get('requested_generations')}), "
        f"{tr.get('episodes')} training episodes, CEM settings `{json.dumps(tr.get('config'))}`",
        f"- training seeds: {tr.get('training_seeds')} (first and last; the reserved range "
        f"distillgym.seeding.TEACHER_TRAINING_SEEDS, used by no benchmark)",
        f"- wall time: {tr.get('seconds', 0) / 3600:.2f} h ({tr.get('seconds', 0):.0f} s) on {hw.get('processor')} "
        f"({hw.get('cpu_count')} CPUs, {hw.get('torch_threads')} torch thread(s), students on "
        f"{hw.get('student_device')}, CUDA available: {hw.get('cuda_available')}), load average at the start "
        f"{hw.get('load_average')}",
        f"- versions: `{json.dumps(tr.get('versions'))}`",
        "",
    ]
    if log:
        lines += [
            "## Curve (curve.png)",
            "",
            "Per generation: the candidates' fitness (mean validation return over the generation's seeds), the "
            "current mean's and the untrained init's on the same seeds, and their difference in validation return "
            "and in hidden-test accuracy (recorded, never used in training).",
            "",
            "| gen | seeds | best | median | mean | init | mean - init (val) | mean - init (test) | sigma | s |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for e in log:
            f = np.asarray(e["fitness"])
            m, i = e.get("mean"), e.get("init")
            dtest = (float(np.mean(m["test"]) - np.mean(i["test"])) if m and i and None not in m["test"] + i["test"]
                     else math.nan)
            lines.append(
                f"| {e['generation'] + 1} | {e['seeds'][0]}.. | {f.max():+.4f} | {float(np.median(f)):+.4f} | "
                + (f"{m['fitness']:+.4f}" if m else "") + " | " + (f"{i['fitness']:+.4f}" if i else "") + " | "
                + (f"{m['fitness'] - i['fitness']:+.4f}" if m and i else "") + f" | {dtest:+.4f} | "
                f"{float(np.mean(e['sigma'])):.3f} | {e.get('seconds', 0):.0f} |")
        lines.append("")
    policy = LinearMixPolicy(pol["feature_names"], pol["theta"], float(pol.get("temperature", 1.0)), pol.get("groups"))
    lines += ["## What it learned", "", "The largest weights (a score is `theta . phi` per action entry, the mix "
              "its softmax; +1 multiplies an entry's share by e):", "", "| feature | weight |", "|---|---:|"]
    lines += [f"| `{n}` | {w:+.3f} |" for n, w in policy.explain(12)]
    last = next((e for e in reversed(log) if e.get("mean")), None)
    if last is not None:
        mix = np.asarray(last["mean"]["mean_mix"], dtype=float)
        lines += ["", f"Mean mix over the episode of generation {last['generation'] + 1}'s mean (first seed), per cell "
                  "(rows: skills; columns: difficulties" + ("; summed over sources" if mix.ndim == 3 else "") + "):", ""]
        if mix.ndim == 3:
            src = mix.sum(axis=(0, 1))
            names = [n.split("=", 1)[1] for n in pol["feature_names"] if n.startswith("source=")]
            names = names if len(names) == len(src) else [str(k) for k in range(len(src))]
            lines.append("Share per source: " + ", ".join(f"{k} {v:.3f}" for k, v in zip(names, src, strict=True)))
            lines.append("")
            mix = mix.sum(axis=2)
        skills = [n.split("=", 1)[1] for n in pol["feature_names"] if n.startswith("skill=") and "*" not in n]
        lines.append("| skill | " + " | ".join(f"d{d}" for d in range(mix.shape[1])) + " |")
        lines.append("|---|" + "---:|" * mix.shape[1])
        for s, row in enumerate(mix):
            name = skills[s] if s < len(skills) else str(s)
            lines.append(f"| {name} | " + " | ".join(f"{x:.3f}" for x in row) + " |")
    lines.append("")
    return "\n".join(lines)


def _rolling(y: list[float], k: int) -> list[float]:
    out = []
    for i in range(len(y)):
        w = [v for v in y[max(0, i - k + 1): i + 1] if math.isfinite(v)]
        out.append(sum(w) / len(w) if w else math.nan)
    return out
