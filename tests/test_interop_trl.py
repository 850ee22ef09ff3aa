"""The TRL ``environment_factory`` adapter: its tools alone, and a real GRPO step through it.

The GRPO test runs TRL's own ``GRPOTrainer`` on CPU (no vLLM) for one optimisation step with a
tiny Llama-config model and a byte-level BPE tokenizer with the Qwen2.5 chat template (which TRL
recognises, so it parses tool calls), built in a temporary directory. A randomly initialised
model never writes a parsable tool call, so the model is first trained by gradient steps
(about 100, seconds of CPU) to write one given the exact prompt TRL builds; GRPO then samples at
a low temperature, the model calls the env's tool through TRL's tool loop, and the env steps.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from distillgym.errors import ConfigError, InvalidActionError, UnknownNameError  # noqa: E402
from distillgym.interop.trl import (  # noqa: E402
    CellTools,
    MixTools,
    OpenTools,
    episode_return,
    make_environment_factory,
)

TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)


def _tools(cls) -> list[str]:
    """The methods TRL exposes as tools (its rule: public functions of the class but reset and get_reward)."""
    import inspect

    return [n for n, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
            if n not in ("reset", "get_reward") and not n.startswith("_")]


@pytest.mark.parametrize("env_id, base, tool", [
    ("distillgym/ArithSkills-v1", CellTools, "train_on"),
    ("distillgym/ArithMix-v1", MixTools, "train_on_mix"),
    ("distillgym/ArithOpen-v1", OpenTools, "write_examples"),
])
def test_factory_class_has_one_documented_tool(env_id, base, tool):
    from transformers.utils import get_json_schema

    cls = make_environment_factory(env_id, **TINY)
    assert issubclass(cls, base) and cls.env_id == env_id and cls.env_kwargs == TINY
    assert _tools(cls) == [tool]
    schema = get_json_schema(getattr(cls(), tool))  # what TRL renders into the prompt
    assert schema["function"]["name"] == tool and schema["function"]["parameters"]["required"]


def test_cell_tool_steps_the_env_and_reward_is_the_return():
    env = make_environment_factory("distillgym/ArithSkills-v1", report="summary", **TINY)()
    text = env.reset(seed=5, prompt=[{"role": "user", "content": "x"}])  # other columns are ignored
    assert "train_on(skill, difficulty)" in text and "mean accuracy" in text and "copy" in text
    out = env.train_on("Copy", 0)  # skill names are matched case-insensitively
    assert out.startswith("Step 1: reward") and "budget left 512 examples" in out and "\n" not in out
    assert env.history[0]["action"] == {"skill": "copy", "difficulty": 0}
    with pytest.raises(InvalidActionError, match="unknown skill 'cpy'.*copy"):
        env.train_on("cpy", 0)
    with pytest.raises(InvalidActionError, match="difficulty must be an integer from 0 to 3"):
        env.train_on("add", 4)
    assert env.steps == 1  # invalid calls do not step
    last = env.train_on("add", 1)
    assert "The episode is over" in last and env.done
    with pytest.raises(InvalidActionError, match="episode is over"):
        env.train_on("add", 1)
    assert env.get_reward() == pytest.approx(sum(h["reward"] for h in env.history))
    assert episode_return([env]) == [env.get_reward()]
    # the seed column fixes the episode: a second instance repeats it exactly
    again = make_environment_factory("distillgym/ArithSkills-v1", report="summary", **TINY)()
    again.reset(seed=5)
    again.train_on("copy", 0)
    again.train_on("add", 1)
    assert again.history == env.history and again.info["report"] == env.info["report"]


def test_mix_and_open_tools():
    mix = make_environment_factory("distillgym/ArithMix-v1", **TINY)()
    mix.reset(seed=0)
    out = mix.train_on_mix({"add:1": 3, "copy:0": 1})
    alloc = np.array(mix.info["action"]["allocation"])
    skills = mix.info.get("skills") or mix._static()["skills"]
    assert alloc[skills.index("add"), 1] == 384 and alloc[skills.index("copy"), 0] == 128 and alloc.sum() == 512
    assert "skill" in out and "mean accuracy" in out  # the full report follows the first line
    for bad, match in (({"add": 1}, "skill:level"), ({"add:x": 1}, "integer level"), ({"add:1": -1}, ">= 0"),
                       ({"add:0": 0}, "positive"), ({}, "non-empty")):
        with pytest.raises(InvalidActionError, match=match):
            mix.train_on_mix(bad)

    from distillgym.tasks import make_suite

    op = make_environment_factory("distillgym/ArithOpen-v1", report="summary", **TINY)()
    op.reset(seed=0)
    suite = make_suite("arith-v1")
    good = [suite.format_line(e) for e in suite.generate("add", 1, np.random.default_rng(0), 3, split="train",
                                                         distinct=True)]
    out = op.write_examples(good + ["1+1=3", "hello"])
    assert "Accepted 3 of 5 lines" in out and "'wrong': 1" in out and "'malformed': 1" in out
    assert op.history[0]["accepted"] == 3 and op.info["budget_left"] == 1024 - 5


def test_factory_errors():
    with pytest.raises(UnknownNameError, match="ArithSkills-v1"):
        make_environment_factory("distillgym/ArithSkill-v1")
    with pytest.raises(UnknownNameError, match="report mode"):
        make_environment_factory(report="long")
    with pytest.raises(ConfigError, match="base_seed"):
        make_environment_factory(base_seed=-1)
    env = make_environment_factory(**TINY)()
    with pytest.raises(ConfigError, match="reset"):
        env.env  # noqa: B018
    with pytest.raises(InvalidActionError, match="reset"):
        env.train_on("add", 0)
    with pytest.raises(ConfigError, match="seed"):
        env.reset(seed="7")


def test_without_seed_column_instances_draw_distinct_repeatable_seeds():
    cls = make_environment_factory(report="summary", base_seed=3, **TINY)
    a, b = cls(), cls()
    ra, rb = a.reset(), b.reset()
    assert a.env.unwrapped._episode_seed != b.env.unwrapped._episode_seed
    cls2 = make_environment_factory(report="summary", base_seed=3, **TINY)
    assert cls2().reset() == ra and cls2().reset() == rb


CALL = '<tool_call>\n{"name": "train_on", "arguments": {"skill": "copy", "difficulty": 0}}\n</tool_call><|im_end|>'


def _tiny_tool_caller(env_cls, user: str, seed: int):
    """A tiny Llama and a BPE tokenizer with the Qwen2.5 chat template; the model is trained (by
    gradient steps) to answer TRL's prompt for episode ``seed`` with one call of ``train_on``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl.chat_template_utils import qwen2_5_chat_template

    env = env_cls()
    text = env.reset(seed=seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([text, qwen2_5_chat_template, CALL] * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = qwen2_5_chat_template
    fast.padding_side = "left"
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                      eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None)
    with torch.random.fork_rng():  # leave the global generator as other tests found it
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg)
    prompt = fast.apply_chat_template([{"role": "user", "content": user + text}], tools=[env.train_on],
                                      tokenize=False, add_generation_prompt=True)
    p = fast(prompt, add_special_tokens=False)["input_ids"]
    c = fast(CALL, add_special_tokens=False)["input_ids"]
    ids, labels = torch.tensor([p + c]), torch.tensor([[-100] * len(p) + c])
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(300):
        out = model(input_ids=ids, labels=labels)
        right = bool((out.logits[0, len(p) - 1 : -1].argmax(-1) == torch.tensor(c)).all())
        if right and out.loss.item() < 0.02:  # every token of the call is the most likely one
            break
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    assert right, "the tiny model did not learn to write the tool call"
    return model, fast


