"""The plain student and the population of plain students in one batched model.

Equality. A population member computes exactly what a separately trained plain student computes:
each batched pass groups the members by the row length of their own mini-batch (or evaluation
chunk), so every member's tensors have the plain student's shapes (trailing padding rows, which
members with fewer rows get, change no number), and a batched product over members of one shape
equals the plain student's product on this CPU build. The tests assert bit-for-bit equality of
weights, losses, scores and greedy answers. (Before the grouping, a pass padded every member to
the longest row of any member, and float32 rounding differed by up to about 3e-5 in the weights
after 25 optimiser steps, which training amplified in an environment.)
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from distillgym.errors import ConfigError, TrainingDivergedError  # noqa: E402
from distillgym.seeding import rng_for  # noqa: E402
from distillgym.students import STUDENTS, make_student  # noqa: E402
from distillgym.students.char_lm import StudentConfig  # noqa: E402
from distillgym.students.hf_student import TinyStudent  # noqa: E402
from distillgym.students.population import PopulationDivergedError, PopulationStudent  # noqa: E402
from distillgym.students.tokenizer import PAD, CharTokenizer  # noqa: E402
from distillgym.students.torch_student import (  # noqa: E402
    PlainLM,
    PlainStudent,
    encode,
    from_hf_state_dict,
    init_weights,
    param_shapes,
)
from distillgym.tasks import make_suite  # noqa: E402
from distillgym.tasks.arrays import ExampleArrays  # noqa: E402
from distillgym.types import Example  # noqa: E402

SMALL = dict(device="cpu", batch_size=32, warmup_steps=3)


@pytest.fixture(scope="module")
def v2():
    return make_suite("arith-v2")


def _cfg(**kw) -> StudentConfig:
    return StudentConfig(**{**SMALL, **kw})


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _data(v2, member: int, call: int, n: int) -> ExampleArrays:
    skill, level = v2.cells[(7 * member + call) % len(v2.cells)]
    return v2.generate_arrays(skill, level, rng_for(member, call), n, split="train")


def _greedy_correct(student, suite, examples) -> np.ndarray:
    preds = student.predict([e.prompt for e in examples], max_new_tokens=suite.max_answer_len + 1)
    return np.array([p == e.answer for p, e in zip(preds, examples, strict=True)])


@pytest.fixture(scope="module")
def val_examples(v2):
    return [e for i, (s, d) in enumerate(v2.cells) for e in v2.generate(s, d, rng_for(77, i), 6, split="val")]


@pytest.fixture(scope="module")
def trained_plain(v2):
    s = PlainStudent(StudentConfig(device="cpu"), v2.alphabet)
    data = ExampleArrays.concat([v2.generate_arrays(sk, d, rng_for(0, i), 60, split="train")
                                 for i, (sk, d) in enumerate(v2.cells) if d < 2], v2.skills)
    for epoch in range(3):
        s.train(data, rng_for(1, epoch))
    return s


# ---------------------------------------------------------------------------- the model
def test_plain_model_equals_the_hf_llama_with_the_same_weights(v2, val_examples):
    """The plain model is the tiny student's architecture: same weights, same logits."""
    tiny = TinyStudent(StudentConfig(device="cpu"), v2.alphabet)
    plain = PlainStudent(StudentConfig(device="cpu"), v2.alphabet)
    plain.model.load_state_dict(from_hf_state_dict(tiny.model.state_dict(), 2))
    assert plain.n_params == tiny.n_params
    ids, _, _ = tiny._collate(val_examples)
    with torch.no_grad():
        diff = (tiny.model(input_ids=ids).logits - plain.model(ids)).abs().max().item()
    assert diff < 1e-5
    rows = plain.encode(val_examples)
    np.testing.assert_array_equal(rows.ids[:, : ids.shape[1]].astype(np.int64), ids.numpy())


def test_parameter_order_and_seeded_init(v2):
    model = PlainLM(PlainStudent(StudentConfig(device="cpu"), v2.alphabet).model_config)
    shapes = param_shapes(model.cfg)
    assert [(n, tuple(p.shape)) for n, p in model.named_parameters()] == list(shapes.items())
    a, b, c = (init_weights(model.cfg, s) for s in (3, 3, 4))
    assert _max_diff(a, b) == 0 and _max_diff(a, c) > 0.01
    torch.manual_seed(123)  # the global generator plays no role
    assert _max_diff(a, init_weights(model.cfg, 3)) == 0
    assert torch.equal(a["norm.weight"], torch.ones(64)) and abs(a["embed.weight"].std().item() - 0.02) < 0.003


