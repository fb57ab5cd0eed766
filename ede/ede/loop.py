"""The deep training loop (spec section 2.3): vectorised actors acting with UCB and per-actor TEE coefficients
(EDE) or epsilon-greedy (the QR-DQN baseline), random actions for the first ``start_steps`` vector steps, one update
per ``train_freq`` vector steps, optional return normalisation, and a checkpoint (agent, optimiser, replay, RNG,
counters) that a rerun resumes from. Any vectorised env with ``reset() -> obs [E, ...]`` and
``step(actions) -> (obs, reward, done)`` works (Procgen via a thin adapter, or ``GridLevels`` below).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ede.agent import EDEAgent, Replay
from ede.core import tee_coefficients
from ede.metrics import ReturnNormalizer
from ede.tabular import TabularCMDP


class GridLevels:
    """A vectorised gridworld family for CPU checks: the 5x5 grid of Fig. 2 where each episode starts from a cell
    drawn from ``levels`` (train: a few start cells; test: all of them); observation = one-hot cell (float)."""

    def __init__(self, n_envs: int, levels: list[tuple[int, int]], seed: int = 0, horizon: int = 50):
        self.grid = TabularCMDP(horizon=horizon)
        self.n, self.levels = n_envs, [self.grid.state(c) for c in levels]
        self.rng = np.random.default_rng(seed)
        self.s = np.zeros(n_envs, dtype=int)
        self.t = np.zeros(n_envs, dtype=int)
        self.n_actions, self.obs_shape = 4, (self.grid.n_states,)

    def _obs(self):
        return np.eye(self.grid.n_states, dtype=np.float32)[self.s]

    def reset(self):
        self.s = self.rng.choice(self.levels, self.n)
        self.t[:] = 0
        return self._obs()

    def step(self, actions):
        s2, r, done = self.grid.step(self.s, np.asarray(actions))
        self.t += 1
        done = done | (self.t >= self.grid.horizon)
        self.s = np.where(done, self.rng.choice(self.levels, self.n), s2)
        self.t[done] = 0
        return self._obs(), r.astype(np.float32), done


def evaluate(agent: EDEAgent, env, episodes: int, eps: float = 0.05, seed: int = 0) -> np.ndarray:
    """Undiscounted returns of ``episodes`` finished episodes with the greedy-on-mean policy and eps_eval."""
    rng = np.random.default_rng(seed)
    obs, ret, out = env.reset(), np.zeros(env.n), []
    while len(out) < episodes:
        a = agent.greedy(torch.as_tensor(obs)).numpy()
        rand = rng.random(env.n) < eps
        a = np.where(rand, rng.integers(env.n_actions, size=env.n), a)
        obs, r, done = env.step(a)
        ret += r
        out += ret[done].tolist()
        ret[done] = 0.0
    return np.array(out[:episodes])


def train(agent: EDEAgent, env, replay: Replay, steps: int, explore: str = "ucb", phi: float = 30.0,
          lam: float = 0.6, alpha: float = 7.0, start_steps: int = 100, train_freq: int = 1,
          eps_decay: float = 8000.0, normalize_rewards: bool = False, ckpt_path: str | Path | None = None,
          ckpt_every: int = 1000, stop_after: int | None = None, log=None, seed: int = 0) -> dict:
    """Run ``steps`` vectorised env steps (``steps * n_envs`` transitions); returns {steps_done, updates,
    last_loss, resumed_from, stopped}. ``explore``: ucb (EDE: TEE coefficients phi lam^(1 + alpha i/(E-1)))
    or epsilon (QR-DQN: eps(t) = 0.1 + 0.9 exp(-(t - start) / eps_decay))."""
    if explore not in ("ucb", "epsilon"):
        raise ValueError(f"explore={explore!r}: use ucb (EDE) or epsilon (QR-DQN)")
    rng = np.random.default_rng(seed)
    coefs = tee_coefficients(phi, lam, alpha, env.n).float()
    norm = ReturnNormalizer(env.n) if normalize_rewards else None
    start, last_loss = 0, float("nan")
    ckpt_path = Path(ckpt_path) if ckpt_path else None
    obs = env.reset()
    if ckpt_path is not None and ckpt_path.exists():
        st = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        agent.net.load_state_dict(st["net"])
        agent.target.load_state_dict(st["target"])
        agent.opt.load_state_dict(st["opt"])
        agent.updates, start, obs = st["updates"], st["step"], st["obs"]
        for k in ("obs", "act", "rew", "done"):
            getattr(replay, k).copy_(st["replay"][k])
        replay.ptr, replay.size = st["replay"]["ptr"], st["replay"]["size"]
        agent.gen.set_state(st["gen"])
        rng.bit_generator.state = st["rng"]
        if hasattr(env, "rng") and "env_rng" in st:
            env.rng.bit_generator.state, env.s, env.t = st["env_rng"], st["env_s"], st["env_t"]
    resumed_from = start
    for step in range(start, steps):
        if step < start_steps:
            act = rng.integers(env.n_actions, size=env.n)
        elif explore == "ucb":
            act = agent.act(torch.as_tensor(obs), coefs).numpy()
        else:
            eps = 0.1 + 0.9 * math.exp(-(step - start_steps) / eps_decay)
            greedy = agent.greedy(torch.as_tensor(obs)).numpy()
            act = np.where(rng.random(env.n) < eps, rng.integers(env.n_actions, size=env.n), greedy)
        nxt, rew, done = env.step(act)
        stored = norm(rew, done) if norm is not None else rew
        replay.add(torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(stored), torch.as_tensor(done))
        obs = nxt
        if step >= start_steps and step % train_freq == 0 and len(replay) > 0:
            last_loss = agent.update(replay)["loss"]
            if log is not None and agent.updates % 100 == 0:
                log({"train/loss": last_loss, "train/updates": agent.updates}, step=step)
        done_steps = step + 1
        if ckpt_path is not None and (done_steps % ckpt_every == 0 or done_steps == steps):
            st = {"net": agent.net.state_dict(), "target": agent.target.state_dict(), "opt": agent.opt.state_dict(),
                  "updates": agent.updates, "step": done_steps, "obs": obs, "gen": agent.gen.get_state(),
                  "rng": rng.bit_generator.state,
                  "replay": {"obs": replay.obs, "act": replay.act, "rew": replay.rew, "done": replay.done,
                             "ptr": replay.ptr, "size": replay.size}}
            if hasattr(env, "rng"):
                st.update(env_rng=env.rng.bit_generator.state, env_s=env.s.copy(), env_t=env.t.copy())
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save(st, tmp)
            tmp.replace(ckpt_path)  # atomic: a killed job keeps its last good checkpoint (replay included)
        if stop_after is not None and done_steps >= stop_after and done_steps < steps:
            return {"steps_done": done_steps, "updates": agent.updates, "last_loss": last_loss,
                    "resumed_from": resumed_from, "stopped": True}
    return {"steps_done": steps, "updates": agent.updates, "last_loss": last_loss, "resumed_from": resumed_from,
            "stopped": False}

