"""Wall and CPU seconds of one step of the native vector env against its number of sub-envs.

Usage (the numbers in benchmarks/results/learned-v2/step-cost.jsonl):

    python benchmarks/mix_step_cost.py distillgym/ArithMix-v2 2,4,8 3 [ENV_KWARGS_JSON]

For each N: ``gymnasium.make_vec(ENV, num_envs=N, vectorization_mode="vector_entry_point")`` (one
population of N students in this process, 1 torch thread), a reset with seed 0, one untimed step
(the first step of an episode trains without replay, so it is cheaper than the others), then
STEPS timed steps, every sub-env playing the all-zero mix action (the equal mix). One JSON line per
N: the reset's seconds, the wall seconds of one vectorised step (all N sub-envs), env steps per
wall second, this process's CPU seconds per env step, and the load average after the run (on a
shared machine wall time also counts the time other processes took).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str]) -> None:
    import gymnasium as gym
    import numpy as np
    import torch

    import distillgym  # noqa: F401  (registers the envs)

    torch.set_num_threads(1)
    env_id, ns, steps = argv[0], [int(x) for x in argv[1].split(",")], int(argv[2])
    kw = json.loads(argv[3]) if len(argv) > 3 else {}
    for n in ns:
        venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **kw)
        t0 = time.perf_counter()
        venv.reset(seed=0)
        reset_s = time.perf_counter() - t0
        act = np.zeros(venv.action_space.shape, np.float32)
        venv.step(act)  # untimed first step (no replay)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            venv.step(act)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(json.dumps(dict(env=env_id, n=n, kw=kw, steps=steps, reset_s=reset_s, vec_step_s=dt / steps,
                              env_steps_per_s=n * steps / dt, cpu_s_per_env_step=cpu / (n * steps),
                              load=os.getloadavg())), flush=True)
        venv.close()


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1:])
