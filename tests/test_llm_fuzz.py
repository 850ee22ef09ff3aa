"""Fuzz the parsers of the LLM teacher, the LLM writer and the LLM engine (issue 20, item 5).

The LLM never ends an episode: whatever a model replies (random text, deep nesting, huge numbers,
control characters, a megabyte), the teacher's ``parse_reply`` returns a valid cell or raises
``ReplyError`` with a short message, the teacher's ``act`` returns a valid action, the writer's
``act`` returns an action inside the env's ``Text`` space whose lines the env checks, and the
engine returns only verified examples (calls == examples + rejected). The backends here are FAKES
(named as such): they return the fuzzed text as the model's reply.
"""

from __future__ import annotations

import json
import time

import gymnasium as gym
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import distillgym  # noqa: E402,F401
from distillgym.engines.llm_engine import LLMEngine  # noqa: E402
from distillgym.llm import Completion  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.tasks import make_suite  # noqa: E402
from distillgym.tasks.checks import check_lines  # noqa: E402
from distillgym.teachers.llm_teacher import LLMTeacher, ReplyError, parse_reply  # noqa: E402
from distillgym.teachers.llm_writer import LLMWriter  # noqa: E402
from distillgym.types import PlanItem  # noqa: E402

SKILLS = ["copy", "successor", "add", "sub", "mul", "compare", "chain"]
MB = 1_000_000
ADVERSARIAL = [
    "",
    "[" * 1200,  # the RecursionError
    "{" * 5000,
    '{"skill": "add", "difficulty": ' + "[" * 100_000 + "1" + "]" * 100_000 + "}",
    '{"a":' * 3000 + "1" + "}" * 3000,
    '{"skill": "add", "difficulty": ' + "9" * 5000 + "}",  # beyond Python's int-string limit
    '{"skill": "add", "difficulty": "' + "9" * 5000 + '"}',
    '{"skill": "add", "difficulty": 1e999999}',
    '{"skill": "add", "difficulty": -0.0}',
    '{"skill": "add", "difficulty": NaN}',
    '{"skill": "' + "x" * MB + '", "difficulty": 1}',
    "{'skill': 'add', 'difficulty': " + "(" * 5000 + "1" + ")" * 5000 + "}",
    "{'skill': 'add', 'difficulty': 10**10**10}",
    "{[]}",  # found by hypothesis: literal_eval raised TypeError (an unhashable set element)
    "{'skill': 'add', 'difficulty': {1, [2]}}",
    '\x00\x01\x02{"skill": "add\\u0000", "difficulty": 1}\r\n\x1b[31m',
    '{"skill": "add", "difficulty": 1}\ud800',  # a lone surrogate
    "\u2028".join(["57+68=125"] * 1000),
    "57+68=125\n" * (MB // 10),  # 1 MB of valid lines
    "0-9+0=-9\n" * (MB // 9),
    "x" * MB,
    "{" * MB,
    '{"skill": "add", "difficulty": 1}',  # valid, for contrast
    "I pick " + '{"skill": "chain", "difficulty": 3}' + " because...",
]
_JSONISH = st.lists(st.sampled_from(list('{}[]":,0123456789.eE-+ \n\t\r\x00\\')
                                    + ['"skill"', '"difficulty"', '"add"', "true", "null", "1e999"]),
                    max_size=120).map("".join)


def _reply_strategy():
    return st.one_of(st.text(max_size=400), _JSONISH, st.sampled_from(ADVERSARIAL),
                     st.builds(lambda a, b: a + b, st.sampled_from(ADVERSARIAL[:12]), st.text(max_size=50)))


# ---------------------------------------------------------------------------- the teacher's parser
def _check_parse(reply: str) -> None:
    try:
        s, d = parse_reply(reply, SKILLS, 4)
    except ReplyError as err:
        assert len(str(err)) < 600, str(err)[:1000]
    else:
        assert 0 <= s < len(SKILLS) and 0 <= d < 4


@pytest.mark.parametrize("reply", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_parse_reply_on_adversarial_replies(reply):
    t0 = time.perf_counter()
    _check_parse(reply)
    assert time.perf_counter() - t0 < 2.0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_reply_strategy())
def test_parse_reply_on_random_replies(reply):
    _check_parse(reply)


@settings(max_examples=100, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
                    max_leaves=30), st.sampled_from(["skill", "difficulty", "Skill ", "x"]))
def test_parse_reply_on_random_json_objects(value, key):
    _check_parse(json.dumps({key: value, "difficulty": value}))
    _check_parse(json.dumps({"skill": value, "difficulty": 1}))
    _check_parse(json.dumps({"skill": "add", "difficulty": value}))


# ---------------------------------------------------------------------------- teacher, writer, engine
class FakeReplyBackend:
    """A FAKE backend for this test only: every completion is the current ``reply``."""

    model_name = "fake"

    def __init__(self) -> None:
        self.reply = ""

    def complete(self, prompts, max_tokens, temperature=0.0, stop=None):
        return [Completion(self.reply, tokens_in=1, tokens_out=1, finish_reason="length") for _ in prompts]

    def choose(self, prompt, options):
        raise RuntimeError("not used")


TINY = dict(budget=256, examples_per_step=256, n_val_per_cell=2, n_test_per_cell=2)


@pytest.fixture(scope="module")
def envs():
    out = {}
    for level, env_id in (("cell", "distillgym/ArithSkills-v1"), ("open", "distillgym/ArithOpen-v2")):
        env = gym.make(env_id, **TINY)
        obs, info = env.reset(seed=0)
        out[level] = (env, obs, info)
    yield out
    for env, _, _ in out.values():
        env.close()


def test_teacher_writer_and_engine_never_fail_on_any_reply(envs):
    backend = FakeReplyBackend()
    env, obs, info = envs["cell"]
    teacher = LLMTeacher(backend=backend, max_retries=1)
    teacher.reset(env.action_space, info, seed=0)
    open_env, open_obs, open_info = envs["open"]
    level = open_env.unwrapped.level
    writer = LLMWriter(backend=backend, samples_per_step=3)
    writer.reset(open_env.action_space, open_info, seed=0)
    suite = make_suite("arith-v1")
    engine = LLMEngine(suite, backend=backend, strategy="new-question", batch_size=4)
    rephrase = LLMEngine(suite, backend=backend, strategy="rephrase", batch_size=4)
    answer = LLMEngine(suite, backend=backend, strategy="answer", batch_size=4)
    plan = [PlanItem("add", 0, 2), PlanItem("chain", 1, 2)]
    t0 = time.perf_counter()
    for k, reply in enumerate(ADVERSARIAL):
        backend.reply = reply
        a = teacher.act(obs, info)
        assert env.action_space.contains(np.asarray(a, dtype=np.int64)), (k, a)
        assert len(json.dumps(teacher.last_decision)) < 5000  # the note quotes a short piece of the reply
        text = writer.act(open_obs, open_info)
        assert isinstance(text, str) and len(text) <= open_env.action_space.max_length, k
        p = level.decode(text, TINY["examples_per_step"])  # the env accepts it as an action
        check_lines(suite, p.lines, max_lines=p.max_lines)
        for eng in (engine, rephrase, answer):
            examples, cost = eng.generate(plan, rng_for(k, 1))
            assert cost.calls == cost.examples + cost.rejected == 4 and len(examples) == cost.examples
            assert all(e.verified and suite.in_support(e.prompt) and suite.solve(e.prompt) == e.answer
                       for e in examples)
    assert time.perf_counter() - t0 < 20.0


def test_a_megabyte_reply_does_not_end_an_open_episode(envs):
    """End to end on ArithOpen-v2: the writer's megabyte of lines becomes one step of checked lines."""
    backend = FakeReplyBackend()
    backend.reply = "57+68=125\n1-5+9=5\n" * (MB // 18)
    open_env, _, _ = envs["open"]
    obs, info = open_env.reset(seed=1)
    writer = LLMWriter(backend=backend, samples_per_step=2)
    writer.reset(open_env.action_space, info, seed=1)
    action = writer.act(obs, info)
    _, _, terminated, truncated, info = open_env.step(action)
    assert info["action"]["n"] == TINY["examples_per_step"] and writer.stats["lines_over_limit"] > 0
    assert info["action"]["rejected"]["off_grid"] >= 1  # 1-5+9=5: outside the chain rule (ArithOpen-v2)
