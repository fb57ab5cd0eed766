"""PPO, the Procgen baseline of the paper's Fig. 3 (our own, standard implementation with the Procgen benchmark's
hyperparameters of Cobbe et al. 2020: IMPALA-CNN 16-32-32 + a 256-unit layer, 256 steps x 64 envs per rollout,
3 epochs of 8 minibatches, clip 0.2, GAE lambda 0.95, gamma 0.999, entropy 0.01, value coefficient 0.5, Adam lr
5e-4, gradient norm 0.5, rewards normalised by the running std of returns discounted at 0.99).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ede.metrics import ReturnNormalizer


class ActorCritic(nn.Module):
    """Shared trunk -> ReLU(Linear(F, hidden)) -> policy logits and value."""

    def __init__(self, trunk: nn.Module, n_actions: int, hidden: int = 256):
        super().__init__()
        self.trunk = trunk
        self.fc = nn.Linear(trunk.out_dim, hidden)
        self.pi = nn.Linear(hidden, n_actions)
        self.v = nn.Linear(hidden, 1)
        nn.init.orthogonal_(self.pi.weight, 0.01)  # near-uniform initial policy, as the baselines' PPO
        nn.init.zeros_(self.pi.bias)

    def forward(self, obs):
        h = F.relu(self.fc(self.trunk(obs)))
        return self.pi(h), self.v(h).squeeze(-1)


def gae(rew, val, done, last_val, gamma: float, lam: float):
    """Generalised advantage estimates ``[T, E]`` and returns; ``done[t]`` ends the episode after step t."""
    adv = torch.zeros_like(rew)
    nxt_adv = torch.zeros_like(last_val)
    nxt_val = last_val
    for t in range(rew.shape[0] - 1, -1, -1):  # over time only; vectorised over envs
        live = 1.0 - done[t].float()
        delta = rew[t] + gamma * nxt_val * live - val[t]
        nxt_adv = delta + gamma * lam * live * nxt_adv
        adv[t], nxt_val = nxt_adv, val[t]
    return adv, adv + val


class PPOAgent:
    """Clipped-objective PPO over rollouts of a vector env (``reset``/``step`` as the value-based loop's)."""

    def __init__(self, net: ActorCritic, lr: float = 5e-4, adam_eps: float = 1e-5, gamma: float = 0.999,
                 lam: float = 0.95, clip: float = 0.2, ent_coef: float = 0.01, vf_coef: float = 0.5,
                 max_grad_norm: float = 0.5, epochs: int = 3, minibatches: int = 8, device=None, seed: int = 0):
        self.device = torch.device(device or "cpu")
        self.net = net.to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, eps=adam_eps)
        self.gamma, self.lam, self.clip, self.ent, self.vf = gamma, lam, clip, ent_coef, vf_coef
        self.max_grad_norm, self.epochs, self.minibatches = max_grad_norm, epochs, minibatches
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def policy(self, obs, greedy: bool = False):
        """(actions, log-probabilities, values) for a batch of observations."""
        logits, v = self.net(torch.as_tensor(obs).to(self.device))
        logits = logits.float().cpu()
        if greedy:
            a = logits.argmax(-1)
        else:
            a = torch.multinomial(torch.softmax(logits, -1), 1, generator=self.gen).squeeze(-1)
        return a, torch.log_softmax(logits, -1).gather(-1, a[:, None]).squeeze(-1), v.float().cpu()

    @property
    def updates(self) -> int:
        """Gradient steps taken so far (Adam's step count: restored with the optimiser on resume)."""
        st = self.opt.state_dict()["state"]
        return int(st[0]["step"]) if st else 0

    def update(self, roll: dict) -> dict:
        """``epochs`` passes of ``minibatches`` minibatches over one rollout (flattened over time and envs)."""
        n = roll["act"].numel()
        flat = {k: v.reshape(n, *v.shape[2:]) for k, v in roll.items()}
        adv = flat["adv"]
        stats = []
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=self.gen)
            for idx in perm.chunk(self.minibatches):
                logits, v = self.net(flat["obs"][idx].to(self.device))
                logp_all = torch.log_softmax(logits.float(), -1)
                logp = logp_all.gather(-1, flat["act"][idx, None].to(self.device)).squeeze(-1)
                a = adv[idx].to(self.device)
                a = (a - a.mean()) / (a.std() + 1e-8)  # per-minibatch advantage normalisation
                ratio = (logp - flat["logp"][idx].to(self.device)).exp()
                pg = -torch.min(ratio * a, ratio.clamp(1 - self.clip, 1 + self.clip) * a).mean()
                ret, v_old = flat["ret"][idx].to(self.device), flat["val"][idx].to(self.device)
                v_clip = v_old + (v.float() - v_old).clamp(-self.clip, self.clip)  # clipped value loss
                vf = 0.5 * torch.max((v.float() - ret) ** 2, (v_clip - ret) ** 2).mean()
                ent = -(logp_all.exp() * logp_all).sum(-1).mean()
                loss = pg + self.vf * vf - self.ent * ent
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"PPO loss is {loss.item()}: lower the learning rate")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.net.parameters(), self.max_grad_norm)
                self.opt.step()
                stats.append([loss.item(), pg.item(), vf.item(), ent.item()])
        return dict(zip(("loss", "policy_loss", "value_loss", "entropy"), np.mean(stats, 0).tolist()))


