"""``StudentConfig.replay_sampling="cell"``: replay stratified by (skill, level) cell, in the plain
student and the population alike (bit for bit), opt-in (the default leaves every record as it was)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distillgym.errors import ConfigError  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.students.char_lm import StudentConfig  # noqa: E402
from distillgym.students.hf_student import TinyStudent  # noqa: E402
from distillgym.students.population import PopulationStudent  # noqa: E402
from distillgym.students.torch_student import CellCodes, PlainStudent, batch_plan  # noqa: E402
from distillgym.tasks import make_suite  # noqa: E402

SMALL = dict(device="cpu", batch_size=32, warmup_steps=3, replay_sampling="cell")


@pytest.fixture(scope="module")
def v2():
    return make_suite("arith-v2")


def _cfg(**kw) -> StudentConfig:
    return StudentConfig(**{**SMALL, **kw})


def _data(v2, member: int, call: int, n: int):
    skill, level = v2.cells[(7 * member + call) % len(v2.cells)]
    return v2.generate_arrays(skill, level, rng_for(member, call), n, split="train")


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_cell_sampling_gives_every_cell_an_equal_share_of_the_replayed_rows():
    cells = np.array([0] * 90 + [1] * 10)  # cell 1 holds a tenth of the buffer
    strat = batch_plan(3200, 100, StudentConfig(batch_size=64, replay_sampling="cell"), np.random.default_rng(0), cells)
    flat = strat.replay.ravel()
    assert strat.replay.shape == (200, 48) and flat.min() >= 0 and flat.max() < 100
    assert 0.47 < np.mean(cells[flat] == 1) < 0.53  # half of the rows, not a tenth
    assert set(flat[cells[flat] == 1]) == set(range(90, 100))  # every row of the small cell drawn
    uniform = batch_plan(3200, 100, StudentConfig(batch_size=64), np.random.default_rng(0))
    assert 0.08 < np.mean(cells[uniform.replay.ravel()] == 1) < 0.12
    assert np.array_equal(uniform.order, strat.order)  # the permutation is drawn first either way
    again = batch_plan(3200, 100, StudentConfig(batch_size=64, replay_sampling="cell"), np.random.default_rng(0), cells)
    assert np.array_equal(again.replay, strat.replay)
    with pytest.raises(ConfigError, match="needs the cell of each of the 100 filled replay slots"):
        batch_plan(3200, 100, StudentConfig(batch_size=64, replay_sampling="cell"), np.random.default_rng(0))


def test_replay_sampling_is_validated_recorded_only_when_on_and_refused_by_the_tiny_student(v2):
    assert "replay_sampling" not in StudentConfig().record()
    assert StudentConfig(replay_sampling="cell").record()["replay_sampling"] == "cell"
    assert StudentConfig().key() == StudentConfig(replay_sampling="uniform").key() != _cfg().key()
    with pytest.raises(ConfigError, match=r"replay_sampling must be one of \['uniform', 'cell'\], got 'skill'"):
        StudentConfig(replay_sampling="skill").validate()
    with pytest.raises(ConfigError, match="not by the tiny"):
        TinyStudent(StudentConfig(device="cpu", replay_sampling="cell"), v2.alphabet)


def test_cell_codes_number_cells_in_order_of_first_appearance(v2):
    s = PlainStudent(_cfg(), v2.alphabet)
    codes = CellCodes()
    a, b = s.encode(_data(v2, 0, 3, 5)), s.encode(_data(v2, 0, 1, 4))
    assert codes.of(a).tolist() == [0] * 5 and codes.of(b).tolist() == [1] * 4 and codes.of(a).tolist() == [0] * 5
    assert codes.cells == [v2.cells[3], v2.cells[1]]


def test_the_plain_buffer_keeps_each_slots_cell_across_wraps_and_snapshots(v2):
    s = PlainStudent(_cfg(replay_capacity=50), v2.alphabet)
    assert s.replay.cells().tolist() == [] and "cell" not in PlainStudent(StudentConfig(), v2.alphabet).snapshot()["replay"]
    s.train(_data(v2, 0, 0, 40), rng_for(0))
    s.train(_data(v2, 0, 1, 30), rng_for(1))  # wraps: slots 0-19 now hold the second call's last 20 rows
    assert s.replay.cells().tolist() == [1] * 20 + [0] * 20 + [1] * 10
    snap = s.snapshot()["replay"]
    assert snap["cells"] == [list(v2.cells[0]), list(v2.cells[1])] and snap["cell"].tolist() == s.replay.cells().tolist()
    t = PlainStudent(_cfg(replay_capacity=50), v2.alphabet)
    t.restore(s.snapshot())
    assert t.replay.cells().tolist() == s.replay.cells().tolist() and t.replay.codes.cells == s.replay.codes.cells
    s.train(_data(v2, 0, 2, 30), rng_for(2))
    t.train(_data(v2, 0, 2, 30), rng_for(2))
    assert _max_diff(s.state(), t.state()) == 0
    u = PlainStudent(StudentConfig(device="cpu", batch_size=32, warmup_steps=3), v2.alphabet)
    u.train(_data(v2, 0, 0, 40), rng_for(0))
    t.restore(u.snapshot())  # a uniform student's buffer: one unnamed cell
    assert t.replay.cells().tolist() == [0] * 40 and t.replay.codes.cells == [("", -1)]


@pytest.mark.parametrize("member_chunk", [None, 1])
def test_members_with_cell_replay_equal_plain_students_bit_for_bit(v2, member_chunk):
    """Members with their own seeds, data (a new cell each call, a cell seen twice) and generators
    equal plain students with the same config; the cell draw changes what is replayed."""
    P, seeds = 3, [11, 12, 13]
    pop = PopulationStudent(_cfg(replay_capacity=150), v2.alphabet, P, seeds, member_chunk=member_chunk)
    singles = [PlainStudent(_cfg(init_seed=s, replay_capacity=150), v2.alphabet) for s in seeds]
    uniform = PlainStudent(StudentConfig(device="cpu", batch_size=32, warmup_steps=3, init_seed=11, replay_capacity=150),
                           v2.alphabet)
    for call in (0, 1, 0, 2):
        data = [_data(v2, p, call, 40 + 23 * p) for p in range(P)]
        got = pop.train(data, [rng_for(100 + p, call) for p in range(P)])
        want = [singles[p].train(data[p], rng_for(100 + p, call)) for p in range(P)]
        uniform.train(data[0], rng_for(100, call))
        for g, w in zip(got, want, strict=True):
            assert (g.optimizer_steps, g.tokens, g.loss, g.cell_loss) == (w.optimizer_steps, w.tokens, w.loss, w.cell_loss)
    for p in range(P):
        assert _max_diff(pop.state(p), singles[p].state()) == 0
        assert pop._replay_cells(p).tolist() == singles[p].replay.cells().tolist()
        assert pop.replay_codes[p].cells == singles[p].replay.codes.cells and len(pop.replay_codes[p].cells) == 3
    assert _max_diff(uniform.state(), singles[0].state()) > 1e-3  # another replay draw, other weights
    # snapshots move both ways with their cells
    copy = pop.member(1)
    assert copy.replay.cells().tolist() == singles[1].replay.cells().tolist()
    pop.restore(0, singles[2].snapshot())
    nxt = [_data(v2, p, 3, 50) for p in range(P)]
    pop.train(nxt, [rng_for(9, p) for p in range(P)])
    singles[2].train(nxt[0], rng_for(9, 0))
    copy.train(nxt[1], rng_for(9, 1))
    assert _max_diff(pop.state(0), singles[2].state()) == 0 and _max_diff(pop.state(1), copy.state()) == 0
    pop.reinit(2, 5)
    assert pop._replay_cells(2).tolist() == [] and pop.replay_codes[2].cells == []