def test_encode_arrays_and_lists_agree_and_reverse_numbers(v2):
    tok = PlainStudent(StudentConfig(device="cpu"), v2.alphabet).tokenizer
    exs = [Example("12+3=", "15", "add", 0), Example("5?4=", ">", "compare", 0), Example("c100=", "100", "copy", 0)]
    rows = encode(tok, exs)
    for r, e in zip(rows.ids, exs, strict=True):
        want = tok.encode_prompt(e.prompt) + tok.encode_answer(e.answer)
        assert r[: len(want)].tolist() == want and not r[len(want):].any()
    assert rows.prompt_len.tolist() == [6, 5, 6] and rows.length.tolist() == [9, 7, 10]
    arr = ExampleArrays.from_examples(exs, v2.skills)
    np.testing.assert_array_equal(encode(tok, arr).ids, rows.ids)
    with pytest.raises(ConfigError, match="not in the student's alphabet"):
        encode(tok, [Example("1/2=", "0", "add", 0)])
    with pytest.raises(ConfigError, match="max_positions"):
        encode(tok, exs, max_positions=8)


@pytest.mark.parametrize("reverse", [True, False])
def test_encode_matches_the_tokenizer_row_by_row_on_random_examples(reverse):
    """The vectorised encoder (one column write per answer character, reversed numbers written in
    place) against the tokenizer's per-example encoding, on random prompts and answers of every
    length: numeric answers, answers with letters or commas, empty answers, and code matrices with
    extra all-zero columns."""
    alphabet = "0123456789+-*=<>?,abcxyz"
    tok = CharTokenizer(alphabet, reverse_answers=reverse)
    rng = np.random.default_rng(7)
    digits, other = "0123456789", "abcxyz,<>-"

    def text(lo: int, hi: int, chars: str) -> str:
        return "".join(rng.choice(list(chars), size=int(rng.integers(lo, hi + 1))))

    exs = []
    for i in range(400):
        kind = i % 4
        answer = {0: text(1, 6, digits), 1: text(1, 6, digits + other), 2: "", 3: text(1, 1, other)}[kind]
        exs.append(Example(text(1, 12, alphabet) + "=", answer, "s", int(rng.integers(0, 3))))
    arr = ExampleArrays.from_examples(exs, ["s"])
    wide = ExampleArrays(np.pad(arr.prompt, ((0, 0), (0, 5))), arr.prompt_len, np.pad(arr.answer, ((0, 0), (0, 3))),
                         arr.answer_len, arr.skill, arr.difficulty, arr.skills)
    for rows in (encode(tok, exs), encode(tok, wide)):
        assert rows.ids.shape[1] == max(len(e.prompt) + len(e.answer) + 2 for e in exs)
        for r, e in zip(rows.ids, exs, strict=True):
            want = tok.encode_prompt(e.prompt) + tok.encode_answer(e.answer)
            assert r[: len(want)].tolist() == want and (r[len(want):] == PAD).all(), e
    assert encode(tok, ExampleArrays.empty(["s"])).ids.shape[0] == 0


# ---------------------------------------------------------------------------- the plain student
def test_plain_student_is_registered_and_checks_its_config(v2):
    assert "plain" in STUDENTS
    s = make_student("plain", v2, device="cpu", hidden_size=32)
    assert isinstance(s, PlainStudent) and s.config.hidden_size == 32 and s.costs()["n_params"] == s.n_params
    with pytest.raises(ConfigError, match="max_positions"):
        make_student("plain", v2, device="cpu", max_positions=10)
    with pytest.raises(ConfigError, match="no base pre-training"):
        make_student("plain", v2, device="cpu", pretrain_examples=100)


