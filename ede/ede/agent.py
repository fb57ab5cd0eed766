"""EDE's agent (spec section 2.2): a time-major replay of vectorised envs with n-step returns computed at sampling,
and the update in which every head k gets its own minibatch and its own target head, while the trunk learns
through one random head per update.
"""
from __future__ import annotations

import copy

import torch

from ede.core import epistemic_uncertainty, mean_q, quantile_huber_loss, ucb_action
from ede.networks import EDENetwork


class Replay:
    """Preallocated ``[T, E]`` arrays (time x env) of observations, actions, rewards and episode ends; each step is
    stored once (the bootstrap observation of step t is the one stored at t + n). ``done[t, e]``: the episode ended
    with the transition taken at t (a vector env then resets, so ``obs[t + 1, e]`` starts a new episode)."""

    def __init__(self, capacity: int, n_envs: int, obs_shape: tuple, obs_dtype=torch.uint8, n_step: int = 3,
                 gamma: float = 0.99):
        self.T, self.E, self.n, self.gamma = capacity, n_envs, n_step, gamma
        self.obs = torch.zeros((capacity, n_envs, *obs_shape), dtype=obs_dtype)
        self.act = torch.zeros((capacity, n_envs), dtype=torch.long)
        self.rew = torch.zeros((capacity, n_envs))
        self.done = torch.zeros((capacity, n_envs), dtype=torch.bool)
        self.ptr, self.size = 0, 0

    def add(self, obs, act, rew, done) -> None:
        """One vectorised step: ``obs [E, ...]`` seen, ``act [E]`` taken, ``rew [E]`` and ``done [E]`` received."""
        self.obs[self.ptr], self.act[self.ptr] = torch.as_tensor(obs), torch.as_tensor(act)
        self.rew[self.ptr], self.done[self.ptr] = torch.as_tensor(rew, dtype=torch.float32), torch.as_tensor(done)
        self.ptr = (self.ptr + 1) % self.T
        self.size = min(self.size + 1, self.T)

    def __len__(self) -> int:
        """Transitions that can be sampled (those with n newer steps written)."""
        return max(0, self.size - self.n) * self.E

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict:
        """A uniform minibatch of n-step transitions: obs, act, n-step return R, next obs (n steps later, or any
        obs when the episode ended inside the window) and the bootstrap discount gamma^n (0 if it ended)."""
        if len(self) == 0:
            raise ValueError(f"replay holds {self.size} steps: at least n_step + 1 = {self.n + 1} are needed")
        age = self.n + torch.randint(self.size - self.n, (batch,), generator=generator)  # steps before the newest
        t = (self.ptr - 1 - age) % self.T
        e = torch.randint(self.E, (batch,), generator=generator)
        ret, alive = torch.zeros(batch), torch.ones(batch)
        for i in range(self.n):  # n (= 3) vectorised steps over the batch
            ti = (t + i) % self.T
            ret += alive * self.gamma ** i * self.rew[ti, e]
            alive = alive * (~self.done[ti, e]).float()
        nxt = (t + self.n) % self.T
        return {"obs": self.obs[t, e], "act": self.act[t, e], "ret": ret, "next_obs": self.obs[nxt, e],
                "discount": alive * self.gamma ** self.n, "t": t, "e": e}


