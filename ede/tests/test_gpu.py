"""GPU smoke (pytest -m gpu): a few hundred EDE updates at the paper's sizes (IMPALA-CNN, 5 heads x 200 quantiles,
batch 512 per head) on 64 vectorised Procgen envs on CUDA, through train.py; losses finite, steps/s printed."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
PROJECT = Path(__file__).resolve().parents[1]


@needs_cuda
def test_ede_updates_on_procgen_cuda():
    pytest.importorskip("procgen", reason="procgen-mirror (requirements-nodeps.txt) is not installed here")
    from ede import EDEAgent, EDENetwork, ImpalaCNN, Replay
    from ede.envs import ProcgenVec, make_procgen

    env = ProcgenVec(make_procgen("coinrun", 64))
    net = EDENetwork(ImpalaCNN(3), env.n_actions, heads=5, quantiles=200, hidden=512)
    agent = EDEAgent(net, batch_size=512, device="cuda", generator=torch.Generator().manual_seed(0))
    assert next(agent.net.parameters()).is_cuda
    replay = Replay(1000, env.n, env.obs_shape)
    obs = env.reset()
    for _ in range(40):  # 2560 random transitions
        act = np.random.default_rng(0).integers(env.n_actions, size=env.n)
        nxt, rew, done = env.step(act)
        replay.add(torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(rew), torch.as_tensor(done))
        obs = nxt
    losses = [agent.update(replay)["loss"] for _ in range(5)]  # warm-up (cuDNN autotuning)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(200):
        losses.append(agent.update(replay)["loss"])
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    print(f"\nEDE updates on {torch.cuda.get_device_name()}: {200 / secs:.1f} updates/s "
          f"(5 heads x 512 transitions, IMPALA-CNN online + target)")
    assert np.isfinite(losses).all() and agent.updates == 205
    a = agent.act(torch.as_tensor(obs), torch.full((env.n,), 30.0))
    assert a.shape == (64,) and int(a.max()) < env.n_actions


@needs_cuda
def test_train_py_procgen_cuda_run(tmp_path):
    pytest.importorskip("procgen", reason="procgen-mirror (requirements-nodeps.txt) is not installed here")
    out = subprocess.run([sys.executable, "train.py", "env=procgen", "method=ede", "env.game=coinrun",
                          "deep.steps=300", "method.start_steps=40", "deep.eval_episodes=64", "deep.device=cuda",
                          f"run_dir={tmp_path}"], cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    print(f"\ntrain.py EDE on coinrun, 64 envs, CUDA: {m['train/env_steps_per_s']:.0f} env steps/s with "
          f"{m['train/updates']} updates in {m['train/seconds']:.1f} s")
    assert m["train/updates"] == 260 and np.isfinite(m["train/last_loss"])
    assert np.isfinite(m["test/normalized"]) and np.isfinite(m["train/normalized"])
