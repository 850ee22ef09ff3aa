"""The LoRA student's GPU path (issue 19, section 2) on a CPU, with a tiny Llama built from a
config (no download): the default path replays the numbers recorded before the options existed
(tests/data/lora_tiny.json), and each option (packing, the per-step prefix cache, the fixed-length
greedy loop, bf16 base weights) gives the default path's answers and, within float rounding, its
losses. What only a GPU runs (bf16 autocast over bf16 weights on CUDA) is not exercised here."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from distillgym.errors import ConfigError, TrainingDivergedError, UnknownNameError  # noqa: E402
from distillgym.students.lora import GPU_KWARGS, LoRAStudent  # noqa: E402

DATA = Path(__file__).parent / "data"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, DATA / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rec():
    return _module("record_lora_tiny")


@pytest.fixture(scope="module")
def recorded():
    return json.loads((DATA / "lora_tiny.json").read_text())


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, rec):
    return rec.tiny_model(tmp_path_factory.mktemp("tiny-lm-fast"))


@pytest.fixture(scope="module")
def v1():
    from distillgym.tasks import make_suite

    return make_suite("arith-v1")


def _same_machine(recorded, rec) -> bool:
    keys = ("cpu", "machine", "torch", "torch_cpu_capability", "numpy", "transformers", "peft")
    now = rec.fingerprint()
    return all(now[k] == recorded["fingerprint"].get(k) for k in keys)


def test_the_bit_exact_replay_needs_the_recordings_transformers_and_peft(rec, recorded, monkeypatch):
    """The exact comparison runs only where the machine and the libraries the student computes
    through are the recording's; with another transformers or peft the replay falls back to the
    tolerances (a new release may order the same arithmetic otherwise)."""
    import peft
    import transformers

    assert {"transformers", "peft"} <= set(recorded["fingerprint"])
    here = _same_machine(recorded, rec)
    for lib in (transformers, peft):
        with monkeypatch.context() as m:
            m.setattr(lib, "__version__", "0.0.0")
            assert not _same_machine(recorded, rec)
    assert _same_machine(recorded, rec) == here


def _floats(xs) -> np.ndarray:
    return np.array([float(x) for x in xs])


def _student(tiny_dir, v1, **kw):
    from distillgym.students import make_student

    args = dict(model=tiny_dir, device="cpu", rank=4, lr=1e-2, batch_size=16, prompt_format="fewshot")
    args.update(kw)
    return make_student("lora", v1, **args)


@pytest.mark.parametrize("fmt", ["plain", "fewshot", "chat"])
def test_the_default_path_replays_the_numbers_recorded_before_the_options(tiny_dir, rec, recorded, fmt):
    """Train, answer_loss and predict with the default options: bit for bit on the recording's
    machine and library builds, within float drift elsewhere."""
    now = rec.record_student(tiny_dir, fmt)
    if _same_machine(recorded, rec):
        assert now == recorded[fmt]
    else:
        assert now["predict"] == recorded[fmt]["predict"]
        np.testing.assert_allclose(_floats(t["loss"] for t in now["train"]),
                                   _floats(t["loss"] for t in recorded[fmt]["train"]), rtol=1e-4)
        np.testing.assert_allclose(_floats(now["answer_loss"]), _floats(recorded[fmt]["answer_loss"]), rtol=1e-4)
        for t, r in zip(now["train"], recorded[fmt]["train"], strict=True):
            assert t["cell_loss"].keys() == r["cell_loss"].keys()
            np.testing.assert_allclose(_floats(t["cell_loss"].values()), _floats(r["cell_loss"].values()), rtol=1e-4)
    assert [t["tokens"] for t in now["train"]] == [t["tokens"] for t in recorded[fmt]["train"]]


def test_the_smollm2_id_replays_its_recorded_episode_with_the_tiny_model(tiny_dir, rec, recorded):
    now = rec.record_env(tiny_dir)
    if _same_machine(recorded, rec):
        assert now == recorded["env"]
    else:
        np.testing.assert_allclose(_floats(now["losses"]), _floats(recorded["env"]["losses"]), rtol=1e-4)


@pytest.mark.parametrize("fmt", ["plain", "fewshot", "chat"])
def test_prefix_cache_step_and_fixed_decoding_are_the_same_arithmetic(tiny_dir, rec, fmt):
    """The prefix's cache reused across a call's batches, and the fixed-length greedy loop,
    compute what the default path computes: the same numbers exactly, the same answers."""
    base = rec.record_student(tiny_dir, fmt)
    by4 = rec.record_student(tiny_dir, fmt, eval_batch_size=4)
    step = rec.record_student(tiny_dir, fmt, prefix_cache="step", eval_batch_size=4)
    assert step == by4  # 16 items in 4 batches: one prefix run instead of four, the same numbers
    fixed = rec.record_student(tiny_dir, fmt, decode="fixed")
    assert fixed["predict"] == base["predict"] and fixed["train"] == base["train"]


@pytest.mark.parametrize("fmt", ["plain", "fewshot", "chat"])
def test_the_gpu_path_gives_the_default_paths_answers_and_losses_within_rounding(tiny_dir, rec, fmt):
    """Every option of GPU_KWARGS but the batch size (which changes the recipe) and the bf16
    base (tested below), with packing into short sequences so that rows share them.

    The training losses agree to 1e-5 relative, not exactly: packed rows run through matmuls of
    other shapes (another summation order), which moves each float32 result by about 1e-7
    relative, and 8 optimiser steps at lr 1e-2 carry that into the adapter. The greedy answers
    are equal."""
    base = rec.record_student(tiny_dir, fmt)
    fast = rec.record_student(tiny_dir, fmt, pack_tokens=24, prefix_cache="step", decode="fixed",
                              eval_batch_size=1024)
    assert fast["predict"] == base["predict"]
    np.testing.assert_allclose(_floats(t["loss"] for t in fast["train"]), _floats(t["loss"] for t in base["train"]),
                               rtol=1e-5)
    np.testing.assert_allclose(_floats(fast["answer_loss"]), _floats(base["answer_loss"]), rtol=1e-5, atol=1e-6)
    for f, b in zip(fast["train"], base["train"], strict=True):
        assert (f["tokens"], f["optimizer_steps"]) == (b["tokens"], b["optimizer_steps"])
        # packing runs the output head at the scored positions only (padding runs it at K + 1 per row)
        assert 0.9 * float(b["flops"]) < float(f["flops"]) <= float(b["flops"])
        assert f["cell_loss"].keys() == b["cell_loss"].keys()
        np.testing.assert_allclose(_floats(f["cell_loss"].values()), _floats(b["cell_loss"].values()), rtol=1e-5)


def test_packing_fills_sequences_longest_first_within_the_capacity():
    lengths = [5, 9, 3, 12, 4, 7]
    bins = LoRAStudent._pack(lengths, 12)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 12 for b in bins)
    assert bins == [[3], [1, 2], [5, 0], [4]]  # 12 | 9 + 3 | 7 + 5 | 4: first fit, longest first
    assert LoRAStudent._pack([20, 3], 8) == [[0], [1]]  # a row longer than the capacity gets its own sequence


def test_packed_rows_score_like_padded_rows_with_eager_attention_too(tiny_dir, rec, v1):
    """Per-row answer losses of packed rows equal those of the padded rows (to float rounding),
    with sdpa's boolean masks and with eager attention's additive ones."""
    held = rec.data(v1, 4, seed=2, split="val")
    plain = _student(tiny_dir, v1)
    plain.train(rec.data(v1, 4, seed=1), np.random.default_rng(0))  # a non-identity adapter
    ref = plain.answer_loss(held)
    packed = _student(tiny_dir, v1, pack_tokens=20)
    packed.load_adapter_state(plain.adapter_state())
    np.testing.assert_allclose(packed.answer_loss(held), ref, rtol=1e-5)
    packed.model.get_base_model().set_attn_implementation("eager")
    packed._attn = "eager"
    np.testing.assert_allclose(packed.answer_loss(held), ref, rtol=1e-5)
    prompts = [e.prompt for e in held]
    fixed = _student(tiny_dir, v1, decode="fixed")
    fixed.load_adapter_state(plain.adapter_state())
    assert fixed.predict(prompts, 6) == plain.predict(prompts, 6)
    plain.model.get_base_model().set_attn_implementation("eager")
    fixed.model.get_base_model().set_attn_implementation("eager")
    fixed._attn = "eager"
    assert fixed.predict(prompts, 6) == plain.predict(prompts, 6)


def test_the_prefix_runs_once_per_evaluation_call_and_once_per_single_batch_step(tiny_dir, rec, v1, monkeypatch):
    calls = []
    real = LoRAStudent._prefix_kv

    def counted(self):
        calls.append(1)
        return real(self)

    monkeypatch.setattr(LoRAStudent, "_prefix_kv", counted)
    held = rec.data(v1, 4, seed=2, split="val")  # 16 items
    st = _student(tiny_dir, v1, prefix_cache="step", eval_batch_size=4, decode="fixed", pack_tokens=64)
    st.answer_loss(held)
    st.predict([e.prompt for e in held], 6)
    assert len(calls) == 2  # one per call, not one per batch of 4
    train = rec.data(v1, 4, seed=1)  # 16 examples
    for batch_size, runs in ((16, 1), (8, 2)):  # one mini-batch: once per step; two: once per mini-batch
        calls.clear()
        st = _student(tiny_dir, v1, prefix_cache="step", pack_tokens=64, batch_size=batch_size)
        st.train(train, np.random.default_rng(0))
        assert len(calls) == runs


def test_bf16_base_weights_train_with_a_float32_adapter(tiny_dir, rec, v1):
    """``base_dtype="bfloat16"`` on a CPU (no autocast there: the base computes in bf16): the
    base weights are bf16, the adapter float32, and training lowers the loss. On CUDA the same
    weights run under bf16 autocast, which only a GPU exercises."""
    st = _student(tiny_dir, v1, base_dtype="bfloat16", pack_tokens=64, prefix_cache="step", decode="fixed")
    base = st.model.get_base_model()
    assert base.get_output_embeddings().weight.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 for _, p in st._lora)
    train = rec.data(v1, 16, seed=1)
    rng = np.random.default_rng(0)
    first = st.train(train, rng).loss
    for _ in range(3):
        last = st.train(train, rng).loss
    assert last < 0.8 * first
    answers = st.predict([e.prompt for e in rec.data(v1, 1, seed=2, split="val")], 6)
    assert len(answers) == 4 and all(isinstance(a, str) for a in answers)


def test_the_gpu_kwargs_run_the_smollm2_id_on_a_cpu(tiny_dir, rec):
    """The GPU recipe's arguments are accepted by the registered id (here on a CPU, tiny model)."""
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)

    env = gym.make("distillgym/ArithSkills-SmolLM2-v1", student_kwargs={"model": tiny_dir, **GPU_KWARGS},
                   device="cpu", **rec.ENV_KWARGS)
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.array([0, 0]))
    assert info["costs"]["optimizer_steps"] == 1  # 32 examples, batch_size 64: one optimiser step
    _, _, term, _, info = env.step(np.array([2, 1]))
    assert term and "final" in info
    assert env.unwrapped.student.config.pack_tokens == GPU_KWARGS["pack_tokens"]
    env.close()


