"""The OpenEnv server of a teaching env and its client.

The server runs in this process (uvicorn in a thread, bound to 127.0.0.1 on a free port) and is
shut down by its fixture; the client talks to it over OpenEnv's WebSocket protocol and plays a
tiny-config ``ArithOpen-v1`` episode with the scripted writer, which must match the same episode
played locally.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("openenv")
pytest.importorskip("uvicorn")

import gymnasium as gym  # noqa: E402
import uvicorn  # noqa: E402
from pydantic import ValidationError  # noqa: E402

import distillgym  # noqa: E402,F401
from distillgym.errors import InvalidActionError, UnknownNameError  # noqa: E402
from distillgym.interop.openenv import (  # noqa: E402
    DistillGymClient,
    DistillGymEnvironment,
    TeachingAction,
    TeachingObservation,
    main,
    make_app,
)
from distillgym.teachers import make_teacher  # noqa: E402

TINY = dict(budget=1024, examples_per_step=512, n_val_per_cell=4, n_test_per_cell=4)
OPEN = "distillgym/ArithOpen-v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(make_app(OPEN, max_concurrent_envs=2, **TINY), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 120
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the OpenEnv server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


def _obs_dict(o: TeachingObservation) -> dict:
    return {"accuracy": np.asarray(o.accuracy, dtype=np.float32), "reference": np.asarray(o.reference, dtype=np.float32)}


def test_client_plays_an_episode_as_the_local_env_does(server):
    with urllib.request.urlopen(server + "/health", timeout=30) as r:
        assert json.loads(r.read())["status"] == "healthy"
    with urllib.request.urlopen(server + "/schema", timeout=30) as r:
        schema = json.loads(r.read())
    assert {"skill", "difficulty", "mix", "text"} <= set(schema["action"]["properties"])
    assert {"report", "accuracy", "info"} <= set(schema["observation"]["properties"])

    with DistillGymClient(base_url=server, message_timeout_s=600).sync() as client:
        result = client.reset(seed=4)
        obs = result.observation
        assert isinstance(obs, TeachingObservation) and not result.done
        assert "mean accuracy" in obs.report and obs.budget_left == 1024
        teacher = make_teacher("scripted-writer")
        teacher.reset(None, obs.info, seed=4)
        texts, rewards = [], []
        while not result.done:
            text = teacher.act(_obs_dict(result.observation), result.observation.info)
            texts.append(text)
            result = client.step(TeachingAction(text=text))
            rewards.append(result.reward)
        final = result.observation.info["final"]
        state = client.state()
        assert state.step_count == len(texts) == 2 and state.done and state.level == "open"
        assert state.episode_return == pytest.approx(sum(rewards))
        with pytest.raises(RuntimeError, match="reset"):  # the episode is over
            client.step(TeachingAction(text=texts[0]))
        client.reset(seed=4)
        with pytest.raises(RuntimeError, match="open-level actions, got a cell action"):
            client.step(TeachingAction(skill="add", difficulty=0))

    local = gym.make(OPEN, **TINY)  # the same episode without the server
    local.reset(seed=4)
    for text in texts:
        _, _, _, _, info = local.step(text)
    local.close()
    assert final["test_accuracy"] == info["final"]["test_accuracy"]
    assert result.observation.report == info["report"]
    assert result.observation.info["action"]["rejected"] == info["action"]["rejected"]


def test_actions_are_validated():
    assert TeachingAction(skill="add", difficulty=1).kind == "cell"
    assert TeachingAction(mix=[[0.0]]).kind == "mix" and TeachingAction(text="1+1=2").kind == "open"
    for bad in ({}, {"skill": "add"}, {"skill": "add", "difficulty": 0, "text": "1+1=2"}, {"difficulty": -1}):
        with pytest.raises(ValidationError):
            TeachingAction(**bad)


def test_environment_without_a_server():
    cls = DistillGymEnvironment.configured("distillgym/ArithSkills-v1", **TINY)
    env = cls()
    assert env.get_metadata().name == "distillgym/ArithSkills-v1"
    obs = env.reset(seed=1, episode_id="ep-1")
    assert env.state.episode_id == "ep-1" and env.state.seed == 1 and env.state.level == "cell"
    with pytest.raises(InvalidActionError, match="unknown skill 'ad'"):
        env.step(TeachingAction(skill="ad", difficulty=0))
    with pytest.raises(InvalidActionError, match="cell-level actions, got an open action"):
        env.step(TeachingAction(text="1+1=2"))
    out = env.step(TeachingAction(skill="add", difficulty=0), timeout_s=5.0)
    assert out.step == 1 and out.info["action"] == {"skill": "add", "difficulty": 0, "n": 512}
    assert out.reward == pytest.approx(out.mean_accuracy - obs.mean_accuracy)
    env.close()
    with pytest.raises(UnknownNameError, match="ArithSkills-v1"):
        DistillGymEnvironment.configured("distillgym/ArithSkill-v1")


def test_command_line_rejects_bad_env_kwargs():
    from distillgym.errors import ConfigError

    with pytest.raises(ConfigError, match="JSON object"):
        main(["--env-kwargs", "[1, 2]"])
    with pytest.raises(ConfigError, match="JSON object"):
        main(["--env-kwargs", "{budget: 3}"])
