"""The tiny transformer student: config validation, training, scoring, decoding, state."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distillgym.engines import ProceduralEngine  # noqa: E402
from distillgym.errors import ConfigError, TrainingDivergedError  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.students import CharTokenizer, StudentConfig, TinyStudent  # noqa: E402
from distillgym.students.tokenizer import BOS, EOS, PAD  # noqa: E402
from distillgym.types import Example, PlanItem  # noqa: E402


def _student(suite, **cfg) -> TinyStudent:
    return TinyStudent(StudentConfig(device="cpu", **cfg), suite.alphabet)


def _weights_equal(a: dict, b: dict) -> bool:
    """Bit-identical state dicts (NaN equal to NaN in the same place)."""
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape
        and torch.equal(torch.nan_to_num(a[k], nan=7.0), torch.nan_to_num(b[k], nan=7.0))
        and torch.equal(torch.isnan(a[k]), torch.isnan(b[k]))
        for k in a
    )


def _greedy_correct(student, suite, examples) -> np.ndarray:
    preds = student.predict([e.prompt for e in examples], max_new_tokens=suite.max_answer_len + 1)
    return np.array([p == e.answer for p, e in zip(preds, examples, strict=True)])


@pytest.fixture(scope="module")
def train_examples(suite):
    plan = [PlanItem(s, d, 100) for s in suite.skills for d in range(2)] + [PlanItem("copy", 2, 200)]
    examples, _ = ProceduralEngine(suite).generate(plan, rng_for(0, 1))
    return examples


@pytest.fixture(scope="module")
def trained_student(suite, train_examples):
    s = _student(suite)
    for epoch in range(3):
        s.train(train_examples, rng_for(0, 99, epoch))
    return s


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "fields,match",
    [
        (dict(hidden_size=65, num_heads=4), r"hidden_size \(65\) must be divisible by num_heads \(4\)"),
        (dict(hidden_size=0), "hidden_size must be a positive integer"),
        (dict(num_layers=2.0), "num_layers must be a positive integer"),
        (dict(batch_size=True), "batch_size must be a positive integer"),
        (dict(lr=float("inf")), "lr must be a finite number"),
        (dict(lr=float("nan")), "lr must be a finite number"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(weight_decay=-0.1), "weight_decay must be a finite number >= 0"),
        (dict(replay_fraction=1.0), r"replay_fraction must be in \[0, 1\)"),
        (dict(replay_capacity=-1), "replay_capacity must be an integer >= 0"),
        (dict(warmup_steps=-1), "warmup_steps must be an integer >= 0"),
        (dict(lr_decay_steps=-1), "lr_decay_steps must be an integer >= 0"),
        (dict(lr_final=1.5), r"lr_final must be in \[0, 1\]"),
        (dict(init_std=-0.1), "init_std must be a finite number >= 0"),
        (dict(pretrain_examples=0.5), "pretrain_examples must be an integer >= 0"),
        (dict(device="tpu"), "device must be 'auto', 'cpu' or 'cuda"),
    ],
)
def test_bad_student_config_is_config_error(fields, match):
    with pytest.raises(ConfigError, match=match):
        StudentConfig.from_dict(fields)


def test_unknown_student_field_lists_valid_fields():
    with pytest.raises(ConfigError) as err:
        StudentConfig.from_dict({"hiden_size": 64})
    msg = str(err.value)
    assert "hiden_size" in msg and "hidden_size" in msg and "num_heads" in msg


def test_config_from_dict_defaults_and_key():
    cfg = StudentConfig.from_dict(None)
    assert cfg == StudentConfig()
    assert StudentConfig.from_dict({"lr": 1e-3}).lr == 1e-3
    # the cache key ignores where the model runs but not what it is
    assert StudentConfig(device="cpu").key() == StudentConfig(device="auto", eval_batch_size=7).key()
    assert StudentConfig(lr=1e-3).key() != StudentConfig().key()
    assert StudentConfig().key("abc") != StudentConfig().key("abd")


def test_fields_added_later_keep_older_keys():
    """A field of ``OPTIONAL_FIELDS`` at its default is left out of the key, so configurations made
    before it existed keep their keys (these were recorded before lr_decay_steps, lr_final and
    init_std were added); off its default it changes the key."""
    from distillgym.students.char_lm import OPTIONAL_FIELDS

    assert StudentConfig().key() == "c158e501334af38e"
    assert StudentConfig(batch_size=64).key() == "398ba742a148da35"
    for name, default in OPTIONAL_FIELDS.items():
        assert getattr(StudentConfig(), name) == default
    assert StudentConfig(init_std=0.1).key() != StudentConfig().key()
    # the env's recorded config (the config hash) reads record(): the same rule
    assert not set(OPTIONAL_FIELDS) & set(StudentConfig().record())
    assert StudentConfig(init_std=0.1).record()["init_std"] == 0.1
    assert StudentConfig(lr_decay_steps=100).key() != StudentConfig().key()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_config_error(suite):
    with pytest.raises(ConfigError, match="CUDA is not available"):
        StudentConfig(device="cuda").validate()
    assert _student(suite).device.type == "cpu"
    assert TinyStudent(StudentConfig(), suite.alphabet).device.type == "cpu"  # "auto"


# ---------------------------------------------------------------------------- tokenizer
def test_tokenizer_round_trip_and_reversal(suite):
    tok = CharTokenizer(suite.alphabet, reverse_answers=True)
    assert tok.vocab_size == len(suite.alphabet) + 3
    ids = tok.encode_answer("1300")
    assert ids[-1] == EOS and ids[:-1] == tok.encode_text("0031")
    assert tok.decode_answer(ids + [5, 6]) == "1300"
    assert tok.encode_answer("<") == [*tok.encode_text("<"), EOS]
    assert tok.encode_prompt("12+3=")[0] == BOS
    plain = CharTokenizer(suite.alphabet, reverse_answers=False)
    assert plain.encode_answer("1300")[:-1] == plain.encode_text("1300")
    # a special token never decodes to a digit, so it can never spell the gold answer
    assert tok.decode_answer([tok.stoi["1"], PAD, tok.stoi["2"], EOS]) not in ("12", "21")
    with pytest.raises(ConfigError, match="not in the student's alphabet"):
        tok.encode_text("1/2")
    with pytest.raises(ConfigError, match="repeated"):
        CharTokenizer("0012")


# ---------------------------------------------------------------------------- score vs predict
def test_untrained_student_score_agrees_with_greedy_decoding(suite, val_examples):
    s = _student(suite)
    scored = s.score(val_examples)
    assert scored.dtype == bool and scored.shape == (len(val_examples),)
    np.testing.assert_array_equal(scored, _greedy_correct(s, suite, val_examples))


def test_trained_student_score_agrees_with_greedy_decoding(suite, trained_student, val_examples):
    """After a few thousand examples some items are right and some wrong; teacher-forced exact
    match must agree with greedy decoding on every one of them."""
    scored = trained_student.score(val_examples)
    greedy = _greedy_correct(trained_student, suite, val_examples)
    assert scored.any() and not scored.all(), "need both right and wrong items for a meaningful check"
    mismatches = [(e.prompt, e.answer) for e, a, b in zip(val_examples, scored, greedy, strict=True) if a != b]
    assert not mismatches


def test_score_does_not_depend_on_batching_or_padding(suite, trained_student, val_examples):
    full = trained_student.score(val_examples)
    shuffled_idx = np.random.default_rng(0).permutation(len(val_examples))
    shuffled = trained_student.score([val_examples[i] for i in shuffled_idx])
    np.testing.assert_array_equal(shuffled, full[shuffled_idx])
    small = _student(suite, eval_batch_size=7)
    small.load_state(trained_student.state())
    np.testing.assert_array_equal(small.score(val_examples), full)
    one_by_one = np.array([trained_student.score([e])[0] for e in val_examples[::9]])
    np.testing.assert_array_equal(one_by_one, full[::9])


def test_training_improves_the_student(suite, trained_student, train_examples):
    fresh = _student(suite)
    seen = train_examples[::5]
    assert trained_student.score(seen).sum() > fresh.score(seen).sum()
    assert _loss(trained_student, seen) < _loss(fresh, seen) - 0.5


def _loss(student, examples) -> float:
    ids, _, targets = student._collate(examples)
    with torch.no_grad():
        logits = student.model(input_ids=ids).logits
    return float(torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100))


def test_max_positions_too_small_is_config_error(suite):
    s = _student(suite, max_positions=4)
    with pytest.raises(ConfigError, match="max_positions"):
        s.score([Example("123+456=", "579", "add", 2)])


# ---------------------------------------------------------------------------- training
def test_train_stats_and_replay(suite, train_examples):
    s = _student(suite, batch_size=64, replay_fraction=0.5, replay_capacity=500)
    batch = train_examples[:300]
    stats = s.train(batch, rng_for(1))
    # the first call has an empty replay buffer: whole batches of new examples
    assert stats.examples == 300 and stats.optimizer_steps == math.ceil(300 / 64)
    assert math.isfinite(stats.loss) and stats.tokens > 0 and stats.seconds >= 0
    assert s.step == stats.optimizer_steps and len(s.replay) == 300
    # then each batch holds 32 new examples and 32 replayed ones
    stats2 = s.train(train_examples[300:600], rng_for(2))
    assert stats2.optimizer_steps == math.ceil(300 / 32)
    assert len(s.replay) == 500  # capacity keeps the most recent
    assert s.replay[-1] == train_examples[599] and s.replay[0] == train_examples[100]
    # no replay at all
    s0 = _student(suite, replay_fraction=0.0)
    s0.train(batch, rng_for(1))
    assert s0.replay == []


def test_train_on_nothing_changes_nothing(suite):
    s = _student(suite)
    before = s.state()
    stats = s.train([], rng_for(0))
    assert stats.examples == 0 and stats.optimizer_steps == 0
    assert _weights_equal(before, s.state())


def test_training_is_deterministic(suite, train_examples):
    a, b = _student(suite), _student(suite)
    assert _weights_equal(a.state(), b.state())
    la = a.train(train_examples[:400], rng_for(5)).loss
    lb = b.train(train_examples[:400], rng_for(5)).loss
    assert la == lb and _weights_equal(a.state(), b.state())
    c = _student(suite, init_seed=1)
    assert not _weights_equal(a.state(), c.state())


def test_state_is_a_copy_and_load_state_restores(suite, train_examples):
    s = _student(suite)
    initial = s.state()
    s.train(train_examples[:300], rng_for(0))
    assert not _weights_equal(initial, s.state())
    assert s.step > 0 and s.replay
    snapshot = s.state()
    s.train(train_examples[300:400], rng_for(1))
    assert not _weights_equal(snapshot, s.state())  # the snapshot did not move with the model
    s.load_state(initial)
    assert _weights_equal(initial, s.state())
    assert s.step == 0 and s.replay == [] and not s.optimizer.state


def test_warmup_learning_rate(suite):
    s = _student(suite, lr=1e-2, warmup_steps=4)
    assert [s._lr_at(i) for i in range(6)] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2, 1e-2, 1e-2])
    assert _student(suite, lr=1e-2, warmup_steps=0)._lr_at(0) == 1e-2


def test_cosine_learning_rate_decay():
    from distillgym.students.char_lm import lr_at

    cfg = StudentConfig(lr=1e-2, warmup_steps=4, lr_decay_steps=14, lr_final=0.1)
    got = [lr_at(cfg, i) for i in range(20)]
    assert got[:4] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2])  # warm-up as before
    assert got[4] == 1e-2 and got[9] == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))  # half-way: the mean
    assert all(a > b for a, b in zip(got[4:14], got[5:15], strict=False))
    assert got[14:] == pytest.approx([1e-3] * 6)  # lr * lr_final from lr_decay_steps on
    # the default keeps the constant rate, and a decay that ends within warm-up is none
    assert [lr_at(StudentConfig(lr=1e-2, warmup_steps=4), i) for i in (4, 100)] == [1e-2, 1e-2]
    assert lr_at(StudentConfig(lr=1e-2, warmup_steps=4, lr_decay_steps=3), 50) == 1e-2


def test_init_std_is_the_tiny_students_initializer_range(suite):
    assert _student(suite).model.config.initializer_range == 0.02
    s = _student(suite, init_std=0.1)
    assert s.model.config.initializer_range == 0.1
    w = s.model.model.layers[0].mlp.up_proj.weight
    assert 0.08 < float(w.detach().std()) < 0.12


# ---------------------------------------------------------------------------- divergence
def test_nan_loss_raises_and_leaves_weights_untouched(suite, train_examples):
    """A real NaN: one embedding row is poisoned, so every sequence containing that token
    yields a NaN loss. No monkeypatching."""
    s = _student(suite, batch_size=256)
    token = s.tokenizer.stoi["+"]
    with torch.no_grad():
        s.model.get_input_embeddings().weight[token, 0] = float("nan")
    before = s.state()
    batch = [e for e in train_examples if "+" in e.prompt][:100]
    with pytest.raises(TrainingDivergedError, match="loss became nan"):
        s.train(batch, rng_for(0))
    assert _weights_equal(before, s.state())
    assert s.step == 0 and s.replay == [] and not s.optimizer.state
    assert all(p.grad is None for p in s.model.parameters())


@pytest.mark.parametrize("grad_clip", [1.0, 0.0])
def test_nonfinite_gradient_with_finite_loss_raises_and_leaves_weights_untouched(suite, train_examples, grad_clip):
    """A real overflow: a huge final-norm scale gives enormous but finite logits and loss,
    while the gradient norm overflows float32 to inf. No monkeypatching."""
    s = _student(suite, batch_size=256, grad_clip=grad_clip)
    with torch.no_grad():
        s.model.model.norm.weight.fill_(1e20)
    batch = train_examples[:100]
    # the loss on this batch is finite ...
    ids, _, targets = s._collate(batch)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(
            s.model(input_ids=ids).logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100
        )
    assert torch.isfinite(loss)
    before = s.state()
    # ... yet training refuses the step
    with pytest.raises(TrainingDivergedError, match="gradient norm became"):
        s.train(batch, rng_for(0))
    assert _weights_equal(before, s.state())
    assert s.step == 0 and s.replay == [] and not s.optimizer.state
    # the student is still usable once its weights are sane again
    s.load_state(_student(suite).state())
    assert math.isfinite(s.train(batch, rng_for(0)).loss)


def test_divergence_error_is_a_distillgym_error():
    from distillgym.errors import DistillGymError

    assert issubclass(TrainingDivergedError, DistillGymError) and issubclass(TrainingDivergedError, RuntimeError)


def test_flops_per_token(suite):
    s = _student(suite)
    c = s.config
    assert s.n_params == sum(p.numel() for p in s.model.parameters())
    assert s.flops_per_token(10) == 6 * s.n_params + 12 * c.num_layers * c.hidden_size * 10