def test_bad_options_are_refused_with_the_choices(tiny_dir, v1):
    with pytest.raises(UnknownNameError, match="bfloat16"):
        _student(tiny_dir, v1, base_dtype="float16")
    with pytest.raises(ConfigError, match="pack_tokens must be an integer >= 0"):
        _student(tiny_dir, v1, pack_tokens=-1)
    with pytest.raises(UnknownNameError, match="step"):
        _student(tiny_dir, v1, prefix_cache="call")
    with pytest.raises(UnknownNameError, match="fixed"):
        _student(tiny_dir, v1, decode="sample")
    st = _student(tiny_dir, v1, pack_tokens=64)
    st._attn = "flash_attention_2"
    with pytest.raises(ConfigError, match="'sdpa' and 'eager'"):
        st._check_fast_paths(st.model.get_base_model())


def test_a_diverging_packed_step_is_refused_before_it_is_applied(tiny_dir, rec, v1):
    st = _student(tiny_dir, v1, pack_tokens=64, prefix_cache="step")
    with torch.no_grad():
        st._lora[0][1].fill_(float("nan"))
    before = {k: v.clone() for k, v in st.adapter_state().items()}
    with pytest.raises(TrainingDivergedError, match="training loss became nan") as err:
        st.train(rec.data(v1, 8, seed=9), np.random.default_rng(0))
    assert err.value.applied == 0 and st.step == 0
    after = st.adapter_state()
    assert all(torch.equal(before[k], after[k]) or torch.isnan(before[k]).all() for k in before)


