"""CPU cost of a plain student's training row on ReasoningGym-v2's data, for several student settings.

    OMP_NUM_THREADS=1 python row_cost.py '{"batch_size": 64}' '{"batch_size": 64, "hidden_size": 32, ...}'

Draws the examples of 8 env steps (seed 1000, cells 0, 4, ..., 28 of the suite: one level of every
skill, 1,024 examples each), trains a fresh plain student on the first step's, then times (process CPU
time) its training on the other seven: optimiser steps, milliseconds a step and microseconds a
mini-batch row (new and replayed rows alike; rows are padded to their mini-batch's longest).
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium as gym
import numpy as np
import torch

import distillgym  # noqa: F401
from distillgym.students.char_lm import StudentConfig
from distillgym.students.torch_student import PlainStudent


def main() -> None:
    torch.set_num_threads(1)
    env = gym.make("distillgym/ReasoningGym-v2", examples_per_step=1024, budget=32768)
    u = env.unwrapped
    env.reset(seed=1000)
    steps = []
    for t in range(8):
        cell = u.suite.cells[(4 * t) % len(u.suite.cells)]
        act = np.array([u.suite.skill_index(cell[0]), cell[1]])
        examples, *_ = u._make_examples(u._decode(act), np.random.default_rng(t))
        steps.append(examples)
    for kw in map(json.loads, sys.argv[1:]):
        st = PlainStudent(StudentConfig.from_dict({**kw, "device": "cpu"}), u.suite.alphabet)
        st.train(steps[0], np.random.default_rng(0))
        c0, s0 = time.process_time(), st.step
        for e in steps[1:]:
            st.train(e, np.random.default_rng(1))
        cpu, n = time.process_time() - c0, st.step - s0
        print(json.dumps({"student_kwargs": kw, "steps": n, "ms_per_step": round(1000 * cpu / n, 2),
                          "us_per_row": round(1e6 * cpu / (n * st.config.batch_size), 1)}))


if __name__ == "__main__":
    main()
