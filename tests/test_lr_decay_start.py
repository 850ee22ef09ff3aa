"""``StudentConfig.lr_decay_start``: a decay that begins later than warm-up's end (warm-up, stable,
decay), opt-in; the default keeps every schedule and key as it was."""

from __future__ import annotations

import math

import pytest

from distillgym.errors import ConfigError
from distillgym.students.char_lm import OPTIONAL_FIELDS, StudentConfig, lr_at


def test_the_decay_begins_at_lr_decay_start_and_ends_at_lr_decay_steps():
    cfg = StudentConfig(lr=1e-2, warmup_steps=4, lr_decay_steps=20, lr_decay_start=10, lr_final=0.1)
    got = [lr_at(cfg, i) for i in range(25)]
    assert got[:4] == pytest.approx([2.5e-3, 5e-3, 7.5e-3, 1e-2])  # warm-up as before
    assert got[4:11] == [1e-2] * 7  # stable until the decay begins
    assert got[15] == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5))  # half-way through the decay: the mean
    assert all(a > b for a, b in zip(got[10:20], got[11:21], strict=False))
    assert got[20:] == pytest.approx([1e-3] * 5)
    # a start within warm-up is warm-up's end, as without the field: the same numbers exactly
    plain = StudentConfig(lr=1e-2, warmup_steps=4, lr_decay_steps=14, lr_final=0.1)
    early = StudentConfig(lr=1e-2, warmup_steps=4, lr_decay_steps=14, lr_final=0.1, lr_decay_start=3)
    assert [lr_at(early, i) for i in range(20)] == [lr_at(plain, i) for i in range(20)]
    assert lr_at(plain, 9) == 1e-2 * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * 0.5)))


def test_lr_decay_start_is_validated_and_recorded_only_when_set():
    assert OPTIONAL_FIELDS["lr_decay_start"] == 0 and "lr_decay_start" not in StudentConfig().record()
    on = StudentConfig(lr_decay_steps=30, lr_decay_start=20)
    assert on.record()["lr_decay_start"] == 20 and on.key() != StudentConfig(lr_decay_steps=30).key()
    with pytest.raises(ConfigError, match="lr_decay_start must be an integer >= 0, got -1"):
        StudentConfig(lr_decay_start=-1).validate()
    with pytest.raises(ConfigError, match="lr_decay_start=20 needs lr_decay_steps .* got lr_decay_steps=0"):
        StudentConfig(lr_decay_start=20).validate()
    with pytest.raises(ConfigError, match="got lr_decay_steps=20"):
        StudentConfig(lr_decay_start=20, lr_decay_steps=20).validate()


def test_a_population_member_follows_the_plain_students_schedule_bit_for_bit():
    torch = pytest.importorskip("torch")
    from distillgym.seeding import rng_for
    from distillgym.students.population import PopulationStudent, _lr
    from distillgym.students.torch_student import PlainStudent
    from distillgym.tasks import make_suite

    v2 = make_suite("arith-v2")
    cfg = StudentConfig(device="cpu", batch_size=32, warmup_steps=2, lr_decay_steps=20, lr_decay_start=10, lr_final=0.0)
    assert _lr(cfg, [[9, 10, 11, 20]]).tolist() == [[lr_at(cfg, s) for s in (9, 10, 11, 20)]] and lr_at(cfg, 20) == 0.0
    pop, one = PopulationStudent(cfg, v2.alphabet, 1, [3]), PlainStudent(StudentConfig(**{**vars(cfg), "init_seed": 3}),
                                                                        v2.alphabet)
    for call in range(3):  # 2 + 12 + 12 steps: through the stable part, the decay and past its end
        data = v2.generate_arrays(*v2.cells[call], rng_for(0, call), 60 if call == 0 else 90, split="train")
        (sp,), so = pop.train([data], [rng_for(1, call)]), one.train(data, rng_for(1, call))
        assert sp.loss == so.loss
    assert one.step == 26 and one.optimizer.param_groups[0]["lr"] == lr_at(cfg, 25) == 0.0
    assert all(torch.equal(pop.state(0)[k], v) for k, v in one.state().items())