def test_packing_refuses_a_model_that_changes_its_logits_after_the_head(tmp_path, rec, v1, monkeypatch):
    """Granite divides its logits by ``logits_scaling`` after the output head, which no config field
    that the student checks names. Packing applies the head to the decoder's hidden states itself,
    so it would score other logits than the model's (shown below with the check switched off): the
    student refuses it, and the default path, which runs the model's own forward, takes it."""
    from transformers import GraniteConfig

    from distillgym.students.lora import char_tokenizer, save_random_causal_lm

    chars = v1.alphabet + "\nua:"
    cfg = GraniteConfig(vocab_size=len(char_tokenizer(chars, chat_template=False)), hidden_size=32,
                        intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=512, tie_word_embeddings=True, initializer_range=0.3,
                        logits_scaling=4.0)
    granite = save_random_causal_lm(tmp_path / "granite", chars, cfg)
    with pytest.raises(ConfigError, match="changes its logits after the head"):
        _student(granite, v1, pack_tokens=64)
    held = rec.data(v1, 2, seed=2, split="val")
    ref = _student(granite, v1).answer_loss(held)
    assert np.isfinite(ref).all()
    monkeypatch.setattr(LoRAStudent, "_check_head", lambda self, base: None)
    unchecked = _student(granite, v1, pack_tokens=64).answer_loss(held)
    assert not np.allclose(unchecked, ref, rtol=1e-3)  # what the check prevents: other losses, silently


@pytest.mark.parametrize("option", [dict(pack_tokens=64), dict(prefix_cache="step"), dict(decode="fixed")])
def test_the_cache_reusing_options_refuse_a_transformers_without_cache_layers(tiny_dir, v1, monkeypatch, option):
    """pyproject allows transformers >= 4.45, whose DynamicCache before 4.54 has no ``layers``: the
    options that rebuild the prefix's cache from them are refused with the fix at construction,
    not an AttributeError in the middle of the first step; the defaults still run there."""
    import transformers

    class OldCache:  # transformers < 4.54: key_cache and value_cache lists, no layers
        def __init__(self, *args, **kwargs):
            self.key_cache, self.value_cache = [], []

    monkeypatch.setattr(transformers, "DynamicCache", OldCache)
    with pytest.raises(ConfigError, match="transformers 4.54 or newer"):
        _student(tiny_dir, v1, **option)
    _student(tiny_dir, v1)