def test_plain_score_agrees_with_greedy_decoding(v2, trained_plain, val_examples):
    fresh = PlainStudent(StudentConfig(device="cpu"), v2.alphabet)
    np.testing.assert_array_equal(fresh.score(val_examples), _greedy_correct(fresh, v2, val_examples))
    scored = trained_plain.score(val_examples)
    assert scored.any() and not scored.all(), "need both right and wrong items for a meaningful check"
    np.testing.assert_array_equal(scored, _greedy_correct(trained_plain, v2, val_examples))
    assert trained_plain.answer_loss(val_examples).mean() < fresh.answer_loss(val_examples).mean() - 0.5


def test_plain_training_is_deterministic_and_snapshots_restore_exactly(v2):
    a, b = PlainStudent(_cfg(), v2.alphabet), PlainStudent(_cfg(), v2.alphabet)
    data = _data(v2, 0, 0, 100)
    sa, sb = a.train(data, rng_for(5)), b.train(list(data), rng_for(5))  # arrays and Example lists alike
    assert sa.loss == sb.loss and sa.optimizer_steps == 4 and _max_diff(a.state(), b.state()) == 0
    assert sa.tokens == int(a.encode(data).length.sum()) and len(a.replay) == 100
    snap = a.snapshot()
    a.train(_data(v2, 0, 1, 80), rng_for(6))
    after = a.state()
    a.restore(snap)
    assert _max_diff(a.state(), b.state()) == 0 and a.step == b.step and len(a.replay) == 100
    a.train(_data(v2, 0, 1, 80), rng_for(6))
    assert _max_diff(a.state(), after) == 0  # the same continuation, bit for bit
    a.reinit(9)
    assert _max_diff(a.state(), init_weights(a.model_config, 9)) == 0 and a.step == 0 and len(a.replay) == 0


def test_replay_ring_keeps_the_most_recent_rows(v2):
    s = PlainStudent(_cfg(replay_capacity=50), v2.alphabet)
    first, second = _data(v2, 0, 0, 40), _data(v2, 0, 1, 30)
    s.train(first, rng_for(0))
    stats = s.train(second, rng_for(1))
    assert stats.optimizer_steps == math.ceil(30 / 8)  # 8 new + 24 replayed rows per batch
    assert len(s.replay) == 50 and s.replay.count == 70
    kept = {tuple(r) for r in s.replay.ids}
    want = {tuple(r) for r in s.encode(first).ids[20:]} | {tuple(r) for r in s.encode(second).ids}
    padded = {tuple(np.pad(np.array(r), (0, s.config.max_positions - len(r)))) for r in want}
    assert kept == padded


def test_population_replay_slices_equal_the_scatter_across_wraps(v2, monkeypatch):
    """On a CPU the population appends to its replay rings by slice copies; on a GPU by one scatter.
    Both give the same rings, counts and lengths, including calls that wrap the ring and a call
    with more rows than its capacity."""
    sizes = [[30, 12, 0], [40, 45, 7], [120, 3, 50], [5, 60, 49]]

    def rings(scatter: bool) -> list:
        pop = PopulationStudent(_cfg(replay_capacity=50), v2.alphabet, 3, [1, 2, 3])
        if scatter:
            monkeypatch.setattr(pop, "_add_replay_slices", pop._add_replay_scatter)
        for call, ns in enumerate(sizes):
            pop.train([_data(v2, p, call, n) if n else None for p, n in enumerate(ns)],
                      [rng_for(3, call, p) for p in range(3)])
        return [pop.replay_ids.clone(), pop.replay_plen.clone(), pop.replay_len.clone(), pop.replay_len_cpu.copy(),
                pop.replay_count.copy()]

    slices, scatter = rings(False), rings(True)
    assert slices[4].tolist() == [195, 120, 106]
    for a, b in zip(slices, scatter, strict=True):
        assert (a == b).all()


def test_plain_nan_loss_raises_and_leaves_weights_untouched(v2):
    s = PlainStudent(_cfg(), v2.alphabet)
    with torch.no_grad():
        s.model.embed.weight[s.tokenizer.stoi["+"], 0] = float("nan")
    before = s.state()
    with pytest.raises(TrainingDivergedError, match="loss became nan") as err:
        s.train(v2.generate_arrays("add", 1, rng_for(0), 40), rng_for(0))
    assert err.value.applied == 0
    for k in before:  # NaN-safe equality
        assert torch.equal(torch.nan_to_num(before[k], 7.0), torch.nan_to_num(s.state()[k], 7.0))
    assert s.step == 0 and len(s.replay) == 0


