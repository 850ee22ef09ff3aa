"""What produced a result: machine and software fingerprints, resolved configurations, honest hashes.

Two episodes with the same config hash and seed give bit-identical numbers only when they also
share a fingerprint: float arithmetic differs between CPU instruction sets, library builds and
thread counts. So every episode line records both:

- :func:`fingerprint`: distillgym's version and git commit (when run from a checkout, with whether
  the tree had uncommitted changes), Python, torch, transformers, numpy and gymnasium versions, the
  machine (CPU model, a digest of its instruction-set flags, torch's CPU capability, core count; the
  GPU's name when the student ran on one), the student's device and the torch thread count;
- :func:`config_hash`: a hash of everything that determines an episode's numbers besides the seed
  and the machine: the env id, the env's fully resolved configuration (``env.unwrapped.config``:
  every default filled in, the arguments of each part (suite, student, data engine) resolved and
  read back from the built part, a part given as an object included, and the source of any part
  defined outside distillgym), the teacher's name, its resolved constructor arguments (defaults
  filled in from its signature: :func:`teacher_identity`) and the content of what the teacher
  loads (a ``ppo:PATH`` policy file's bytes, a user class's module source).

Secrets never reach a results file or a hash: :func:`redact` replaces the value of every argument
whose name looks like a credential (``api_key``, ``openai_key``, ``access_key``, ``private_key``,
``token``, ``password``, ...) by ``"<redacted>"``, and the user info of every URL
(``http://user:password@host`` -> ``http://<redacted>@host``) and its credential-like query
parameters; :func:`scrub` removes the values of such arguments, such URL parts and credential-like
environment variables (``OPENAI_API_KEY``, ...) from any text about to be written (an error message, say).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from distillgym.errors import ConfigError, UnknownNameError

__all__ = [
    "HASH_VERSION",
    "REDACTED",
    "fingerprint",
    "fingerprint_diff",
    "git_state",
    "redact",
    "redact_text",
    "scrub",
    "secret_values",
    "teacher_identity",
    "config_hash",
    "file_sha256",
]

HASH_VERSION = 3
"""Version of the config-hash recipe (recorded in every episode line as ``config_hash_version``).
1 (no field in the line): env id, env kwargs as given, teacher name and kwargs as given. 2: the
resolved env config (with the suite's and engine's arguments as given), resolved teacher arguments
and loaded content. 3: as 2, with every part's arguments resolved (the suite's, the student's and the
engine's defaults filled in and read back from the built part, an object part's too) and the source
of any part defined outside distillgym (``env.config["parts"]``). Lines of an older recipe stay
readable: the leaderboard groups them by their own hash, and ``distillgym verify`` re-runs them
(it cannot recompute an older recipe's hash, so it reports ``config_same: None`` for them)."""

REDACTED = "<redacted>"
_SECRET_WORDS = frozenset({"apikey", "secret", "secrets", "password", "passwd", "pwd", "passphrase", "token",
                           "credential", "credentials", "auth", "authorization", "cookie",
                           "privatekey", "accesskey", "secretkey"})
_KEY_WORDS = frozenset({"key", "keys"})
_NOT_SECRET_KEY = frozenset({"sort", "cache", "dict", "lookup", "hash", "group", "index", "metric", "seen",
                             "primary", "foreign", "partition", "config", "map", "row", "column", "stream", "seed",
                             "sorting", "dedup", "join"})
"""A name ending in ``key`` names a credential (``api_key``, ``openai_key``, ``access_key``, ``private_key``)
unless the word before it says it is a lookup key (``sort_key``, ``cache_key``)."""
_NOT_SECRET_LAST = frozenset({"id", "ids", "count", "counts", "len", "length", "limit", "size"})
"""A name ending in one of these counts or indexes something (``pad_token_id``, ``token_limit``)."""
_MIN_SECRET_LEN = 6  # shorter values (e.g. "1") would scrub ordinary text
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/@?#]+)@")
_URL_PARAM = re.compile(r"(?P<sep>[?&;])(?P<name>[^=&#\s]+)=(?P<value>[^&#\s]*)")


# ---------------------------------------------------------------------------- secrets
def _words(name: str) -> list[str]:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # camelCase: accessKey -> access_Key
    return [w for w in re.split(r"[_\-\s.]+", name.lower()) if w]


def _is_secret_name(name: Any) -> bool:
    """A credential-like argument or variable name: ``api_key``, ``OPENAI_API_KEY``, ``openai_key``,
    ``access_key``, ``private_key``, ``secretKey``, ``hf_token``, ``client_secret``, ``password``; by
    ``_``/``-``/camelCase-separated words, so ``max_tokens``, ``tokenizer``, ``num_key_value_heads`` and
    ``sort_keys`` are not."""
    if not isinstance(name, str):
        return False
    words = _words(name)
    if not words or words[-1] in _NOT_SECRET_LAST:
        return False
    if any(w in _SECRET_WORDS for w in words):
        return True
    if words[-1] in _KEY_WORDS:  # api_key, openai_key, access_key, ssh_key, key; not sort_key, cache_key
        return len(words) == 1 or words[-2] not in _NOT_SECRET_KEY
    return any(words[i] == "api" and words[i + 1] in _KEY_WORDS for i in range(len(words) - 1))


def redact_text(text: str) -> str:
    """``text`` with the user info of every URL (``http://user:password@host`` ->
    ``http://<redacted>@host``) and the value of every credential-like query parameter
    (``?api_key=...``, ``&token=...``) replaced by ``"<redacted>"``."""
    if "://" not in text and "=" not in text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    if "?" in text:
        text = _URL_PARAM.sub(lambda m: f"{m['sep']}{m['name']}={REDACTED}" if _is_secret_name(m["name"])
                              and m["value"] else m.group(0), text)
    return text


def redact(obj: Any) -> Any:
    """A copy of ``obj`` (nested dicts and lists) in which every value under a credential-like key
    (``api_key``, ``openai_api_key``, ``openai_key``, ``access_key``, ``private_key``, ``token``,
    ``secret``, ``password``, ...; not counters such as ``max_tokens``) is ``"<redacted>"`` (None stays
    None: there was nothing to hide), and every string has the user info of its URLs and its
    credential-like URL query parameters redacted (``base_url="http://user:pw@host/v1"`` ->
    ``"http://<redacted>@host/v1"``)."""
    if isinstance(obj, Mapping):
        return {k: (REDACTED if _is_secret_name(k) and v is not None else redact(v)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    if isinstance(obj, str):
        return redact_text(obj)
    return obj


def secret_values(*kwargs: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """The credential values to keep out of written text: values under credential-like keys of the
    given (nested) dicts, and of credential-like environment variables (``OPENAI_API_KEY`` ...)."""
    found: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                if _is_secret_name(k) and isinstance(v, str):
                    found.append(v)
                else:
                    walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)
        elif isinstance(obj, str):
            found.extend(_url_secrets(obj))

    for kw in kwargs:
        walk(kw)
    env = os.environ if environ is None else environ
    found += [v for k, v in env.items() if _is_secret_name(k)]
    found += [u for v in env.values() if "://" in v for u in _url_secrets(v)]
    return sorted({v for v in found if len(v) >= _MIN_SECRET_LEN and v != REDACTED}, key=len, reverse=True)


def _url_secrets(text: str) -> list[str]:
    """The user info (``user:password``) and its password of every URL in ``text``, and the values of its
    credential-like query parameters."""
    out: list[str] = []
    for m in _URL_USERINFO.finditer(text):
        out.append(m["userinfo"])
        user, sep, password = m["userinfo"].partition(":")
        out.append(password if sep else user)
    out += [m["value"] for m in _URL_PARAM.finditer(text) if _is_secret_name(m["name"]) and m["value"]]
    return out


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``"<redacted>"``, and every URL's user
    info and credential-like query parameters redacted (:func:`redact_text`)."""
    for s in secrets:
        if s:
            text = text.replace(s, REDACTED)
    return redact_text(text)


# ---------------------------------------------------------------------------- fingerprint
def _run(cmd: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout distillgym is imported from, or (None, None) when it is not
    a git checkout (an installed wheel) or git is missing. ``dirty``: tracked files have uncommitted
    changes. Cached for the process."""
    root = Path(__file__).resolve().parents[2]  # distillgym/harness/fingerprint.py -> the checkout
    if not (root / ".git").exists():
        return None, None
    commit = _run(["git", "rev-parse", "HEAD"], root)
    if commit is None:
        return None, None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], root)
    return commit, (bool(status) if status is not None else None)


@functools.lru_cache(maxsize=1)
def _cpu() -> tuple[str, str]:
    """(CPU model name, a 12-hex digest of its instruction-set flags) from /proc/cpuinfo, else platform."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    return model, hashlib.sha256(flags.encode()).hexdigest()[:12] if flags else ""


def fingerprint(device: str | None = None, torch_threads: int | None = None) -> dict[str, Any]:
    """The fingerprint of this process (JSON-able), as each episode line records it.

    Args:
        device: the device the student ran on (``"cpu"``, ``"cuda"``, ``"cuda:0"``); default
            ``"cpu"``. With a CUDA device, ``gpu`` is its name (torch's), else None.
        torch_threads: the torch intra-op thread count to record (default: ``torch.get_num_threads()``
            now; the runner passes the count its workers use).

    Keys: ``distillgym``, ``git_commit``, ``git_dirty`` (None outside a checkout), ``python``,
    ``torch``, ``transformers``, ``numpy``, ``gymnasium``, ``machine`` (architecture), ``cpu`` (model
    name), ``cpu_flags`` (digest of the CPU's flag list: two CPUs with one model name can differ),
    ``cpu_capability`` (torch's SIMD level, e.g. ``AVX512``), ``cpu_count``, ``device``, ``gpu``,
    ``torch_threads``."""
    import gymnasium
    import numpy
    import torch
    import transformers

    import distillgym

    dev = str(device or "cpu")
    gpu = None
    if dev.startswith("cuda") and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(torch.device(dev))
    commit, dirty = git_state()
    cpu, flags = _cpu()
    return {
        "distillgym": distillgym.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "gymnasium": gymnasium.__version__,
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_flags": flags,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(),
        "device": dev,
        "gpu": gpu,
        "torch_threads": int(torch_threads if torch_threads is not None else torch.get_num_threads()),
    }


def fingerprint_diff(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> dict[str, tuple[Any, Any]]:
    """``{key: (a's value, b's value)}`` for the keys whose values differ; a missing fingerprint
    (None: lines written before fingerprints existed) differs from any recorded one as
    ``{"fingerprint": (None, "(recorded)")}``."""
    if a is None or b is None:
        return {} if a is None and b is None else {"fingerprint": (None if a is None else "(recorded)",
                                                                   None if b is None else "(recorded)")}
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


# ---------------------------------------------------------------------------- resolved teacher arguments
def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, default=repr))


def _resolve_args(factory: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The arguments ``factory(*args, **kwargs)`` would receive, by name, defaults filled in."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: what was given
        return dict(kwargs)
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as err:
        names = [p.name for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        raise ConfigError(f"{what}: {err}; its arguments are {names}") from None
    bound.apply_defaults()
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                out[name] = list(value)
        else:
            out[name] = value
    return out


def teacher_identity(name: str, kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What determines a teacher's behaviour besides the seed, without building it (JSON-able):
    ``{"teacher": name, "args": resolved constructor arguments (redacted), "content": {...}}``.

    - a registered name: the class's signature bound to ``kwargs``, defaults filled in;
    - ``ppo:PATH``: ``PPOTeacher``'s arguments, and ``content["policy_sha256"]`` (the policy file's
      bytes) and ``content["meta_sha256"]`` (its ``.json`` record, when present);
    - ``cem:PATH``: ``CEMTeacher``'s arguments and ``content["policy_sha256"]`` (the policy file's bytes);
    - ``package.module:Class``: the class's arguments and ``content["module_sha256"]``, the hash of
      the module's source file (the class's code and everything beside it).

    Raises :class:`UnknownNameError` for an unknown name, :class:`ConfigError` for arguments the
    constructor does not take."""
    from distillgym.registry import import_object
    from distillgym.teachers import PREFIXES, TEACHERS

    kwargs = dict(kwargs or {})
    content: dict[str, str] = {}
    prefix, sep, rest = name.partition(":")
    if sep and prefix == "ppo":
        from distillgym.teachers.ppo import PPOTeacher, resolve_policy_path

        path = resolve_policy_path(rest)
        args = _resolve_args(PPOTeacher, (rest,), kwargs, f"teacher {name!r}")
        content["policy_sha256"] = file_sha256(path)
        meta = path.with_suffix(".json")
        if meta.is_file():
            content["meta_sha256"] = file_sha256(meta)
    elif sep and prefix == "cem":
        from distillgym.teachers.cem import CEMTeacher, resolve_cem_path

        args = _resolve_args(CEMTeacher, (rest,), kwargs, f"teacher {name!r}")
        content["policy_sha256"] = file_sha256(resolve_cem_path(rest))
    elif sep and prefix in PREFIXES:
        args = _resolve_args(PREFIXES[prefix], (rest,), kwargs, f"teacher {name!r}")
    elif sep:
        cls = import_object(name, "teacher")
        args = _resolve_args(cls, (), kwargs, f"teacher {name!r}")
        module = inspect.getmodule(cls)
        src = inspect.getsourcefile(module) if module is not None else None
        if src and os.path.isfile(src):
            content["module_sha256"] = file_sha256(src)
        else:
            raise ConfigError(
                f"teacher {name!r}: cannot read the source of its module, so the config hash could not cover its "
                "code; define the class in a .py file on the Python path"
            )
    elif name in TEACHERS:
        args = _resolve_args(TEACHERS[name], (), kwargs, f"teacher {name!r}")
    else:
        from distillgym.errors import did_you_mean

        raise UnknownNameError(f"unknown teacher {name!r}: {did_you_mean(name, sorted(TEACHERS))}")
    return {"teacher": name, "args": _jsonable(redact(args)), "content": content}


def config_hash(env_id: str, env_config: Mapping[str, Any], identity: Mapping[str, Any]) -> str:
    """12 hex digits of SHA-256 over the env id, its resolved config (``env.unwrapped.config``) and
    the teacher's :func:`teacher_identity` (recipe :data:`HASH_VERSION`; credentials redacted)."""
    blob = json.dumps(
        {"hash_version": HASH_VERSION, "env": env_id, "env_config": redact(dict(env_config)),
         "teacher": identity["teacher"], "teacher_args": identity["args"], "teacher_content": identity["content"]},
        sort_keys=True, default=repr,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
