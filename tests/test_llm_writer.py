"""The ``llm-writer`` teacher of the open level: prompts, the lines it sends, costs, determinism.

A tiny Llama-config causal LM (random weights) with a byte-level BPE tokenizer is built in a
temporary directory; nothing is downloaded. ``FakeScriptBackend`` (a named fake) replies with
fixed continuations, to test how the writer turns replies into lines.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import gymnasium as gym  # noqa: E402

import distillgym  # noqa: E402,F401  (registers the envs)
from distillgym.errors import ConfigError, UnknownNameError  # noqa: E402
from distillgym.harness.runner import run_episode  # noqa: E402
from distillgym.llm import Completion  # noqa: E402
from distillgym.tasks import make_suite  # noqa: E402
from distillgym.tasks.checks import check_lines  # noqa: E402
from distillgym.teachers import make_teacher  # noqa: E402
from distillgym.teachers.llm_writer import LLMWriter  # noqa: E402

ENV = "distillgym/ArithOpen-v1"
TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)  # as conftest.TINY


def _build_tiny_model(path: str) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = ["A student model is learning arithmetic. Correct examples of the sum of two numbers, one per line:",
              "12+35=47\n4+61=65\nc4071=4071\ns1299=1300\n68-57=11\n432*7=3024\n58?61=<\n3+5-2=6"] * 4
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    cfg = LlamaConfig(
        vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
    )
    with torch.random.fork_rng():  # leave the global generator as other tests found it
        torch.manual_seed(0)
        LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("tiny-writer-llm"))
    _build_tiny_model(path)
    return path


@pytest.fixture(scope="module")
def open_env():
    env = gym.make(ENV, **TINY)
    yield env
    env.close()


class FakeScriptBackend:
    """A named fake backend: returns the given continuations in order, with token counts."""

    def __init__(self, texts: list[tuple[str, str]]) -> None:
        self.texts = list(texts)
        self.prompts: list[str] = []

    def complete(self, prompts, max_tokens, temperature=0.0, stop=None):
        self.prompts += prompts
        out = []
        for i, _ in enumerate(prompts):
            text, reason = self.texts[i % len(self.texts)]
            out.append(Completion(text=text, tokens_in=10, tokens_out=5, finish_reason=reason))
        return out


class FakeFailingBackend:
    """A named fake backend whose every call raises."""

    def complete(self, prompts, max_tokens, temperature=0.0, stop=None):
        raise RuntimeError("model crashed")


def test_prompt_shows_cell_report_errors_and_correct_train_shots(open_env):
    obs, info = open_env.reset(seed=0)
    w = LLMWriter(backend=FakeScriptBackend([("", "stop")]), shots=5)
    w.reset(open_env.action_space, info, seed=0)
    err = {"skill": "add", "difficulty": 1, "prompt": "96+33=", "student": "12", "gold": "129"}
    other = {"skill": "sub", "difficulty": 0, "prompt": "9-3=", "student": "1", "gold": "6"}
    p = w.build_prompt(w.skills.index("add"), 1, 0.25, [other, err])
    assert "On add level 1 (the sum of two numbers) its accuracy is 0.25." in p
    assert "96+33= it answered 12, the right answer is 129" in p
    assert "9-3=" not in p  # only this cell's errors
    shots = p.split("one per line:\n")[1].strip().split("\n")
    assert len(shots) == 5 and p.endswith("\n")
    suite = make_suite(info["suite"])
    checked = check_lines(suite, shots)
    assert checked.counts["accepted"] == 5, checked.verdicts  # correct, train part, distinct
    assert all(suite.classify(line.split("=")[0] + "=") == ("add", 1) for line in shots)


def test_plan_spreads_samples_over_frontier_cells():
    w = LLMWriter(backend=FakeScriptBackend([("", "stop")]), samples_per_step=10)
    w.reset(None, {"suite": "arith-v1", "skills": ["a", "b"], "n_difficulties": 3, "level": "open",
                   "examples_per_step": 8}, seed=0)
    acc = np.array([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]])
    cells = w.plan(acc)
    assert len(cells) == 10
    # skill a's frontier is level 1 (weight 0.6), b is mastered: its top level (weight 0.1)
    assert set(cells) == {(0, 1), (1, 2)}
    assert cells.count((0, 1)) > cells.count((1, 2))


def test_lines_of_drops_only_a_cut_last_line():
    assert LLMWriter.lines_of("1+2=3\n 4+4=8 \n5+5=1", cut=True) == (["1+2=3", "4+4=8"], 1)
    assert LLMWriter.lines_of("1+2=3\n4+4=8\n5+5=1", cut=False) == (["1+2=3", "4+4=8", "5+5=1"], 0)
    assert LLMWriter.lines_of("1+2=3\n", cut=True) == (["1+2=3"], 0)  # ended at a newline: nothing unfinished


def test_every_written_line_is_sent_and_the_env_rejects_by_kind(open_env):
    obs, info = open_env.reset(seed=3)
    suite = make_suite(info["suite"])
    rng = np.random.default_rng(0)
    good = suite.format_line(suite.generate("copy", 1, rng, 1, split="train")[0])
    leak = suite.format_line(suite.generate("copy", 1, rng, 1, split="val")[0])
    wrong = good[:-1] + str((int(good[-1]) + 1) % 10)
    backend = FakeScriptBackend([(f"{good}\n{wrong}\n{leak}\nhello world\n{good}\n12+", "length")])
    w = LLMWriter(backend=backend, samples_per_step=1)
    w.reset(open_env.action_space, info, seed=0)
    action = w.act(obs, info)
    assert action.split("\n") == [good, wrong, leak, "hello world", good]  # "12+" was cut by max_tokens
    assert w.stats["lines"] == 5 and w.stats["lines_cut"] == 1
    assert w.stats["prompts"] == 1 and w.stats["calls"] == 1 and w.stats["tokens_in"] == 10
    _, _, _, _, step_info = open_env.step(action)
    a = step_info["action"]
    assert a["accepted"] == 1 and a["n"] == 5
    assert a["rejected"]["wrong"] == 1 and a["rejected"]["leak_val"] == 1
    assert a["rejected"]["malformed"] == 1 and a["rejected"]["duplicate"] == 1


def test_backend_error_sends_no_line(open_env):
    obs, info = open_env.reset(seed=0)
    w = LLMWriter(backend=FakeFailingBackend())
    w.reset(open_env.action_space, info, seed=0)
    assert w.act(obs, info) == ""
    assert w.stats["backend_errors"] == 1 and "model crashed" in w.last_decision["error"]
    _, _, _, _, step_info = open_env.step("")
    assert step_info["action"]["n"] == 0  # nothing charged


def test_episode_with_a_real_tiny_model_counts_costs_and_repeats(tiny_model_dir):
    def episode():
        return run_episode(ENV, "llm-writer", seed=1, env_kwargs=dict(TINY, max_steps=3),
                           teacher_kwargs={"model": tiny_model_dir, "samples_per_step": 4, "max_tokens": 12,
                                           "backend_kwargs": {"device": "cpu"}})

    r = episode()
    stats = r["teacher_stats"]
    assert len(r["steps"]) == 3 and r["truncated"]
    assert stats["decisions"] == 3 and stats["calls"] == 3 and stats["prompts"] == 12
    assert stats["tokens_in"] > 12 * 20 and 0 < stats["tokens_out"] <= 12 * 12
    assert stats["seconds"] > 0 and stats["seconds_per_decision"] == pytest.approx(stats["seconds"] / 3)
    assert r["costs"]["teacher_tokens_in"] == stats["tokens_in"]
    assert r["costs"]["teacher_tokens_out"] == stats["tokens_out"]
    assert r["costs"]["teacher_calls"] == stats["prompts"]
    for s in r["steps"]:  # every charged line was accepted or rejected by one kind
        assert s["examples"] == s["accepted"] + sum(v for k, v in s["rejected"].items() if k != "over_limit")
    assert sum(s["examples"] for s in r["steps"]) == stats["lines"]
    again = episode()
    assert [s["rejected"] for s in again["steps"]] == [s["rejected"] for s in r["steps"]]
    assert again["final_test_accuracy"] == r["final_test_accuracy"]
    assert again["teacher_stats"]["tokens_out"] == stats["tokens_out"]


def test_registered_and_config_errors(open_env):
    assert isinstance(make_teacher("llm-writer", backend=FakeScriptBackend([("", "stop")])), LLMWriter)
    with pytest.raises(ConfigError, match="samples_per_step"):
        LLMWriter(samples_per_step=0)
    with pytest.raises(ConfigError, match="base_url"):
        LLMWriter(backend="transformers", base_url="http://127.0.0.1:1/v1")
    with pytest.raises(UnknownNameError, match="backend"):
        LLMWriter(backend="transformer")
    with pytest.raises(ConfigError, match="LLMBackend"):
        LLMWriter(backend=object())
    with pytest.raises(ConfigError, match="model"):
        LLMWriter(model=None).backend  # noqa: B018
    _, info = open_env.reset(seed=0)
    with pytest.raises(ConfigError, match="open level"):
        LLMWriter(backend=FakeScriptBackend([("", "stop")])).reset(None, {**info, "level": "cell"}, seed=0)