# ---------------------------------------------------------------------------- the population
def test_population_of_one_equals_the_plain_student(v2):
    pop = PopulationStudent(_cfg(), v2.alphabet, 1, [4])
    one = PlainStudent(_cfg(init_seed=4), v2.alphabet)
    for call in range(3):
        data = _data(v2, 0, call, 70)
        (sp,), so = pop.train([data], [rng_for(1, call)]), one.train(data, rng_for(1, call))
        assert sp.optimizer_steps == so.optimizer_steps and sp.tokens == so.tokens
        assert sp.loss == so.loss
    assert _max_diff(pop.state(0), one.state()) == 0


def test_init_std_scales_the_initial_weights_of_plain_students_and_members(v2):
    """``StudentConfig.init_std`` is ``PlainConfig.init_std``: the same draws, scaled; a population
    of one with it trains as the plain student with it (the default 0.02 gives today's weights)."""
    base = init_weights(PlainStudent(_cfg(), v2.alphabet).model_config, 4)
    assert _max_diff(PlainStudent(_cfg(init_seed=4), v2.alphabet).state(), base) == 0
    wide = PlainStudent(_cfg(init_seed=4, init_std=0.1), v2.alphabet)
    assert wide.model_config.init_std == 0.1
    for k, v in wide.state().items():
        torch.testing.assert_close(v, base[k] if k.endswith("norm.weight") else base[k] * 5.0)
    pop = PopulationStudent(_cfg(init_std=0.1), v2.alphabet, 1, [4])
    assert _max_diff(pop.state(0), wide.state()) == 0
    for call in range(2):
        data = _data(v2, 0, call, 70)
        (sp,), so = pop.train([data], [rng_for(1, call)]), wide.train(data, rng_for(1, call))
        assert sp.loss == so.loss
    assert _max_diff(pop.state(0), wide.state()) == 0


def test_members_given_the_plain_students_data_equal_it_bit_for_bit(v2):
    """Every member on the same data as one plain student (100 rows: a partial last mini-batch
    each call), so every pass has the plain student's shapes: the members equal it exactly.
    (Formerly ``test_same_shapes_agree_exactly``, which asserted a 1e-6 tolerance, not equality.)"""
    pop = PopulationStudent(_cfg(), v2.alphabet, 3, [5, 5, 5])
    one = PlainStudent(_cfg(init_seed=5), v2.alphabet)
    for call in range(3):
        data = _data(v2, 1, call, 100)
        pop.train([data] * 3, [rng_for(2, call) for _ in range(3)])
        one.train(data, rng_for(2, call))
    for p in range(3):
        assert _max_diff(pop.state(p), one.state()) == 0


def test_training_groups_keep_each_members_own_number_of_rows(v2):
    """A pass's members are grouped by row length and number of rows: a weight gradient sums over a
    batch's rows, and trailing zero rows change MKL's float32 sum on an Intel Xeon (AVX-512), so a member
    padded to a larger group's batch would drift from the plain student at rounding (issue 19)."""
    pop = PopulationStudent(_cfg(), v2.alphabet, 4, [1, 2, 3, 4])
    groups = pop._groups(np.array([0, 1, 2, 3]), np.array([9, 9, 9, 7]), np.array([32, 20, 32, 32]))
    assert [(list(m), T) for m, T in groups] == [([3], 7), ([1], 9), ([0, 2], 9)]
    # evaluation (forward only) groups by length alone
    assert [(list(m), T) for m, T in pop._groups(np.array([0, 1, 2, 3]), np.array([9, 9, 9, 7]))] == [([3], 7),
                                                                                                  ([0, 1, 2], 9)]


def test_stacked_rows_from_the_encoded_block_equal_the_joined_members(v2):
    """``_stack_rows`` reads members' rows back from the one block ``_encode_many`` cut them from;
    the same arrays as joining the members' rows, for equal and unequal row counts and an empty member."""
    pop = PopulationStudent(_cfg(), v2.alphabet, 4, [1, 2, 3, 4])
    for sizes in ((30, 30, 30, 30), (12, 0, 40, 7)):
        data = [_data(v2, p, 1, n) if n else None for p, n in enumerate(sizes)]
        rows, block = pop._encode_many(data)
        assert block is not None and len(block) == sum(sizes)
        via_block = pop._stack_rows(rows, block=block)
        joined = pop._stack_rows(rows)  # no block: the members' rows joined
        for a, b in zip(via_block, joined, strict=True):
            np.testing.assert_array_equal(a, b)
        assert [int((via_block[2][p] > 0).sum()) for p in range(4)] == list(sizes)


