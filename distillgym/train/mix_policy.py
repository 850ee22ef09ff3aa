"""A small teacher policy that acts per cell (per cell x source): linear scores of per-cell features, softmaxed.

The policy a sample-efficient trainer (:mod:`distillgym.train.cem`) can search: every step, each
action entry ``e`` (a cell ``(s, d)`` on the mix level; a cell and data source ``(s, d, k)`` on a
level with a source axis) gets a feature vector ``phi_e`` computed from the env's observation and
``info`` (:class:`MixFeatures`), its score is ``theta . phi_e`` with one weight vector ``theta`` shared
by every entry, and the step's mix is ``p = softmax(score / temperature)`` over all entries. The
action is :func:`distillgym.levels.mix_to_action` of ``p`` (exact: the env trains on the
allocation of ``p``). ``theta = 0`` scores every entry alike, so **the untrained policy is the
equal mix** (``stratified`` on the mix level; equal shares over cells x sources on a source
level): "beats its initialisation" means "learned something beyond the equal mix".

Why this shape: an env step costs seconds of student training, so a trainer sees a few hundred
episodes, not millions of transitions; a policy of a few dozen numbers, each with a meaning (how
much more data a skill gets, how much a source is preferred for a skill, how strongly the mix
follows the errors), can be searched with that few, and read afterwards (:meth:`LinearMixPolicy.explain`).

Features (feature set ``percell-v1``; :data:`FEATURE_GROUPS`)
-------------------------------------------------------------
Notation: ``S`` skills and ``D`` difficulties (``info["skills"]``, ``info["n_difficulties"]``), ``K``
sources (``info["action"]["sources"]``; ``K = 1`` on the mix level), ``a_c`` the validation
accuracy of cell ``c`` in the current observation (``observation["accuracy"]``), ``u`` the
fraction of the budget spent (``1 - observation["budget_left"]``), ``w_c`` the cell's evaluation
weight divided by the largest one (``info["eval_weights"]`` or ``observation["target"]``; envs
without them evaluate every cell alike). A feature that is the same for every entry would change
no mix (a softmax is unchanged by adding a constant to every score), so there is no bias and no
global feature on its own: the budget and the step enter only through products with a cell's own
features. Each group, in order:

- ``skill`` (``S`` features): one-hot of the cell's skill (a fixed preference per skill);
- ``difficulty`` (``D``): one-hot of the cell's difficulty;
- ``accuracy`` (1): ``a_c``, in [0, 1] (negative weight: more data where the student errs, as the
  error-proportional mix);
- ``accuracy_change`` (1): ``clip(10 * (a_c - a_c_previous), -1, 1)``, the last step's change
  scaled so that a change of 0.1 is 1 (0 at reset; positive weight: follow learning progress);
- ``prerequisites`` (1): the mean validation accuracy of the cell's prerequisite cells, in [0, 1]:
  ``(s, d - 1)`` and ``(p, d)`` for each direct prerequisite skill ``p`` of ``s``
  (``info["prerequisites"]``); 1 for a cell without any (positive weight: mastery gating);
- ``data`` (1): the cell's share of the budget spent so far in the episode, in units of an equal
  share, clipped at 4 and divided by 4, in [0, 1] (0.25 throughout under the equal mix; 0 at reset);
  counted from ``info["action"]["units"]`` where sources cost different units, else
  ``info["action"]["allocation"]`` (examples), summed over sources;
- ``progress_x_difficulty`` (1): ``u * d / (D - 1)`` (0 when ``D == 1``; an easy-to-hard schedule);
- ``progress_x_accuracy`` (1): ``u * a_c`` (how the pull of the errors changes over the episode);
- ``target`` (1), ``progress_x_target`` (1): ``w_c`` and ``u * w_c``; only where the env weighs
  cells unequally (target skills: teach prerequisites early, targets late);
- ``needed`` (1): 1 for a cell whose skill is a target skill (a skill with a cell of positive
  weight) or one the target skills need, directly or through others (the closure of
  ``info["prerequisites"]``, as the ``prereq-first`` schedule computes it), else 0; only where the env
  weighs cells unequally, and **opt-in** (:data:`OPT_IN_GROUPS`: not among the default groups, so
  runs and policies that name no groups keep their features). With ``target`` and
  ``progress_x_target`` it spans a smooth prerequisites-first schedule in three weights (large
  ``needed``: nothing for skills no target needs; negative ``target`` with positive
  ``progress_x_target``: prerequisites early, targets late);
- ``source`` (``K``): one-hot of the entry's source; ``skill_x_source`` (``S * K``): one-hot of
  (skill, source), so each skill can prefer its own source; ``accuracy_x_source`` (``K``):
  ``a_c`` times the source one-hot (cheap data where the student is already good, or the
  reverse); only on levels with a source axis (``K > 1``).

The one-hot groups sum to 1 over their members, so each has one direction that changes no mix
(adding the same number to every member's weight); it is harmless. ``groups=`` chooses a subset;
a saved policy records its groups and feature names, and the player refuses an env whose features
differ (:meth:`LinearMixPolicy.check_env`).

Everything is float64 numpy, so the trainer's and the player's actions are the same numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from distillgym.errors import ConfigError, UnknownNameError, check_number, did_you_mean
from distillgym.levels import mix_to_action

__all__ = [
    "FEATURE_SET",
    "FEATURE_GROUPS",
    "CELL_GROUPS",
    "TARGET_GROUPS",
    "OPT_IN_GROUPS",
    "SOURCE_GROUPS",
    "POLICY_FORMAT",
    "MixFeatures",
    "LinearMixPolicy",
    "cell_prerequisites",
    "prerequisite_closure",
    "eval_weights_of",
]

FEATURE_SET = "percell-v1"
"""Name of the feature set this module computes (recorded in a saved policy)."""
CELL_GROUPS = ("skill", "difficulty", "accuracy", "accuracy_change", "prerequisites", "data",
               "progress_x_difficulty", "progress_x_accuracy")
"""Feature groups every mix-level env has."""
TARGET_GROUPS = ("target", "progress_x_target", "needed")
"""Groups that exist where the env weighs cells unequally (evaluation weights)."""
OPT_IN_GROUPS = ("needed",)
"""Groups used only when named in ``groups=`` (added after policies were trained without them: the
default groups, and so every earlier run's features, stay as they were)."""
SOURCE_GROUPS = ("source", "skill_x_source", "accuracy_x_source")
"""Groups that exist on a level with a source axis."""
FEATURE_GROUPS = CELL_GROUPS + TARGET_GROUPS + SOURCE_GROUPS
"""Every group of ``percell-v1``, in feature order (see the module docstring)."""
POLICY_FORMAT = "distillgym.linear-mix-policy"
"""The ``format`` field of a saved policy file (JSON)."""
POLICY_VERSION = 1
CHANGE_SCALE = 10.0
"""``accuracy_change`` is ``clip(CHANGE_SCALE * change, -1, 1)``."""
DATA_CLIP = 4.0
"""``data`` is clipped at this many equal shares, then divided by it."""


def cell_prerequisites(skills: Sequence[str], prerequisites: dict[str, Sequence[str]], n_difficulties: int) -> list[list[int]]:
    """Per flat cell ``s * D + d``: the flat indices of its prerequisite cells, ``(s, d - 1)`` and
    ``(p, d)`` for each direct prerequisite skill ``p`` of ``s`` (names not in ``skills`` ignored)."""
    D = int(n_difficulties)
    index = {k: i for i, k in enumerate(skills)}
    out: list[list[int]] = []
    for s, skill in enumerate(skills):
        for d in range(D):
            pre = [s * D + d - 1] if d > 0 else []
            pre += [index[p] * D + d for p in prerequisites.get(skill, ()) if p in index]
            out.append(pre)
    return out


def prerequisite_closure(skills: Sequence[str], prerequisites: dict[str, Sequence[str]], of: set[str]) -> set[str]:
    """The skills that some skill in ``of`` needs, directly or through others (``of`` itself excluded
    unless one of them is needed by another)."""
    out: set[str] = set()
    stack = [p for k in of for p in prerequisites.get(k, ())]
    while stack:
        k = stack.pop()
        if k in skills and k not in out:
            out.add(k)
            stack.extend(prerequisites.get(k, ()))
    return out


def eval_weights_of(info: dict[str, Any], shape: tuple[int, int], observation: Any = None) -> np.ndarray | None:
    """The env's per-cell evaluation weights as an ``(S, D)`` array divided by their maximum, from
    ``info["eval_weights"]`` or ``observation["target"]``; None when absent or equal everywhere."""
    w: Any = info.get("eval_weights") if isinstance(info, dict) else None
    if w is None and isinstance(observation, dict):
        w = observation.get("target")
    if w is None:
        return None
    try:
        a = np.asarray(w, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise ConfigError(f"the env's evaluation weights must be numbers over the {shape} cells, got {w!r}") from None
    if not np.all(np.isfinite(a)) or np.any(a < 0) or a.max() <= 0:
        raise ConfigError(f"the env's evaluation weights must be finite, non-negative and not all zero, got {w!r}")
    if np.all(a == a.flat[0]):
        return None
    return a / a.max()


def _action_shape(info: dict[str, Any]) -> tuple[tuple[int, ...], list[str] | None]:
    """The action's shape and its source names from a mix-type env's reset ``info``."""
    level = info.get("level")
    desc = info.get("action") if isinstance(info.get("action"), dict) else {}
    S, D = len(info["skills"]), int(info["n_difficulties"])
    shape = tuple(int(x) for x in desc.get("action_shape", (S, D)))
    if level == "cell" or level == "open" or len(shape) not in (2, 3) or shape[:2] != (S, D):
        raise ConfigError(
            f"the linear mix policy acts on a mix over cells (action shape (skills, difficulties)) or over cells x "
            f"sources (skills, difficulties, sources); this env's level is {level!r} with action {desc!r}; use a "
            "mix-level id such as distillgym/ArithMix-v2"
        )
    sources = None
    if len(shape) == 3:
        names = desc.get("sources")
        sources = [str(s) for s in names] if names is not None else [f"source{k}" for k in range(shape[2])]
        if len(sources) != shape[2]:
            raise ConfigError(f"info['action']['sources'] names {len(sources)} sources for an action of shape {shape}")
    return shape, sources


class MixFeatures:
    """The ``percell-v1`` features of one episode, per action entry (see the module docstring).

    Build with :meth:`from_info` (an env's reset ``info``) and optionally the ``groups`` to use
    (default: every group the env has). :meth:`reset` starts an episode from the reset
    observation and info, :meth:`step` advances it by one step; both return an array of shape
    ``action_shape + (n_features,)``, float64. ``names`` are the feature names, in order."""

    name = FEATURE_SET

    def __init__(
        self,
        skills: Sequence[str],
        n_difficulties: int,
        prerequisites: dict[str, Sequence[str]] | None = None,
        sources: Sequence[str] | None = None,
        eval_weights: np.ndarray | None = None,
        groups: Sequence[str] | None = None,
    ) -> None:
        self.skills = [str(s) for s in skills]
        if not self.skills:
            raise ConfigError("MixFeatures needs at least one skill")
        self.S, self.D = len(self.skills), int(n_difficulties)
        if self.D < 1:
            raise ConfigError(f"MixFeatures n_difficulties must be an integer >= 1, got {n_difficulties!r}")
        self.sources = None if sources is None else [str(s) for s in sources]
        self.K = 1 if self.sources is None else len(self.sources)
        self.shape: tuple[int, ...] = (self.S, self.D) if self.sources is None else (self.S, self.D, self.K)
        self.eval_weights = None if eval_weights is None else np.asarray(eval_weights, np.float64).reshape(self.S, self.D)
        self.prerequisites = {k: list(v) for k, v in (prerequisites or {}).items()}
        self._pre = cell_prerequisites(self.skills, self.prerequisites, self.D)
        self.available = self.available_groups(self.sources is not None, self.eval_weights is not None)
        if groups is None:
            groups = [g for g in self.available if g not in OPT_IN_GROUPS]
        groups = [str(g) for g in groups]
        for g in groups:
            if g not in FEATURE_GROUPS:
                raise UnknownNameError(f"unknown feature group {g!r}: {did_you_mean(g, FEATURE_GROUPS)}")
            if g not in self.available:
                why = "a source axis" if g in SOURCE_GROUPS else "unequal evaluation weights (target cells)"
                raise ConfigError(f"feature group {g!r} needs an env with {why}; this env's groups are {self.available}")
        if len(set(groups)) != len(groups) or not groups:
            raise ConfigError(f"feature groups must be distinct and not empty, got {groups}")
        self.groups = [g for g in FEATURE_GROUPS if g in groups]  # canonical order
        self._needed = self._needed_cells() if "needed" in self.groups else None
        self.names = self._names()
        self.n_features = len(self.names)
        self._started = False

    @staticmethod
    def available_groups(has_sources: bool, has_targets: bool) -> list[str]:
        """The groups an env has: the cell groups, the target groups with unequal evaluation
        weights, the source groups with a source axis (the opt-in groups included)."""
        return [*CELL_GROUPS, *(TARGET_GROUPS if has_targets else ()), *(SOURCE_GROUPS if has_sources else ())]

    @classmethod
    def from_info(cls, info: dict[str, Any], groups: Sequence[str] | None = None, observation: Any = None) -> MixFeatures:
        """From an env's reset ``info`` (and observation, for a ``target`` key): skills,
        difficulties, prerequisites, the action's source axis and the evaluation weights."""
        missing = [k for k in ("skills", "n_difficulties") if k not in info]
        if missing:
            raise ConfigError(f"MixFeatures.from_info needs a teaching env's reset info; it lacks {missing}")
        shape, sources = _action_shape(info)
        weights = eval_weights_of(info, shape[:2], observation)
        return cls(info["skills"], int(info["n_difficulties"]), info.get("prerequisites") or {}, sources, weights, groups)

    def _needed_cells(self) -> np.ndarray:
        """``(S, D)``: 1 on the rows of the target skills and of every skill they need (``needed``)."""
        if self.eval_weights is None:  # unreachable: the group check above requires evaluation weights
            raise ConfigError("feature group 'needed' needs an env with unequal evaluation weights (target cells)")
        targets = {self.skills[s] for s in range(self.S) if (self.eval_weights[s] > 0).any()}
        needed = targets | prerequisite_closure(self.skills, self.prerequisites, targets)
        rows = np.array([k in needed for k in self.skills], dtype=np.float64)
        return np.broadcast_to(rows[:, None], (self.S, self.D)).copy()

    def _names(self) -> list[str]:
        out: list[str] = []
        for g in self.groups:
            if g == "skill":
                out += [f"skill={s}" for s in self.skills]
            elif g == "difficulty":
                out += [f"difficulty={d}" for d in range(self.D)]
            elif g == "source":
                out += [f"source={k}" for k in self.sources or ()]
            elif g == "skill_x_source":
                out += [f"skill={s}*source={k}" for s in self.skills for k in self.sources or ()]
            elif g == "accuracy_x_source":
                out += [f"accuracy*source={k}" for k in self.sources or ()]
            else:
                out.append(g)
        return out

    # ------------------------------------------------------------------ episode state
    def reset(self, observation: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        """Start an episode; returns the features for the first action."""
        self._acc = self._accuracy(observation)
        self._change = np.zeros((self.S, self.D))
        self._received = np.zeros((self.S, self.D))
        self._started = True
        return self._features(observation)

    def step(self, observation: dict[str, Any], info: dict[str, Any]) -> np.ndarray:
        """Advance by one env step (its observation and info); returns the features for the next action."""
        if not self._started:
            raise ConfigError("MixFeatures.step() before reset(): start each episode with reset(observation, info)")
        alloc = self._allocation(info)
        if alloc is not None:
            self._received += alloc
        acc = self._accuracy(observation)
        self._change = acc - self._acc
        self._acc = acc
        return self._features(observation)

    def _accuracy(self, observation: Any) -> np.ndarray:
        try:
            acc = np.asarray(observation["accuracy"], dtype=np.float64)
        except (KeyError, TypeError, IndexError):
            raise ConfigError("MixFeatures needs a teaching env's observation (a dict with 'accuracy')") from None
        if acc.shape != (self.S, self.D):
            raise ConfigError(f"observation['accuracy'] has shape {acc.shape}, these features were built for {(self.S, self.D)}")
        return acc

    def _allocation(self, info: dict[str, Any]) -> np.ndarray | None:
        """The step's budget per cell: ``info["action"]["units"]`` (a level whose sources cost different
        units) or ``["allocation"]`` (examples, one unit each), summed over sources; None if absent."""
        a = info.get("action") if isinstance(info, dict) else None
        if not isinstance(a, dict):
            return None
        spent = a.get("units") if a.get("units") is not None else a.get("allocation")
        if spent is None:
            return None
        m = np.asarray(spent, dtype=np.float64)
        if m.shape[:2] != (self.S, self.D):
            raise ConfigError(f"info['action']['allocation'] has shape {m.shape}, expected {(self.S, self.D)}[+ sources]")
        return m.reshape(self.S, self.D, -1).sum(axis=2)

    def _features(self, observation: dict[str, Any]) -> np.ndarray:
        S, D, K = self.S, self.D, self.K
        left = float(np.asarray(observation.get("budget_left", [1.0]), dtype=np.float64).reshape(-1)[0])
        u = float(np.clip(1.0 - left, 0.0, 1.0))
        acc = self._acc
        flat = acc.reshape(-1)
        pre = np.array([flat[p].mean() if p else 1.0 for p in self._pre]).reshape(S, D)
        total = self._received.sum()
        data = (np.minimum(self._received * (S * D) / total, DATA_CLIP) / DATA_CLIP if total > 0
                else np.zeros((S, D)))
        dfrac = np.broadcast_to((np.arange(D) / (D - 1) if D > 1 else np.zeros(D))[None, :], (S, D))
        cols: list[np.ndarray] = []  # each (S, D, K) or (S, D, K, n)

        def cell(x: np.ndarray) -> None:
            cols.append(np.broadcast_to(np.asarray(x, np.float64)[:, :, None, None], (S, D, K, 1)))

        for g in self.groups:
            if g == "skill":
                cols.append(np.broadcast_to(np.eye(S)[:, None, None, :], (S, D, K, S)))
            elif g == "difficulty":
                cols.append(np.broadcast_to(np.eye(D)[None, :, None, :], (S, D, K, D)))
            elif g == "accuracy":
                cell(acc)
            elif g == "accuracy_change":
                cell(np.clip(CHANGE_SCALE * self._change, -1.0, 1.0))
            elif g == "prerequisites":
                cell(pre)
            elif g == "data":
                cell(data)
            elif g == "progress_x_difficulty":
                cell(u * dfrac)
            elif g == "progress_x_accuracy":
                cell(u * acc)
            elif g == "target":
                cell(self.eval_weights)
            elif g == "progress_x_target":
                cell(u * self.eval_weights)
            elif g == "needed":
                cell(self._needed)
            elif g == "source":
                cols.append(np.broadcast_to(np.eye(K)[None, None, :, :], (S, D, K, K)))
            elif g == "skill_x_source":
                sk = np.einsum("sa,kb->sakb", np.eye(S), np.eye(K)).reshape(S, 1, K, S * K)
                cols.append(np.broadcast_to(sk, (S, D, K, S * K)))
            elif g == "accuracy_x_source":
                cols.append(acc[:, :, None, None] * np.eye(K)[None, None, :, :])
        phi = np.concatenate(cols, axis=-1)
        return phi.reshape(*self.shape, self.n_features)


class LinearMixPolicy:
    """``p = softmax(phi . theta / temperature)`` over the action's entries (see the module docstring).

    ``theta``: one weight per feature (``features.names``); None: zeros, the equal mix.
    :meth:`mix` maps a feature array to the mix, :meth:`act` to the env's action.
    :meth:`save` / :meth:`load` write and read a JSON file (``format`` :data:`POLICY_FORMAT`)."""

    def __init__(self, feature_names: Sequence[str], theta: Sequence[float] | np.ndarray | None = None,
                 temperature: float = 1.0, groups: Sequence[str] | None = None) -> None:
        self.feature_names = [str(n) for n in feature_names]
        self.groups = None if groups is None else [str(g) for g in groups]
        self.temperature = check_number("LinearMixPolicy", "temperature", temperature, 0, open_low=True)
        theta = np.zeros(len(self.feature_names)) if theta is None else np.asarray(theta, dtype=np.float64)
        if theta.shape != (len(self.feature_names),):
            raise ConfigError(f"LinearMixPolicy theta must have one weight per feature ({len(self.feature_names)}), "
                              f"got shape {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ConfigError("LinearMixPolicy theta must be finite")
        self.theta = theta

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def scores(self, phi: np.ndarray) -> np.ndarray:
        phi = np.asarray(phi, dtype=np.float64)
        if phi.shape[-1] != self.n_features:
            raise ConfigError(f"features have {phi.shape[-1]} entries per action entry, the policy {self.n_features}")
        return phi @ self.theta / self.temperature

    def mix(self, phi: np.ndarray) -> np.ndarray:
        """The mix (non-negative, sums to 1) over the action's entries for features ``phi``."""
        z = self.scores(phi)
        z = z - z.max()
        e = np.exp(z)
        return e / e.sum()

    def act(self, phi: np.ndarray) -> np.ndarray:
        """The env's action (float32 in [-1, 1], the features' action shape) for features ``phi``."""
        return mix_to_action(self.mix(phi))

    def check_env(self, features: MixFeatures, where: str = "") -> None:
        """:class:`ConfigError` unless ``features`` (built for an env) have this policy's feature names."""
        if features.names != self.feature_names:
            extra = sorted(set(features.names) - set(self.feature_names))
            lack = sorted(set(self.feature_names) - set(features.names))
            raise ConfigError(
                f"the policy{where} was trained on {self.n_features} features ({self.groups or 'groups not recorded'}) "
                f"but this env gives {features.n_features} ({features.groups}): the env lacks {lack[:6]} and adds "
                f"{extra[:6]}; play it on the env (and env kwargs) it was trained on"
            )

    def explain(self, top: int = 12) -> list[tuple[str, float]]:
        """The ``top`` weights of largest magnitude, as (feature name, weight)."""
        order = np.argsort(-np.abs(self.theta), kind="stable")[:top]
        return [(self.feature_names[i], float(self.theta[i])) for i in order]

    # ------------------------------------------------------------------ files
    def to_dict(self, **extra: Any) -> dict[str, Any]:
        return {
            "format": POLICY_FORMAT,
            "version": POLICY_VERSION,
            "features": FEATURE_SET,
            "groups": self.groups,
            "feature_names": list(self.feature_names),
            "theta": [float(x) for x in self.theta],
            "temperature": self.temperature,
            **extra,
        }

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write the policy (and ``extra`` JSON-able fields: env, training record) to ``path``
        atomically (a temporary file renamed over it). The weights are written with Python's
        shortest round-trip float repr, so :meth:`load` gives the same numbers bit for bit."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(**extra), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "") -> LinearMixPolicy:
        if not isinstance(d, dict) or d.get("format") != POLICY_FORMAT:
            raise ConfigError(f"{where or 'this'} is not a linear mix policy file (format {POLICY_FORMAT!r}); "
                              "train one with `distillgym train-teacher --algo cem`")
        if d.get("version") != POLICY_VERSION or d.get("features") != FEATURE_SET:
            raise ConfigError(f"{where}: policy version {d.get('version')!r} with features {d.get('features')!r}; this "
                              f"distillgym reads version {POLICY_VERSION} with {FEATURE_SET!r}")
        try:
            return cls(d["feature_names"], d["theta"], float(d.get("temperature", 1.0)), d.get("groups"))
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{where}: a malformed policy file ({type(err).__name__}: {err})") from None

    @classmethod
    def load(cls, path: str | Path) -> tuple[LinearMixPolicy, dict[str, Any]]:
        """The policy in ``path`` and the file's whole record (env, training)."""
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot read a policy from {str(p)!r}: {type(err).__name__}: {err}") from None
        return cls.from_dict(d, str(p)), d


def entropy_of(p: np.ndarray) -> float:
    """Entropy (nats) of a mix; the equal mix over ``n`` entries has ``log n``."""
    q = np.asarray(p, dtype=np.float64).ravel()
    q = q[q > 0]
    return float(-(q * np.log(q)).sum()) if q.size else math.nan
