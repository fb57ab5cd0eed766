"""The deep loop on the CPU gridworld family: EDE learns the training start; a run killed mid-way and resumed from
its checkpoint (replay included) ends with exactly the weights of an uninterrupted run; bad input is named."""
import numpy as np
import pytest
import torch

from ede.agent import EDEAgent, Replay
from ede.loop import GridLevels, evaluate, train
from ede.networks import EDENetwork, MLPTrunk


def _setup(seed=0):
    torch.manual_seed(seed)
    env = GridLevels(4, [(0, 0)], seed=seed)
    agent = EDEAgent(EDENetwork(MLPTrunk(25, 32), 4, heads=3, quantiles=8, hidden=32), lr=1e-3, batch_size=32,
                     target_update=50, generator=torch.Generator().manual_seed(seed))
    return env, agent, Replay(1000, 4, (25,), torch.float32, n_step=3, gamma=0.99)


def test_ede_learns_the_training_start():
    env, agent, replay = _setup()
    out = train(agent, env, replay, 400, explore="ucb", phi=3.0, start_steps=50)
    assert out["updates"] == 350 and np.isfinite(out["last_loss"])
    returns = evaluate(agent, GridLevels(4, [(0, 0)], seed=1), 8, eps=0.0)
    assert returns.mean() == pytest.approx(1.88)  # the optimal return of the training start


def test_kill_and_resume_equals_the_uninterrupted_run(tmp_path):
    env, agent, replay = _setup()
    train(agent, env, replay, 120, explore="epsilon", start_steps=20, eps_decay=50)
    env2, agent2, replay2 = _setup()
    first = train(agent2, env2, replay2, 120, explore="epsilon", start_steps=20, eps_decay=50,
                  ckpt_path=tmp_path / "ckpt.pt", ckpt_every=25, stop_after=60)
    assert first["stopped"] and first["steps_done"] == 60  # "killed" at step 60; the last checkpoint is step 50
    env3, agent3, replay3 = _setup(seed=0)  # a fresh process: everything comes back from the checkpoint
    second = train(agent3, env3, replay3, 120, explore="epsilon", start_steps=20, eps_decay=50,
                   ckpt_path=tmp_path / "ckpt.pt", ckpt_every=25)
    assert second["resumed_from"] == 50 and agent3.updates == agent.updates
    for a, b in zip(agent.net.parameters(), agent3.net.parameters()):
        assert torch.equal(a, b)


def test_bad_exploration_is_named():
    env, agent, replay = _setup()
    with pytest.raises(ValueError, match="explore"):
        train(agent, env, replay, 1, explore="boltzmann")
