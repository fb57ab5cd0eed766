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
from tqdm.auto import tqdm

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
    with tqdm(total=episodes, desc="evaluate", unit="ep", leave=False, disable=episodes < 100) as bar:
        while len(out) < episodes:
            a = agent.greedy(torch.as_tensor(obs)).numpy()
            rand = rng.random(env.n) < eps
            a = np.where(rand, rng.integers(env.n_actions, size=env.n), a)
            obs, r, done = env.step(a)
            ret += r
            out += ret[done].tolist()
            bar.update(int(done.sum()))
            ret[done] = 0.0
    return np.array(out[:episodes])


EXPLORE = ("ucb", "thompson", "epsilon", "ez_greedy", "bootstrap", "noisy")


class Explorer:
    """How actors pick actions (spec 2.2-2.5): ``ucb`` (EDE; coefficient phi, or TEE's phi lam^(1 + alpha i/(E-1))
    per actor), ``thompson`` (EDE on Crafter, coefficient phi), ``epsilon`` (eps(t) = 0.1 + 0.9 exp(-(t - start) /
    eps_decay), or with TEE a fixed eps_i = lam^(1 + alpha i/(E-1)) per actor), ``ez_greedy`` (the same epsilon,
    but a random action is repeated n ~ zeta(2) steps, n <= 10000), ``bootstrap`` (bootstrapped DQN: each actor
    follows one head drawn at its episode start, plus the epsilon schedule), ``noisy`` (NoisyNet: greedy on noisy
    heads, no epsilon)."""

    def __init__(self, kind: str, n_envs: int, n_actions: int, heads: int, phi: float = 30.0, lam: float = 0.6,
                 alpha: float = 7.0, tee: bool = True, eps_decay: float = 8000.0, start_steps: int = 0,
                 seed: int = 0):
        if kind not in EXPLORE:
            raise ValueError(f"explore={kind!r}: one of {EXPLORE}")
        self.kind, self.n, self.n_actions, self.heads, self.tee = kind, n_envs, n_actions, heads, tee
        self.phi, self.eps_decay, self.start = phi, eps_decay, start_steps
        self.coefs = (tee_coefficients(phi, lam, alpha, n_envs).float() if tee
                      else torch.full((n_envs,), float(phi)))
        self.eps_tee = (tee_coefficients(1.0, lam, alpha, n_envs).numpy() if tee else None)
        self.rng = np.random.default_rng(seed)
        self.head = self.rng.integers(heads, size=n_envs)  # bootstrapped DQN: each actor's head
        self.repeat = np.zeros(n_envs, dtype=np.int64)  # ez-greedy: steps left of the current random action
        self.last = np.zeros(n_envs, dtype=np.int64)

    def epsilon(self, step: int) -> np.ndarray:
        if self.eps_tee is not None:
            return self.eps_tee
        return np.full(self.n, 0.1 + 0.9 * math.exp(-(step - self.start) / self.eps_decay))

    def __call__(self, agent: EDEAgent, obs, step: int) -> np.ndarray:
        obs = torch.as_tensor(obs)
        if self.kind == "ucb":
            return agent.act(obs, self.coefs).numpy()
        if self.kind == "thompson":
            return agent.thompson(obs, self.phi).numpy()
        if self.kind == "noisy":
            return agent.greedy(obs).numpy()
        if self.kind == "bootstrap":
            q = agent.quantiles(obs).mean(2)  # [E, M, A]
            greedy = q[torch.arange(self.n), torch.as_tensor(self.head)].argmax(-1).numpy()
        else:
            greedy = agent.greedy(obs).numpy()
        rand = self.rng.random(self.n) < self.epsilon(step)
        if self.kind != "ez_greedy":
            return np.where(rand, self.rng.integers(self.n_actions, size=self.n), greedy)
        start = rand & (self.repeat == 0)  # a new random action with its zeta(2) duration
        self.last = np.where(start, self.rng.integers(self.n_actions, size=self.n), self.last)
        self.repeat = np.where(start, np.minimum(self.rng.zipf(2.0, size=self.n), 10000), self.repeat)
        act = np.where(self.repeat > 0, self.last, greedy)
        self.repeat = np.maximum(self.repeat - 1, 0)
        return act

    def episode_end(self, done: np.ndarray) -> None:
        """New episodes: bootstrapped DQN draws their heads; ez-greedy stops their repeats."""
        self.head = np.where(done, self.rng.integers(self.heads, size=self.n), self.head)
        self.repeat = np.where(done, 0, self.repeat)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "head": self.head, "repeat": self.repeat, "last": self.last}

    def load(self, st: dict) -> None:
        self.rng.bit_generator.state = st["rng"]
        self.head, self.repeat, self.last = st["head"], st["repeat"], st["last"]


