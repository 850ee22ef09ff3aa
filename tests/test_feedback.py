"""The evaluator and its skill report."""

from __future__ import annotations

import numpy as np
import pytest

from distillgym.feedback import Evaluator, SkillReport
from distillgym.tasks import ArithmeticSuite


class FakeStudent:
    """Scores from a fixed boolean array through the teacher-forced fast path; predict()
    answers 'X<prompt>' and records calls."""

    teacher_forced_exact = True

    def __init__(self, correct):
        self.correct = np.asarray(correct, dtype=bool)
        self.predict_calls: list[tuple[list[str], int]] = []

    def score(self, examples):
        assert len(examples) == len(self.correct)
        return self.correct.copy()

    def predict(self, prompts, max_new_tokens):
        self.predict_calls.append((list(prompts), max_new_tokens))
        return ["X" + p for p in prompts]


def _hand_accuracy(suite, examples, correct):
    S, D = len(suite.skills), suite.n_difficulties
    hits, counts = np.zeros((S, D)), np.zeros((S, D))
    for e, c in zip(examples, correct, strict=True):
        i = suite.skills.index(e.skill)
        hits[i, e.difficulty] += c
        counts[i, e.difficulty] += 1
    return hits / np.maximum(counts, 1), counts


def test_accuracy_matrix_reference_and_gap(suite, val_examples):
    rng = np.random.default_rng(0)
    correct = rng.random(len(val_examples)) < 0.4
    report = Evaluator(suite, val_examples, n_errors=5).evaluate(FakeStudent(correct))
    acc, counts = _hand_accuracy(suite, val_examples, correct)
    np.testing.assert_allclose(report.accuracy, acc)
    np.testing.assert_array_equal(report.counts, counts)
    np.testing.assert_allclose(report.reference, np.ones(len(suite.skills)))  # the solver is exact
    skill_acc = (acc * counts).sum(1) / counts.sum(1)
    np.testing.assert_allclose(report.skill_accuracy, skill_acc)
    np.testing.assert_allclose(report.gap, (1.0 - skill_acc) / 1.0)
    assert report.mean_accuracy == pytest.approx(acc.mean())
    assert report.skills == suite.skills and report.n_difficulties == suite.n_difficulties


def test_errors_are_wrong_items_with_the_students_answer(suite, val_examples):
    correct = np.ones(len(val_examples), dtype=bool)
    wrong_idx = [3, 50, 51, 100, 200, 223]
    correct[wrong_idx] = False
    student = FakeStudent(correct)
    report = Evaluator(suite, val_examples, n_errors=4).evaluate(student, np.random.default_rng(1))
    assert len(report.errors) == 4
    wrong = [
        (val_examples[i].skill, val_examples[i].difficulty, val_examples[i].prompt, val_examples[i].answer)
        for i in wrong_idx
    ]
    for err in report.errors:
        assert set(err) == {"skill", "difficulty", "prompt", "student", "gold"}
        assert (err["skill"], err["difficulty"], err["prompt"], err["gold"]) in wrong
        assert err["student"] == "X" + err["prompt"]
    # errors listed in validation order, from a single predict call with room for answer + EOS
    order = [wrong.index((e["skill"], e["difficulty"], e["prompt"], e["gold"])) for e in report.errors]
    assert order == sorted(order)
    assert len(student.predict_calls) == 1 and student.predict_calls[0][1] == suite.max_answer_len + 1
    # the sample depends on the rng only
    again = Evaluator(suite, val_examples, n_errors=4).evaluate(FakeStudent(correct), np.random.default_rng(1))
    assert again.errors == report.errors
    # without an rng the first wrong items are taken
    first = Evaluator(suite, val_examples, n_errors=2).evaluate(FakeStudent(correct))
    assert [e["prompt"] for e in first.errors] == [w[2] for w in wrong[:2]]


def test_no_errors_sampled_when_disabled_or_all_right(suite, val_examples):
    s = FakeStudent(np.zeros(len(val_examples), dtype=bool))
    assert Evaluator(suite, val_examples, n_errors=0).evaluate(s).errors == []
    s2 = FakeStudent(np.ones(len(val_examples), dtype=bool))
    r = Evaluator(suite, val_examples, n_errors=8).evaluate(s2)
    assert r.errors == [] and r.mean_accuracy == 1.0
    assert s.predict_calls == [] and s2.predict_calls == []