@contextlib.contextmanager
def _torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("member_chunk,threads", [(None, 1), (1, 1), (2, 1), (None, 2), (2, 2)])
def test_members_equal_separately_trained_plain_students_bit_for_bit(v2, member_chunk, threads):
    """P students with their own seeds, data (of different sizes, cells and row lengths) and
    generators, trained in one population (in passes of at most ``member_chunk`` members; with two
    torch threads, the members split across two threads of one torch thread each), equal P plain
    students trained alone: weights, losses, cell losses, scores and greedy answers.
    (Before the population grouped members by row length this held only to about 3e-5; before it
    grouped them by number of rows too, only to float32 rounding on an Intel Xeon.)"""
    P, seeds = 3, [11, 12, 13]
    pop = PopulationStudent(_cfg(), v2.alphabet, P, seeds, member_chunk=member_chunk)
    singles = [PlainStudent(_cfg(init_seed=s), v2.alphabet) for s in seeds]
    start = [pop.state(p) for p in range(P)]
    for p in range(P):
        assert _max_diff(start[p], singles[p].state()) == 0
    for call in range(3):
        data = [_data(v2, p, call, 50 + 23 * p) for p in range(P)]
        with _torch_threads(threads):
            got = pop.train(data, [rng_for(100 + p, call) for p in range(P)])
            assert torch.get_num_threads() == threads  # the split passes give torch its threads back
        assert (pop._threads is not None) == (threads > 1)  # the passes ran in the pool's threads
        want = [singles[p].train(data[p], rng_for(100 + p, call)) for p in range(P)]
        for g, w in zip(got, want, strict=True):
            assert (g.optimizer_steps, g.tokens, g.examples) == (w.optimizer_steps, w.tokens, w.examples)
            assert g.loss == w.loss
            assert g.cell_loss.keys() == w.cell_loss.keys() and len(w.cell_loss) == 1
            assert g.cell_loss == w.cell_loss
            assert g.flops == w.flops and g.seconds > 0
    for p in range(P):
        assert _max_diff(pop.state(p), singles[p].state()) == 0
        assert _max_diff(pop.state(p), start[p]) > 1e-2  # training moved them
        assert int(pop.step[p]) == singles[p].step and pop._replay_filled(p) == len(singles[p].replay)
    val = [v2.generate_arrays(*v2.cells[4 + 9 * p], rng_for(7, p), 40 + 30 * p, split="val") for p in range(P)]
    with _torch_threads(threads):
        scored = pop.score_and_loss(val)
    answers = pop.predict([[e.prompt for e in v] for v in val], v2.max_answer_len + 1)
    for p in range(P):
        correct, loss = singles[p].score_and_loss(val[p])
        np.testing.assert_array_equal(scored[p][0], correct)
        np.testing.assert_array_equal(scored[p][1], loss)
        assert answers[p] == singles[p].predict([e.prompt for e in val[p]], v2.max_answer_len + 1)


def test_population_score_agrees_with_greedy_decoding(v2, trained_plain, val_examples):
    """teacher_forced_exact for every member: a trained member (state from a plain student)
    and a fresh one, each on its own items."""
    pop = PopulationStudent(StudentConfig(device="cpu"), v2.alphabet, 2, [0, 1])
    pop.restore(0, trained_plain.snapshot())
    items = [val_examples, val_examples[::2]]
    scored = pop.score(items)
    preds = pop.predict([[e.prompt for e in x] for x in items], v2.max_answer_len + 1)
    assert scored[0].any() and not scored[0].all()
    for p in range(2):
        greedy = np.array([a == e.answer for a, e in zip(preds[p], items[p], strict=True)])
        np.testing.assert_array_equal(scored[p], greedy)
    assert preds[0] == trained_plain.predict([e.prompt for e in items[0]], v2.max_answer_len + 1)
    assert pop.predict([[], ["1+1="]], 4)[0] == []