class EDEAgent:
    """QR-DQN ensemble with UCB/Thompson exploration on the epistemic uncertainty. ``update`` samples one minibatch
    per head from ``replay``; head k regresses onto its own target head's greedy action (no double-Q); the trunk
    is trained through one uniformly drawn head (the others see detached features) unless ``train_trunk_all``."""

    def __init__(self, net: EDENetwork, lr: float = 2.5e-4, adam_eps: float = 1.5e-4, batch_size: int = 512,
                 target_update: int = 500, grad_clip: float = 10.0, kappa: float = 1.0, train_trunk_all: bool = False,
                 device=None, generator: torch.Generator | None = None):
        self.device = torch.device(device or "cpu")
        self.net = net.to(self.device)
        self.target = copy.deepcopy(net).to(self.device).requires_grad_(False)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, eps=adam_eps)
        self.batch_size, self.target_update, self.grad_clip, self.kappa = batch_size, target_update, grad_clip, kappa
        self.train_trunk_all, self.updates = train_trunk_all, 0
        self.gen = generator or torch.Generator().manual_seed(0)

    @torch.no_grad()
    def act(self, obs, coef) -> torch.Tensor:
        """UCB actions argmax mu + coef * sigma_epi (``coef`` scalar or one per env: TEE)."""
        return ucb_action(self.net(torch.as_tensor(obs).to(self.device)), torch.as_tensor(coef)).cpu()

    @torch.no_grad()
    def uncertainty(self, obs) -> torch.Tensor:
        """sigma_epi ``[B, A]`` of observations (diagnostics)."""
        return epistemic_uncertainty(self.net(torch.as_tensor(obs).to(self.device))).cpu()

    def loss(self, batches: list[dict], head: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, per-head losses) for one minibatch per head; trunk gradients only through ``head``."""
        m = self.net.heads.heads
        if len(batches) != m:
            raise ValueError(f"{len(batches)} minibatches for {m} heads: each head needs its own")
        obs = torch.stack([b["obs"] for b in batches]).to(self.device)  # [M, B, ...]
        b_sz = obs.shape[1]
        feat = self.net.trunk(obs.flatten(0, 1)).view(m, b_sz, -1)
        if not self.train_trunk_all:
            keep = torch.zeros(m, 1, 1, dtype=torch.bool, device=self.device)
            keep[head] = True
            feat = torch.where(keep, feat, feat.detach())
        theta = self.net.heads(feat)  # [B, M, N, A], head k on its own minibatch
        act = torch.stack([b["act"] for b in batches], 1).to(self.device)  # [B, M]
        cur = theta.gather(3, act[:, :, None, None].expand(-1, -1, theta.shape[2], 1)).squeeze(3)  # [B, M, N]
        with torch.no_grad():
            nxt = torch.stack([b["next_obs"] for b in batches]).to(self.device)
            tfeat = self.target.trunk(nxt.flatten(0, 1)).view(m, b_sz, -1)
            tq = self.target.heads(tfeat)  # [B, M, N, A]
            a_star = tq.mean(2).argmax(-1)  # head k's own greedy action
            tgt = tq.gather(3, a_star[:, :, None, None].expand(-1, -1, tq.shape[2], 1)).squeeze(3)
            ret = torch.stack([b["ret"] for b in batches], 1).to(self.device)
            disc = torch.stack([b["discount"] for b in batches], 1).to(self.device)
            tgt = ret[..., None] + disc[..., None] * tgt  # [B, M, N]
        per_head = torch.stack([quantile_huber_loss(cur[:, k], tgt[:, k], self.kappa) for k in range(m)])
        return per_head.sum(), per_head.detach()

    def update(self, replay: Replay) -> dict:
        """One gradient step: M minibatches, one random head for the trunk, Adam, norm clip; hard target copy
        every ``target_update`` updates. A non-finite loss raises (with the update count) instead of training on."""
        m = self.net.heads.heads
        batches = [replay.sample(self.batch_size, self.gen) for _ in range(m)]
        head = int(torch.randint(m, (1,), generator=self.gen))
        total, per_head = self.loss(batches, head)
        if not torch.isfinite(total):
            raise FloatingPointError(f"EDE loss is {total.item()} at update {self.updates}: lower the learning rate; "
                                     "the last checkpoint is the state before this update")
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.opt.step()
        self.updates += 1
        if self.updates % self.target_update == 0:
            self.target.load_state_dict(self.net.state_dict())
        return {"loss": total.item(), "trunk_head": head, "per_head": per_head.tolist()}

    @torch.no_grad()
    def greedy(self, obs) -> torch.Tensor:
        """Greedy actions on mu (evaluation, before the paper's eps_eval)."""
        return mean_q(self.net(torch.as_tensor(obs).to(self.device))).argmax(-1).cpu()
