"""Serve a distillgym environment with OpenEnv and play one episode through the client.

Without ``--url`` the script starts a server (``python -m distillgym.interop.openenv``) on a free
port of 127.0.0.1, waits for ``/health``, plays one episode with a built-in teacher over the
WebSocket client, prints the step rewards and the final test accuracy, and stops the server.

    pip install "distillgym[openenv]"
    python examples/openenv_client.py                                    # ArithOpen-v1, scripted-writer, tiny episode
    python examples/openenv_client.py --env distillgym/ArithSkills-v1 --teacher ioa
    python -m distillgym.interop.openenv --env distillgym/ArithMix-v1 --port 8000 &   # a server of your own
    python examples/openenv_client.py --url http://127.0.0.1:8000 --teacher stratified

A teacher of another action level than the env's is adapted as in ``distillgym run`` (a cell
teacher on an open env writes its cell's examples from the train part).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float = 600.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                if json.loads(r.read()).get("status") == "healthy":
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"no healthy server at {url} after {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=None, help="a running server; default: start one")
    ap.add_argument("--env", default="distillgym/ArithOpen-v1", help="env id of the server this script starts")
    ap.add_argument("--env-kwargs", default='{"budget": 1024, "examples_per_step": 512, "n_val_per_cell": 4, '
                    '"n_test_per_cell": 4}', help="JSON gym.make arguments of the server this script starts")
    ap.add_argument("--teacher", default="scripted-writer", help="a built-in teacher name")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import numpy as np

    from distillgym.interop.openenv import DistillGymClient, TeachingAction
    from distillgym.teachers import make_teacher
    from distillgym.teachers.adapters import adapt_teacher

    proc = None
    url = args.url
    if url is None:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "distillgym.interop.openenv", "--env", args.env,
                                 "--port", str(port), "--env-kwargs", args.env_kwargs])
    try:
        _wait_healthy(url, proc)
        with DistillGymClient(base_url=url, message_timeout_s=3600).sync() as client:
            result = client.reset(seed=args.seed)
            info = result.observation.info
            skills, level = info["skills"], info["level"]
            teacher = adapt_teacher(make_teacher(args.teacher), level)
            teacher.reset(None, info, seed=args.seed)
            print(result.observation.report)
            while not result.done:
                o = result.observation
                obs = {"accuracy": np.asarray(o.accuracy, dtype=np.float32),
                       "reference": np.asarray(o.reference, dtype=np.float32),
                       "budget_left": np.array([o.budget_left / info["budget"]], dtype=np.float32)}
                if o.loss is not None:
                    obs["loss"] = np.asarray(o.loss, dtype=np.float32)
                a = teacher.act(obs, o.info)
                if level == "open":
                    action = TeachingAction(text=a)
                elif level == "mix":
                    action = TeachingAction(mix=np.asarray(a, dtype=float).tolist())
                else:
                    action = TeachingAction(skill=skills[int(a[0])], difficulty=int(a[1]))
                result = client.step(action)
                teacher.update(obs, result.reward, result.done, False, result.observation.info)
                step = result.observation.info.get("action", {})
                print(f"step {result.observation.step}: reward {result.reward:+.4f}, mean val. acc. "
                      f"{result.observation.mean_accuracy:.3f}, action {json.dumps(step)[:160]}")
            final = result.observation.info["final"]
            state = client.state()
            print(f"episode {state.episode_id}: {state.step_count} steps, return {state.episode_return:+.4f}, "
                  f"final test accuracy {final['test_accuracy']:.4f}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