def test_grpo_trainer_step_through_the_adapter(tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    Env = make_environment_factory("distillgym/ArithSkills-v1", report="summary", **TINY)
    user = "Teach the student."
    model, tokenizer = _tiny_tool_caller(Env, user, seed=7)
    data = Dataset.from_dict({"prompt": [[{"role": "user", "content": user}]] * 2, "seed": [7, 7]})
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), max_steps=1, per_device_train_batch_size=2, num_generations=2,
        max_completion_length=192, max_tool_calling_iterations=1, temperature=0.05, use_cpu=True,
        report_to="none", logging_steps=1, save_strategy="no", seed=0, bf16=False,
    )
    trainer = GRPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                          environment_factory=Env)
    trainer.train()
    assert trainer.state.global_step == 1  # one optimisation step
    log = trainer.state.log_history[0]
    assert log["tools/call_frequency"] == 1.0 and log["tools/failure_frequency"] == 0.0
    envs = trainer.environments
    assert len(envs) == 2 and all(isinstance(e, Env) for e in envs)
    for e in envs:  # each rollout reset its own env with the row's seed, and the model's call stepped it
        assert e.steps == 1 and e.history[0]["action"] == {"skill": "copy", "difficulty": 0}
    reference = Env()
    reference.reset(seed=7)
    reference.train_on("copy", 0)
    assert all(e.info["report"] == reference.info["report"] for e in envs)
    assert log[f"rewards/{Env.__name__}/mean"] == pytest.approx(np.mean([e.get_reward() for e in envs]), abs=1e-6)