def test_snapshots_move_between_population_members_and_plain_students(v2):
    pop = PopulationStudent(_cfg(), v2.alphabet, 2, [1, 2])
    plain = PlainStudent(_cfg(init_seed=3), v2.alphabet)
    plain.train(_data(v2, 0, 0, 90), rng_for(0))
    pop.train([_data(v2, 1, 0, 60), _data(v2, 2, 0, 40)], [rng_for(1), rng_for(2)])
    member0 = pop.snapshot(0)
    pop.restore(1, plain.snapshot())  # plain -> member 1
    copy = pop.member(0)  # member 0 -> plain
    assert copy.step == int(pop.step[0]) and len(copy.replay) == 60
    nxt = [_data(v2, 3, 1, 50), _data(v2, 4, 1, 50)]
    pop.train(nxt, [rng_for(3), rng_for(4)])
    plain.train(nxt[1], rng_for(4))
    copy.train(nxt[0], rng_for(3))
    assert _max_diff(pop.state(1), plain.state()) == 0
    assert _max_diff(pop.state(0), copy.state()) == 0
    pop.restore(0, member0)
    assert _max_diff(pop.state(0), member0["weights"]) == 0 and int(pop.step[0]) == member0["step"]


def test_member_without_data_is_untouched_and_reinit_is_per_member(v2):
    pop = PopulationStudent(_cfg(), v2.alphabet, 3, [1, 2, 3])
    pop.train([_data(v2, 0, 0, 40)] * 3, [rng_for(0) for _ in range(3)])
    before = pop.snapshot(1)
    stats = pop.train([_data(v2, 0, 1, 40), None, []], [rng_for(1), None, None])
    assert stats[1].optimizer_steps == 0 and stats[2].examples == 0 and stats[0].optimizer_steps > 0
    after = pop.snapshot(1)
    assert _max_diff(before["weights"], after["weights"]) == 0
    for j in before["optimizer"]["state"]:
        assert torch.equal(before["optimizer"]["state"][j]["exp_avg"], after["optimizer"]["state"][j]["exp_avg"])
    pop.reinit(2, 42)
    assert _max_diff(pop.state(2), init_weights(pop.model_config, 42)) == 0
    assert int(pop.step[2]) == 0 and pop._replay_filled(2) == 0 and pop.snapshot(2)["optimizer"] is None
    assert int(pop.step[1]) > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_a_diverging_member_stops_and_the_others_train_on(v2, threads):
    pop = PopulationStudent(_cfg(), v2.alphabet, 3, [1, 2, 3])
    singles = [PlainStudent(_cfg(init_seed=s), v2.alphabet) for s in (1, 3)]
    with torch.no_grad():
        pop.model.weight("embed.weight")[1, pop.tokenizer.stoi["+"], 0] = float("nan")
    poisoned = pop.snapshot(1)
    data = [v2.generate_arrays("add", 1, rng_for(p), 60) for p in range(3)]
    with pytest.raises(PopulationDivergedError, match="member 1") as err, _torch_threads(threads):
        pop.train(data, [rng_for(10 + p) for p in range(3)])
    assert set(err.value.errors) == {1} and err.value.errors[1].applied == 0
    assert "loss became nan" in str(err.value.errors[1])
    assert len(err.value.stats) == 3 and err.value.stats[0].optimizer_steps == 2
    after = pop.snapshot(1)
    for k in poisoned["weights"]:
        assert torch.equal(torch.nan_to_num(poisoned["weights"][k], 7.0), torch.nan_to_num(after["weights"][k], 7.0))
    assert after["optimizer"] is None and after["step"] == 0 and pop._replay_filled(1) == 0
    for single, p in zip(singles, (0, 2), strict=True):
        single.train(data[p], rng_for(10 + p))
        assert _max_diff(pop.state(p), single.state()) == 0 and pop._replay_filled(p) == 60