def train(agent: EDEAgent, env, replay: Replay, steps: int, explore: str = "ucb", phi: float = 30.0,
          lam: float = 0.6, alpha: float = 7.0, tee: bool = True, start_steps: int = 100, random_start: bool = True,
          train_freq: int = 1,
          eps_decay: float = 8000.0, normalize_rewards: bool = False, reward_clip: float | None = None,
          ckpt_path: str | Path | None = None, ckpt_every: int = 1000, stop_after: int | None = None, log=None,
          seed: int = 0, progress: bool = False) -> dict:
    """Run ``steps`` vectorised env steps (``steps * n_envs`` transitions) acting with :class:`Explorer`
    ``explore`` (uniformly random actions before ``start_steps`` unless ``random_start=False``, which acts with
    the untrained network and only delays learning); returns {steps_done, updates, last_loss, resumed_from,
    stopped, episode_returns}. Rewards go to
    the replay normalised by the running std of returns (``normalize_rewards``, Procgen) and/or clipped to
    +-``reward_clip`` (Crafter); returns are logged raw. A checkpoint (agent, optimiser, replay, RNGs, counters;
    an env with ``rng``, ``s``, ``t`` too) is written every ``ckpt_every`` steps; a rerun resumes from it. An env
    that cannot be restored (Procgen, Crafter) restarts its episodes on resume and the replay marks the gap."""
    rng = np.random.default_rng(seed)
    explorer = Explorer(explore, env.n, env.n_actions, agent.net.heads.heads, phi, lam, alpha, tee, eps_decay,
                        start_steps, seed + 1)
    norm = ReturnNormalizer(env.n) if normalize_rewards else None
    start, last_loss = 0, float("nan")
    ckpt_path = Path(ckpt_path) if ckpt_path else None
    obs = env.reset()
    ep_ret, episode_returns = np.zeros(env.n), []
    restorable = all(hasattr(env, a) for a in ("rng", "s", "t"))
    if ckpt_path is not None and ckpt_path.exists():
        st = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        agent.net.load_state_dict(st["net"])
        agent.target.load_state_dict(st["target"])
        agent.opt.load_state_dict(st["opt"])
        agent.updates, start = st["updates"], st["step"]
        if st["replay"] is not None:  # the final checkpoint of a finished run keeps no replay
            replay.load_state_dict(st["replay"])
        agent.gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        rng.bit_generator.state = st["rng"]
        explorer.load(st["explorer"])
        episode_returns = st["episode_returns"]
        if hasattr(env, "achievements"):
            env.achievements = st["achievements"]
        if norm is not None:
            norm.load_state_dict(st["norm"])
        if restorable:
            env.rng.bit_generator.state, env.s, env.t = st["env_rng"], st["env_s"], st["env_t"]
            obs, ep_ret = st["obs"], st["ep_ret"]
        else:
            replay.mark_boundary()
            explorer.episode_end(np.ones(env.n, dtype=bool))
            if norm is not None:
                norm.ret[:] = 0.0  # the restarted episodes' discounted returns start from zero
    resumed_from = start
    for step in tqdm(range(start, steps), desc="train", unit="step", disable=not progress, initial=start,
                     total=steps):
        if step < start_steps and random_start:
            act = rng.integers(env.n_actions, size=env.n)
        else:
            act = explorer(agent, obs, step)
        nxt, rew, done = env.step(act)
        ep_ret += rew
        episode_returns += ep_ret[done].tolist()
        ep_ret[done] = 0.0
        explorer.episode_end(done)
        stored = norm(rew, done) if norm is not None else rew
        if reward_clip is not None:
            stored = np.clip(stored, -reward_clip, reward_clip)
        replay.add(torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(stored), torch.as_tensor(done))
        obs = nxt
        if step >= start_steps and step % train_freq == 0 and len(replay) > 0:
            last_loss = agent.update(replay)["loss"]
            if log is not None and agent.updates % 100 == 0:
                recent = episode_returns[-100:]
                log({"train/loss": last_loss, "train/updates": agent.updates,
                     "train/episode_return": float(np.mean(recent)) if recent else float("nan")}, step=step)
        done_steps = step + 1
        if ckpt_path is not None and (done_steps % ckpt_every == 0 or done_steps == steps):
            st = {"net": agent.net.state_dict(), "target": agent.target.state_dict(), "opt": agent.opt.state_dict(),
                  "updates": agent.updates, "step": done_steps, "gen": agent.gen.get_state(),
                  "rng": rng.bit_generator.state, "explorer": explorer.state(),
                  "torch_rng": torch.get_rng_state(),  # NoisyNet's noise
                  # the replay (up to ~12 GB at Procgen scale) only while the run has steps left to resume
                  "replay": replay.state_dict() if done_steps < steps else None,
                  "episode_returns": episode_returns, "norm": norm.state_dict() if norm is not None else None}
            if hasattr(env, "achievements"):  # Crafter: the score's episodes survive a restart
                st["achievements"] = env.achievements
            if restorable:
                st.update(env_rng=env.rng.bit_generator.state, env_s=env.s.copy(), env_t=env.t.copy(), obs=obs,
                          ep_ret=ep_ret.copy())
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save(st, tmp)
            tmp.replace(ckpt_path)  # atomic: a killed job keeps its last good checkpoint (replay included)
        if stop_after is not None and done_steps >= stop_after and done_steps < steps:
            return {"steps_done": done_steps, "updates": agent.updates, "last_loss": last_loss,
                    "resumed_from": resumed_from, "stopped": True, "episode_returns": episode_returns}
    return {"steps_done": steps, "updates": agent.updates, "last_loss": last_loss, "resumed_from": resumed_from,
            "stopped": False, "episode_returns": episode_returns}
