"""Record the LoRA student's numbers on a tiny saved Llama (run once, at commit 5996ecc, before the
student's GPU options existed); ``tests/test_lora_fast.py`` replays them against the current code
with the default options (the path ``ArithSkills-SmolLM2-v1`` runs), so a change of those numbers
shows.

    OMP_NUM_THREADS=1 python tests/data/record_lora_tiny.py > tests/data/lora_tiny.json

Recorded per prompt format (plain, fewshot, chat): two ``train`` calls on 64 examples (4
mini-batches of 16 each) with their loss, tokens, FLOPs and per-cell loss, a digest of the adapter
weights after each call, then ``answer_loss`` and greedy ``predict`` on 16 validation items; and a
two-step episode of ``ArithSkills-SmolLM2-v1`` with the tiny model in place of SmolLM2 (its
observations, rewards and losses). Floats are stored with ``repr`` so the comparison can be
bit-exact; the machine's fingerprint (tests/data/record_v2_trajectory.py) is stored beside them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent
FORMATS = ("plain", "fewshot", "chat")
STUDENT = dict(device="cpu", rank=4, lr=1e-2, batch_size=16)
ENV_KWARGS = dict(budget=64, examples_per_step=32, n_val_per_cell=1, n_test_per_cell=1)
ENV_ACTIONS = ([0, 0], [2, 1])


def fingerprint() -> dict:
    """The machine's fingerprint (tests/data/record_v2_trajectory.py) and the versions of the
    libraries the LoRA student computes through: another transformers or peft may order the same
    float arithmetic otherwise, so a bit-exact replay needs the same ones."""
    import peft
    import transformers

    spec = importlib.util.spec_from_file_location("record_v2_trajectory", DATA / "record_v2_trajectory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return {**mod._fingerprint(), "transformers": transformers.__version__, "peft": peft.__version__}


def digest(state: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().to(torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def data(suite, n_per_cell: int, seed: int, split: str = "train", skills=("copy", "add")) -> list:
    from distillgym.seeding import rng_for

    return [e for i, s in enumerate(skills) for d in range(2)
            for e in suite.generate(s, d, rng_for(seed, 9, i, d), n_per_cell, split=split)]


def tiny_model(path) -> str:
    from distillgym.students.lora import save_tiny_causal_lm
    from distillgym.tasks import make_suite

    return save_tiny_causal_lm(path, make_suite("arith-v1").alphabet + "\nua:")


def record_student(model_dir: str, fmt: str, **extra) -> dict:
    """The recorded calls of one student (``extra``: more student arguments, for the replay)."""
    from distillgym.students import make_student
    from distillgym.tasks import make_suite

    v1 = make_suite("arith-v1")
    st = make_student("lora", v1, model=model_dir, prompt_format=fmt, **STUDENT, **extra)
    train, held = data(v1, 16, seed=1), data(v1, 4, seed=2, split="val")
    rng = np.random.default_rng(0)
    out: dict = {"train": []}
    for _ in range(2):
        s = st.train(train, rng)
        out["train"].append({
            "loss": repr(s.loss), "tokens": s.tokens, "flops": repr(s.flops), "optimizer_steps": s.optimizer_steps,
            "cell_loss": {f"{k[0]} L{k[1]}": repr(v) for k, v in sorted(s.cell_loss.items())},
            "adapter": digest(st.adapter_state()),
        })
    out["answer_loss"] = [repr(float(x)) for x in st.answer_loss(held)]
    out["predict"] = st.predict([e.prompt for e in held], max_new_tokens=8)
    return out


def record_env(model_dir: str, **student_extra) -> dict:
    import gymnasium as gym

    import distillgym  # noqa: F401  (registers the envs)

    env = gym.make("distillgym/ArithSkills-SmolLM2-v1", student_kwargs={"model": model_dir, **student_extra},
                   **ENV_KWARGS)
    obs, info = env.reset(seed=1)
    out = {"obs": [obs["accuracy"].tolist()], "rewards": [], "losses": []}
    for a in ENV_ACTIONS:
        obs, r, term, trunc, info = env.step(np.array(a))
        out["obs"].append(obs["accuracy"].tolist())
        out["rewards"].append(repr(float(r)))
        out["losses"].append(repr(info["train_loss"]))
    out["test_accuracy"] = repr(info["final"]["test_accuracy"])
    env.close()
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        d = tiny_model(tmp)
        rec = {"recorded_at_commit": sys.argv[1] if len(sys.argv) > 1 else "5996ecc", "fingerprint": fingerprint(),
               "student": STUDENT, "env_kwargs": ENV_KWARGS}
        for fmt in FORMATS:
            rec[fmt] = record_student(d, fmt)
        rec["env"] = record_env(d)
    print(json.dumps(rec, indent=1))