def test_a_failing_job_in_a_thread_raises_after_every_job_and_gives_torch_its_threads_back(v2):
    """With two torch threads a pass's 3 members run as two jobs (2 + 1 members) in the pool's
    threads; a job's error reaches the caller once both jobs have ended, and torch's thread count,
    set to one for the passes, is restored."""
    pop = PopulationStudent(_cfg(), v2.alphabet, 3, [1, 2, 3])
    seen = []

    def fails(x, weights=None):
        seen.append(x.shape[0])
        raise RuntimeError("a pass job failed")

    pop._train_forward = fails
    data = [v2.generate_arrays("add", 1, rng_for(p), 60) for p in range(3)]
    with _torch_threads(2):
        with pytest.raises(RuntimeError, match="a pass job failed"):
            pop.train(data, [rng_for(10 + p) for p in range(3)])
        assert torch.get_num_threads() == 2
    assert sorted(seen) == [1, 2]


def test_population_argument_errors(v2):
    with pytest.raises(ConfigError, match="size must be an integer"):
        PopulationStudent(_cfg(), v2.alphabet, 0)
    with pytest.raises(ConfigError, match="one seed per member"):
        PopulationStudent(_cfg(), v2.alphabet, 2, [1])
    pop = PopulationStudent.for_suite(v2, 2, device="cpu", batch_size=32)
    assert pop.costs()["population_size"] == 2 and pop.costs()["n_params"] == pop.member(0).n_params
    with pytest.raises(ConfigError, match="one entry per member"):
        pop.train([[]], [None])
    with pytest.raises(ConfigError, match="no random generator"):
        pop.train([_data(v2, 0, 0, 5), None], [None, None])
    with pytest.raises(ConfigError, match="member index"):
        pop.snapshot(2)


# ---------------------------------------------------------------------------- torch.compile (opt-in)
def _has_compiler() -> bool:
    import os
    import shutil

    return shutil.which(os.environ.get("CXX", "g++")) is not None


@pytest.mark.skipif(not _has_compiler(), reason="torch.compile's CPU backend needs a C++ compiler (g++)")
def test_compiled_training_is_deterministic_and_close_to_eager(v2):
    """StudentConfig.compile: the plain student and a population trained through torch.compile give
    the same numbers run after run, within float rounding of eager training (not bit for bit: fused
    kernels round differently), and leave the eager parameters they share up to date."""
    kw = dict(hidden_size=32, intermediate_size=64, num_layers=1)
    calls = [_data(v2, 0, c, n) for c, n in enumerate((70, 45, 90))]

    def plain(compile: bool) -> tuple[dict, list[float]]:
        s = PlainStudent(_cfg(compile=compile, **kw), v2.alphabet)
        losses = [s.train(d, rng_for(5, c)).loss for c, d in enumerate(calls)]
        return s.state(), losses

    (w1, l1), (w2, l2), (we, le) = plain(True), plain(True), plain(False)
    assert _max_diff(w1, w2) == 0 and l1 == l2
    assert _max_diff(w1, we) < 1e-3 and np.allclose(l1, le, atol=1e-4)

    pops = []
    for compile in (True, True, False):
        pop = PopulationStudent(_cfg(compile=compile, **kw), v2.alphabet, 2, [0, 0])
        for c, d in enumerate(calls):  # member 1 gets less data: passes in groups, with gathered weights
            pop.train([d, d.take(np.arange(len(d) // 2))], [rng_for(5, c), rng_for(6, c)])
        pops.append([pop.state(p) for p in range(2)])
    assert all(_max_diff(a, b) == 0 for a, b in zip(pops[0], pops[1], strict=True))
    assert all(_max_diff(a, b) < 1e-3 for a, b in zip(pops[0], pops[2], strict=True))


def test_compile_is_recorded_only_when_on_and_the_tiny_student_refuses_it(v2):
    import gymnasium as gym

    import distillgym  # noqa: F401

    on = gym.make("distillgym/ArithMix-v2", student_kwargs={"compile": True}).unwrapped.config
    off = gym.make("distillgym/ArithMix-v2").unwrapped.config
    assert on["student_kwargs"]["compile"] is True and "compile" not in off["student_kwargs"]
    assert "compile" not in StudentConfig().record() and StudentConfig(compile=True).record()["compile"] is True
    with pytest.raises(ConfigError, match="compile must be True or False"):
        StudentConfig(compile="yes").validate()
    with pytest.raises(ConfigError, match="not by the tiny"):
        TinyStudent(StudentConfig(device="cpu", compile=True), v2.alphabet)