class _HalfSolver(ArithmeticSuite):
    """A reference teacher that gets every add item wrong."""

    def solve(self, prompt):
        if "+" in prompt and prompt.count("+") == 1 and "-" not in prompt:
            return "?"
        return super().solve(prompt)


def test_reference_and_gap_use_the_reference_teachers_accuracy(val_examples):
    suite = _HalfSolver()
    correct = np.array([e.skill in ("copy", "add") for e in val_examples])
    report = Evaluator(suite, val_examples).evaluate(FakeStudent(correct))
    ref = dict(zip(suite.skills, report.reference, strict=True))
    assert ref["add"] == 0.0 and ref["mul"] == 1.0
    gap = dict(zip(suite.skills, report.gap, strict=True))
    assert gap["add"] == 0.0  # P_T = 0: defined as 0, not a division by zero
    assert gap["copy"] == 0.0 and gap["mul"] == 1.0


def test_render_and_to_dict(suite, val_examples):
    correct = np.arange(len(val_examples)) % 3 == 0
    report = Evaluator(suite, val_examples, n_errors=3).evaluate(FakeStudent(correct))
    text = report.render(budget_left=123)
    for s in suite.skills:
        assert s in text
    assert f"mean accuracy {report.mean_accuracy:.3f}" in text
    assert "budget left: 123 examples" in text
    assert "budget left" not in report.render()
    for e in report.errors:
        assert e["prompt"] in text and repr(e["gold"]) in text
    # the add row shows its prerequisite
    add_row = next(line for line in text.splitlines() if line.startswith("add "))
    assert "successor" in add_row
    d = report.to_dict()
    assert d["skills"] == list(suite.skills)
    assert np.allclose(d["accuracy"], report.accuracy, atol=1e-6)
    assert d["mean_accuracy"] == pytest.approx(report.mean_accuracy, abs=1e-6)
    assert d["errors"] == report.errors


def test_skill_accuracy_weights_cells_by_their_counts():
    r = SkillReport(
        skills=("a",),
        n_difficulties=2,
        accuracy=np.array([[1.0, 0.0]]),
        reference=np.array([0.5]),
        counts=np.array([[3, 1]]),
    )
    assert r.skill_accuracy[0] == pytest.approx(0.75)
    assert r.mean_accuracy == pytest.approx(0.5)
    assert r.gap[0] == pytest.approx((0.5 - 0.75) / 0.5)


class FakeGeneratingStudent:
    """No fast path: its greedy answers are the gold answer where ``correct`` and 'X' elsewhere;
    answer_loss is 1 where wrong, 0 where right; records predict calls."""

    teacher_forced_exact = False

    def __init__(self, examples, correct):
        self.examples = list(examples)
        self.ok = np.asarray(correct, dtype=bool)
        self.calls = 0

    def predict(self, prompts, max_new_tokens):
        self.calls += 1
        assert list(prompts) == [e.prompt for e in self.examples]  # one call for the whole set, in order
        return [e.answer if ok else "X" for e, ok in zip(self.examples, self.ok, strict=True)]

    def answer_loss(self, examples):
        assert list(examples) == self.examples
        return (~self.ok).astype(float)


def test_students_without_the_fast_path_are_scored_by_the_suites_rule(suite, val_examples):
    correct = np.random.default_rng(1).random(len(val_examples)) < 0.5
    student = FakeGeneratingStudent(val_examples, correct)
    report = Evaluator(suite, val_examples, n_errors=6, want_loss=True).evaluate(student, np.random.default_rng(0))
    acc, _ = _hand_accuracy(suite, val_examples, correct)
    np.testing.assert_allclose(report.accuracy, acc)
    np.testing.assert_allclose(report.loss, 1 - acc)  # mean loss per cell
    assert student.calls == 1  # the sampled errors reuse the answers already generated
    assert len(report.errors) == 6 and all(e["student"] == "X" for e in report.errors)


def test_engine_reference_accuracy_replaces_the_solver(suite, val_examples):
    ref = np.linspace(0.3, 0.9, len(suite.skills))
    report = Evaluator(suite, val_examples, reference=ref).evaluate(FakeStudent(np.zeros(len(val_examples), bool)))
    np.testing.assert_allclose(report.reference, ref)
    with pytest.raises(ValueError, match="shape"):
        Evaluator(suite, val_examples, reference=np.ones(3))
