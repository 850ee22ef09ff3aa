"""A uniform-teacher episode, then the student's exact-match accuracy on its own training examples.

    OMP_NUM_THREADS=1 python train_accuracy.py SEED 'JSON of env kwargs'

Runs ``distillgym/ReasoningGym-v2`` with the kwargs and the ``uniform`` teacher, keeps what each step
trained on, and at the end prints the final validation mean and, per step, its cell and the accuracy
of the final student on the first 256 of that step's examples (training part of the suite). Where
these equal the held-out accuracies the student underfits rather than memorises.
(benchmarks/README.md ran it with seed 1001 and
``'{"budget": 32768, "examples_per_step": 1024, "student_kwargs": {"batch_size": 64}}'``, v2's old
defaults.)
"""

from __future__ import annotations

import json
import sys

import gymnasium as gym
import numpy as np
import torch

import distillgym  # noqa: F401
from distillgym.teachers import make_teacher


def main() -> None:
    torch.set_num_threads(1)
    seed, kw = int(sys.argv[1]), json.loads(sys.argv[2])
    env = gym.make("distillgym/ReasoningGym-v2", **kw)
    student = env.unwrapped.student
    obs, info = env.reset(seed=seed)
    teacher = make_teacher("uniform")
    teacher.reset(env.action_space, info, seed=seed)
    seen = []
    train = student.train

    def recording(examples, rng=None, **k):
        seen.append(examples)
        return train(examples, rng, **k)

    student.train = recording
    done = False
    while not done:
        obs, _, term, trunc, info = env.step(teacher.act(obs, info))
        done = term or trunc
    print("val end", info["final"]["val_accuracy_end"])
    for k, examples in enumerate(seen):
        first = list(examples)[:256]
        acc = float(np.mean(student.score(first)))
        print(k, first[0].skill, first[0].difficulty, f"train-acc {acc:.2f}")
    env.close()


if __name__ == "__main__":
    main()
