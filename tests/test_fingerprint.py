"""Fingerprints, credential redaction, resolved teacher arguments and the config hash."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import gymnasium as gym
import pytest

from distillgym.errors import ConfigError, UnknownNameError
from distillgym.harness.benchmark import Benchmark, TeacherEntry
from distillgym.harness.fingerprint import (
    REDACTED,
    config_hash,
    fingerprint,
    fingerprint_diff,
    redact,
    scrub,
    secret_values,
    teacher_identity,
)

REPO = Path(__file__).resolve().parents[1]
PPO = REPO / "benchmarks" / "policies" / "ppo-192" / "policy.zip"
TINY = dict(budget=256, examples_per_step=256, n_val_per_cell=2, n_test_per_cell=2)
ENV = "distillgym/ArithSkills-v1"


def test_fingerprint_records_versions_machine_device_and_threads():
    import numpy
    import torch

    fp = fingerprint(torch_threads=3)
    for key in ("distillgym", "git_commit", "git_dirty", "python", "torch", "transformers", "numpy", "gymnasium",
                "machine", "cpu", "cpu_flags", "cpu_capability", "cpu_count", "device", "gpu", "torch_threads"):
        assert key in fp, key
    assert fp["torch"] == torch.__version__ and fp["numpy"] == numpy.__version__
    assert fp["torch_threads"] == 3 and fp["device"] == "cpu" and fp["gpu"] is None
    assert fp["cpu"] and fp["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert (REPO / ".git").exists() == (fp["git_commit"] is not None)
    assert fingerprint(torch_threads=3) == fp  # stable within a process
    assert json.loads(json.dumps(fp)) == fp
    assert fingerprint_diff(fp, {**fp, "torch_threads": 1}) == {"torch_threads": (3, 1)}
    assert fingerprint_diff(None, fp) == {"fingerprint": (None, "(recorded)")}
    assert fingerprint_diff(None, None) == {} and fingerprint_diff(fp, dict(fp)) == {}


def test_redact_and_scrub_credentials(monkeypatch):
    kw = {"api_key": "sk-abcdef123", "model": "gpt", "max_tokens": 5, "tokenizer": "t",
          "backend": {"openai_api_key": "sk-nested999", "auth_token": None}, "hf_token": "hf_xyz12345"}
    out = redact(kw)
    assert out["api_key"] == REDACTED and out["backend"]["openai_api_key"] == REDACTED
    assert out["hf_token"] == REDACTED and out["backend"]["auth_token"] is None  # None hides nothing
    assert out["model"] == "gpt" and out["max_tokens"] == 5 and out["tokenizer"] == "t"
    assert kw["api_key"] == "sk-abcdef123"  # a copy
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false-but-long")  # not a credential
    secrets = secret_values(kw)
    assert {"sk-abcdef123", "sk-nested999", "hf_xyz12345", "sk-from-the-environment"} <= set(secrets)
    assert "false-but-long" not in secrets
    text = "401: key sk-from-the-environment rejected; arg sk-abcdef123"
    assert scrub(text, secrets) == f"401: key {REDACTED} rejected; arg {REDACTED}"


def test_teacher_identity_fills_defaults_and_rejects_bad_arguments():
    uni = teacher_identity("uniform")
    assert uni == {"teacher": "uniform", "args": {"order": "shuffled"}, "content": {}}
    assert teacher_identity("uniform", {"order": "shuffled"}) == uni  # an explicit default is the same teacher
    assert teacher_identity("ioa", {"mastery_ratio": 0.8})["args"]["mastery_ratio"] == 0.8
    assert "level_mastery_ratio" in teacher_identity("ioa")["args"]
    with pytest.raises(ConfigError, match="ordr"):
        teacher_identity("uniform", {"ordr": "x"})
    with pytest.raises(UnknownNameError, match="Did you mean 'uniform'"):
        teacher_identity("unifrom")
    llm = teacher_identity("llm", {"backend": "openai", "backend_kwargs": {"api_key": "sk-secret-value-1"}})
    assert llm["args"]["backend_kwargs"]["api_key"] == REDACTED and "sk-secret-value-1" not in json.dumps(llm)


def test_config_hash_changes_with_a_ppo_files_bytes(tmp_path):
    pytest.importorskip("stable_baselines3")
    p = tmp_path / "policy.zip"
    shutil.copy(PPO, p)
    shutil.copy(PPO.with_suffix(".json"), tmp_path / "policy.json")
    a = teacher_identity(f"ppo:{p}")
    assert a["args"]["deterministic"] is True and len(a["content"]["policy_sha256"]) == 64
    assert teacher_identity(f"ppo:{tmp_path}")["content"] == a["content"]  # the folder resolves to the same file
    cfg = {"budget": 1}
    with open(p, "ab") as f:
        f.write(b"\0")
    b = teacher_identity(f"ppo:{p}")
    assert b["content"]["policy_sha256"] != a["content"]["policy_sha256"]
    assert config_hash(ENV, cfg, a) != config_hash(ENV, cfg, b)
    (tmp_path / "policy.json").write_text("{}")
    assert teacher_identity(f"ppo:{p}")["content"]["meta_sha256"] != b["content"]["meta_sha256"]


def test_config_hash_covers_a_user_teachers_module_source(tmp_path, monkeypatch):
    mod = tmp_path / "myteachers_fp.py"
    mod.write_text("class Mine:\n    name = 'mine'\n    def __init__(self, k=3):\n        self.k = k\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    a = teacher_identity("myteachers_fp:Mine")
    assert a["args"] == {"k": 3} and "module_sha256" in a["content"]
    mod.write_text(mod.read_text() + "# a change in the module\n")
    b = teacher_identity("myteachers_fp:Mine")
    assert b["content"] != a["content"] and config_hash(ENV, {}, a) != config_hash(ENV, {}, b)


def _suite(env_kwargs=None, teachers=None) -> Benchmark:
    return Benchmark("t", ENV, [0], teachers or [TeacherEntry("uniform")], dict(TINY if env_kwargs is None else env_kwargs))


def test_config_hash_changes_when_a_default_changes(monkeypatch):
    """The hash covers the resolved env config and the teacher's defaults, not only the arguments given."""
    from distillgym.teachers import UniformTeacher

    base = _suite().config_hash(TeacherEntry("uniform"))
    # the same configuration written out explicitly is the same hash
    assert _suite({**TINY, "n_errors": 8, "student_init": "seed"}).config_hash(TeacherEntry("uniform")) == base
    assert _suite(teachers=[TeacherEntry("uniform", {"order": "shuffled"})]).config_hash(
        TeacherEntry("uniform", {"order": "shuffled"})) == base
    # a changed env default (as a new release could make it) changes the hash
    monkeypatch.setitem(gym.registry[ENV].kwargs, "n_errors", 4)
    env_changed = _suite().config_hash(TeacherEntry("uniform"))
    assert env_changed != base
    monkeypatch.delitem(gym.registry[ENV].kwargs, "n_errors")
    assert _suite().config_hash(TeacherEntry("uniform")) == base
    # a changed teacher default changes it too
    monkeypatch.setattr(UniformTeacher.__init__, "__defaults__", ("skill-major",))
    assert _suite().config_hash(TeacherEntry("uniform")) not in (base, env_changed)