def train_ppo(agent: PPOAgent, env, steps: int, n_steps: int = 256, normalize_rewards: bool = True,
              ckpt_path: str | Path | None = None, stop_after: int | None = None, log=None,
              progress: bool = False) -> dict:
    """Train for ``steps`` vector env steps in rollouts of ``n_steps``; a checkpoint after each rollout (network,
    optimiser, generator, normaliser, counters; envs restart their episodes on resume)."""
    # VecNormalize(ob=False) with its default gamma 0.99, as the Procgen PPO code wraps its envs (PPO's own is 0.999)
    norm = ReturnNormalizer(env.n, 0.99) if normalize_rewards else None
    ckpt_path = Path(ckpt_path) if ckpt_path else None
    start, episode_returns, last = 0, [], {"loss": float("nan")}
    if ckpt_path is not None and ckpt_path.exists():
        st = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        agent.net.load_state_dict(st["net"])
        agent.opt.load_state_dict(st["opt"])
        agent.gen.set_state(st["gen"])
        start, episode_returns = st["step"], st["episode_returns"]
        if norm is not None:
            norm.load_state_dict(st["norm"])
            norm.ret[:] = 0.0  # the envs restart their episodes
    resumed_from, step = start, start
    obs, ep_ret = env.reset(), np.zeros(env.n)
    bar = tqdm(total=steps, initial=start, desc="ppo", unit="step", disable=not progress)
    while step < steps:
        t_len = min(n_steps, steps - step)
        o_buf = torch.zeros((t_len, env.n, *env.obs_shape), dtype=torch.as_tensor(obs).dtype)
        a_buf, lp_buf, v_buf = (torch.zeros(t_len, env.n, dtype=torch.long), torch.zeros(t_len, env.n),
                                torch.zeros(t_len, env.n))
        r_buf, d_buf = torch.zeros(t_len, env.n), torch.zeros(t_len, env.n, dtype=torch.bool)
        for t in range(t_len):
            a, lp, v = agent.policy(obs)
            nxt, rew, done = env.step(a.numpy())
            ep_ret += rew
            episode_returns += ep_ret[done].tolist()
            ep_ret[done] = 0.0
            o_buf[t], a_buf[t], lp_buf[t], v_buf[t] = torch.as_tensor(obs), a, lp, v
            r_buf[t] = torch.as_tensor(norm(rew, done) if norm is not None else rew, dtype=torch.float32)
            d_buf[t] = torch.as_tensor(done)
            obs = nxt
        last_val = agent.policy(obs)[2]
        adv, ret = gae(r_buf, v_buf, d_buf, last_val, agent.gamma, agent.lam)
        last = agent.update({"obs": o_buf, "act": a_buf, "logp": lp_buf, "val": v_buf, "adv": adv, "ret": ret})
        step += t_len
        bar.update(t_len)
        if log is not None:
            recent = episode_returns[-100:]
            log({"train/loss": last["loss"], "train/entropy": last["entropy"],
                 "train/episode_return": float(np.mean(recent)) if recent else float("nan")}, step=step)
        if ckpt_path is not None:
            st = {"net": agent.net.state_dict(), "opt": agent.opt.state_dict(), "gen": agent.gen.get_state(),
                  "step": step, "episode_returns": episode_returns,
                  "norm": norm.state_dict() if norm is not None else None}
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save(st, tmp)
            tmp.replace(ckpt_path)
        if stop_after is not None and stop_after <= step < steps:
            bar.close()
            return {"steps_done": step, "last_loss": last["loss"], "resumed_from": resumed_from, "stopped": True,
                    "episode_returns": episode_returns}
    bar.close()
    return {"steps_done": step, "last_loss": last["loss"], "resumed_from": resumed_from, "stopped": False,
            "episode_returns": episode_returns}


def evaluate_ppo(agent: PPOAgent, env, episodes: int, seed: int = 0) -> np.ndarray:
    """Undiscounted returns of ``episodes`` finished episodes, actions sampled from the policy (as Procgen's PPO
    is evaluated)."""
    agent.gen.manual_seed(seed)
    obs, ret, out = env.reset(), np.zeros(env.n), []
    while len(out) < episodes:
        obs, r, done = env.step(agent.policy(obs)[0].numpy())
        ret += r
        out += ret[done].tolist()
        ret[done] = 0.0
    return np.array(out[:episodes])