def test_suite_cache_follows_changes_of_the_suite():
    s = _suite()
    h = s.config_hash(s.teachers[0])
    s.env_kwargs = {**TINY, "budget": 512}
    assert s.config_hash(s.teachers[0]) != h


def test_user_teacher_source_in_a_suite(tmp_path, monkeypatch):
    (tmp_path / "myteachers_fp2.py").write_text(textwrap.dedent("""
        import numpy as np

        class Fixed:
            name = "fixed"
            def reset(self, action_space, info, seed=None):
                pass
            def act(self, obs, info):
                return np.array([0, 0])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    s = _suite(teachers=[TeacherEntry("myteachers_fp2:Fixed")])
    r = s.resolved(s.teachers[0])
    assert r.identity["content"]["module_sha256"] and r.env_config["budget"] == 256
    assert r.config_hash == config_hash(ENV, r.env_config, r.identity)


# ---------------------------------------------------------------------------- item 9: every part resolved
def test_config_hash_changes_when_an_engine_default_changes(monkeypatch):
    """The engine's arguments are hashed resolved (read back from the built engine), not as given:
    a changed engine default changes the hash (recipe 2 hashed ``engine_kwargs`` as given: ``{}``)."""
    from distillgym.engines.procedural import ProceduralEngine

    base = _suite().config_hash(TeacherEntry("uniform"))
    r = _suite().resolved(TeacherEntry("uniform"))
    assert r.env_config["engine_kwargs"] == {"verify": True}
    # the default written out is the same configuration, so the same hash
    assert _suite({**TINY, "engine_kwargs": {"verify": True}}).config_hash(TeacherEntry("uniform")) == base
    monkeypatch.setattr(ProceduralEngine.__init__, "__defaults__", (False,))
    assert _suite().config_hash(TeacherEntry("uniform")) != base


def test_config_hash_covers_an_engine_object_and_a_suite_object_by_content(tmp_path, monkeypatch):
    """A part given as an object is hashed by its resolved arguments and, for a class defined outside
    distillgym, its module's source (recipe 2 hashed such a part by class name only)."""
    from distillgym.engines.procedural import ProceduralEngine
    from distillgym.harness.fingerprint import teacher_identity
    from distillgym.tasks import make_suite

    suite = make_suite("arith-v1")
    ident = teacher_identity("uniform")

    def h(engine):
        env = gym.make(ENV, engine=engine, suite=suite, **TINY)
        try:
            return config_hash(ENV, env.unwrapped.config, ident), env.unwrapped.config
        finally:
            env.close()

    h_true, cfg = h(ProceduralEngine(suite, verify=True))
    assert cfg["engine_kwargs"] == {"verify": True} and cfg["engine"].endswith(":ProceduralEngine")
    assert h(ProceduralEngine(suite, verify=True))[0] == h_true
    assert h(ProceduralEngine(suite, verify=False))[0] != h_true

    src = tmp_path / "myengine_fp.py"
    src.write_text(textwrap.dedent("""
        from distillgym.engines.procedural import ProceduralEngine

        class Mine(ProceduralEngine):
            def __init__(self, suite, shift=1):
                super().__init__(suite)
                self.shift = shift
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import myengine_fp

    h1, cfg1 = h(myengine_fp.Mine(suite))
    assert cfg1["engine_kwargs"] == {"shift": 1}
    assert cfg1["parts"]["engine"]["class"] == "myengine_fp:Mine" and cfg1["parts"]["engine"]["source_sha256"]
    assert h(myengine_fp.Mine(suite, shift=2))[0] != h1
    src.write_text(src.read_text() + "\n# the same class, other code\n")
    importlib.reload(myengine_fp)
    assert h(myengine_fp.Mine(suite))[0] != h1


def test_resolved_config_rebuilds_the_env(tmp_path):
    """``env.config`` without its record-only keys rebuilds the env, to the same resolved config."""
    import importlib.util

    from distillgym.config import EnvConfig
    from distillgym.env import TeachingEnv

    ids = ["distillgym/ArithSkills-v0", ENV, "distillgym/ArithMix-v2", "distillgym/ArithOpen-v1"]
    if importlib.util.find_spec("reasoning_gym") is not None:
        ids.append("distillgym/ReasoningGym-v1")  # its suite's arguments resolved: every level's fields
    for env_id in ids:
        env = gym.make(env_id, **TINY)
        try:
            cfg = env.unwrapped.config
        finally:
            env.close()
        assert cfg["rebuildable"] and "parts" not in cfg
        again = TeachingEnv(**EnvConfig.rebuild_kwargs(cfg))
        assert again.config == cfg, env_id


def test_llm_engine_config_resolves_strategy_defaults_and_backend_defaults():
    from distillgym.engines.llm_engine import LLMEngine
    from distillgym.llm import BACKENDS
    from distillgym.tasks import make_suite

    class Echo:
        model_name = "echo"

        def complete(self, prompts, max_tokens, temperature, stop=None):
            raise AssertionError("not called")

    suite = make_suite("arith-v1")
    a = LLMEngine(suite, backend=Echo(), strategy="answer").resolved_config()
    b = LLMEngine(suite, backend=Echo(), strategy="new-question").resolved_config()
    assert a["temperature"] == 0.0 and b["temperature"] == 0.8 and a["shared_shots"] and not b["shared_shots"]
    assert a["backend"].endswith(".Echo")
    if "openai" in BACKENDS:
        pytest.importorskip("openai")
        c = LLMEngine(suite, backend="openai", model="m", backend_kwargs={"base_url": "http://127.0.0.1:9/v1"})
        cfg = c.resolved_config()
        assert cfg["backend"] == "openai" and cfg["backend_kwargs"]["timeout"] == 60.0
        assert "api_key" not in cfg["backend_kwargs"] and "model" not in cfg["backend_kwargs"]
        assert LLMEngine(suite, **cfg).resolved_config() == cfg  # it rebuilds the engine


# ---------------------------------------------------------------------------- item 8: every credential
SECRET_NAMES = ["api_key", "openai_key", "access_key", "private_key", "secretKey", "accessKey", "apiKey",
                "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "hf_token", "client_secret", "password", "db_pwd", "key"]
PLAIN_NAMES = ["max_tokens", "tokenizer", "num_key_value_heads", "sort_keys", "cache_key", "pad_token_id", "model",
               "base_url", "monkey"]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_redact_every_key_like_name(name):
    out = redact({"backend_kwargs": {name: "s3cr3t-value-xyz"}, "x": [{name: "s3cr3t-value-xyz"}]})
    assert out == {"backend_kwargs": {name: REDACTED}, "x": [{name: REDACTED}]}
    assert "s3cr3t-value-xyz" in secret_values({"k": {name: "s3cr3t-value-xyz"}}, environ={})


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_redact_keeps_ordinary_names(name):
    assert redact({name: "ordinary-value"}) == {name: "ordinary-value"}


def test_redact_and_scrub_url_user_info_and_query_credentials(tmp_path):
    """Basic auth in a base_url and a token in a query string never reach a results line, a benchmark
    record, an error text or the config hash (issue 20, item 8)."""
    from distillgym.harness.benchmark import Job
    from distillgym.harness.results import episode_lines

    url = "http://alice:hunter2-pw@llm.example:8000/v1?api_key=sk-query-999&x=1"
    kw = {"backend": "openai", "base_url": url, "model": "m"}
    out = redact(kw)
    assert out["base_url"] == f"http://{REDACTED}@llm.example:8000/v1?api_key={REDACTED}&x=1"
    secrets = secret_values(kw, environ={"OPENAI_BASE_URL": "https://bob:env-pass-77@h/v1"})
    assert {"hunter2-pw", "sk-query-999", "env-pass-77"} <= set(secrets)
    err = f"cannot reach {url}: refused; also https://bob:env-pass-77@h/v1"
    assert not any(s in scrub(err, secrets) for s in ("hunter2-pw", "alice", "sk-query-999", "env-pass-77"))
    assert "hunter2" not in scrub("GET http://carol:hunter2xyz@other/v1 failed", [])  # any URL, even unlisted

    ident_a = teacher_identity("llm", {**kw, "base_url": url})
    ident_b = teacher_identity("llm", {**kw, "base_url": url.replace("hunter2-pw", "other-password")})
    assert "hunter2" not in json.dumps(ident_a) and ident_a == ident_b
    assert config_hash(ENV, {}, ident_a) == config_hash(ENV, {}, ident_b)

    job = Job("s", ENV, {}, "llm", dict(kw), "llm", 0, "h", {"engine_kwargs": {"backend_kwargs": {"base_url": url}}},
              ident_a)
    result = {"status": "failed", "error": f"LLMConnectionError: cannot reach {url}", "traceback": f"... {url} ...",
              "steps": [], "seconds": 1.0}
    text = episode_lines(job, result, "0").decode()
    for s in ("hunter2-pw", "alice:", "sk-query-999"):
        assert s not in text, s
