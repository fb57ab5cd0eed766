"""EDE's agent (spec section 2.2): a time-major replay of vectorised envs with n-step returns computed at sampling,
and the update in which every head k gets its own minibatch and its own target head, while the trunk learns
through one random head per update.
"""
from __future__ import annotations

import copy

import torch

from ede.core import epistemic_uncertainty, mean_q, quantile_huber_loss, thompson_action, ucb_action
from ede.networks import EDENetwork


class Replay:
    """Preallocated ``[T, E]`` arrays (time x env) of observations, actions, rewards and episode ends; each step is
    stored once (the bootstrap observation of step t is the one stored at t + n). ``done[t, e]``: the episode ended
    with the transition taken at t (a vector env then resets, so ``obs[t + 1, e]`` starts a new episode).

    ``frame_stack=k`` (Crafter: 4 grey frames): the env's observation is ``[k * c, H, W]`` and only its newest
    ``c`` channels are stored; samples rebuild the stack from the k - 1 previous steps, with the frames of an
    earlier episode zeroed (the zero padding a frame stack starts each episode with). ``device``: where the
    arrays live (``cuda`` keeps sampling on the GPU when the replay fits there)."""

    def __init__(self, capacity: int, n_envs: int, obs_shape: tuple, obs_dtype=torch.uint8, n_step: int = 3,
                 gamma: float = 0.99, frame_stack: int = 1, device="cpu"):
        if obs_shape[0] % frame_stack:
            raise ValueError(f"obs_shape {obs_shape}: the first dim must hold frame_stack={frame_stack} frames")
        self.T, self.E, self.n, self.gamma, self.k = capacity, n_envs, n_step, gamma, frame_stack
        self.device = torch.device(device)
        self.c = obs_shape[0] // frame_stack  # channels stored per step
        self.obs = torch.zeros((capacity, n_envs, self.c, *obs_shape[1:]), dtype=obs_dtype, device=self.device)
        self.act = torch.zeros((capacity, n_envs), dtype=torch.long, device=self.device)
        self.rew = torch.zeros((capacity, n_envs), device=self.device)
        self.done = torch.zeros((capacity, n_envs), dtype=torch.bool, device=self.device)
        self.ptr, self.size = 0, 0

    def add(self, obs, act, rew, done) -> None:
        """One vectorised step: ``obs [E, ...]`` seen, ``act [E]`` taken, ``rew [E]`` and ``done [E]`` received."""
        obs = torch.as_tensor(obs)
        self.obs[self.ptr] = obs[:, obs.shape[1] - self.c:].to(self.device)
        self.act[self.ptr] = torch.as_tensor(act).to(self.device)
        self.rew[self.ptr] = torch.as_tensor(rew, dtype=torch.float32).to(self.device)
        self.done[self.ptr] = torch.as_tensor(done).to(self.device)
        self.ptr = (self.ptr + 1) % self.T
        self.size = min(self.size + 1, self.T)

    def mark_boundary(self) -> None:
        """End every env's episode at the newest step (a resumed run whose envs cannot be restored, e.g.
        Procgen, restarts them): no n-step window or frame stack reaches across the gap."""
        if self.size:
            self.done[(self.ptr - 1) % self.T] = True

    def __len__(self) -> int:
        """Transitions that can be sampled (those with n newer steps written)."""
        return max(0, self.size - self.n - (self.k - 1 if self.size == self.T else 0)) * self.E

    def _stack(self, t, e):
        """Observations at steps ``t`` of envs ``e``, frame stacks rebuilt: ``[B, k * c, ...]``."""
        if self.k == 1:
            return self.obs[t, e]
        j = torch.arange(self.k - 1, -1, -1, device=t.device)  # frame i of the stack is step t - j[i]
        frames = self.obs[(t[:, None] - j) % self.T, e[:, None]]  # [B, k, c, ...]
        # the frame at t - j belongs to this episode iff no episode ended at steps t - j .. t - 1
        ended = self.done[(t[:, None] - torch.arange(1, self.k, device=t.device)) % self.T, e[:, None]]  # [B, k-1]
        stale = ended.cummax(dim=1).values.flip(1)  # [B, k-1]: frames t-(k-1) .. t-1
        keep = torch.cat([~stale, torch.ones_like(stale[:, :1])], 1)
        if self.size < self.T:  # before the ring fills, steps before slot 0 are the first episode's zero padding
            keep &= (t[:, None] - j) >= 0
        frames = frames * keep.view(*keep.shape, *([1] * (frames.dim() - 2))).to(frames.dtype)
        return frames.flatten(1, 2)

    def sample(self, batch: int, generator: torch.Generator | None = None) -> dict:
        """A uniform minibatch of n-step transitions: obs, act, n-step return R, next obs (n steps later, or any
        obs when the episode ended inside the window) and the bootstrap discount gamma^n (0 if it ended)."""
        if len(self) == 0:
            raise ValueError(f"replay holds {self.size} steps: at least n_step + 1 = {self.n + 1} are needed")
        span = len(self) // self.E  # a full ring keeps k - 1 steps of frame history behind the oldest sample
        age = self.n + torch.randint(span, (batch,), generator=generator)  # steps before the newest
        t = ((self.ptr - 1 - age) % self.T).to(self.device)
        e = torch.randint(self.E, (batch,), generator=generator).to(self.device)
        ret = torch.zeros(batch, device=self.device)
        alive = torch.ones(batch, device=self.device)
        for i in range(self.n):  # n (= 3) vectorised steps over the batch
            ti = (t + i) % self.T
            ret += alive * self.gamma ** i * self.rew[ti, e]
            alive = alive * (~self.done[ti, e]).float()
        nxt = (t + self.n) % self.T
        return {"obs": self._stack(t, e), "act": self.act[t, e], "ret": ret, "next_obs": self._stack(nxt, e),
                "discount": alive * self.gamma ** self.n, "t": t, "e": e}

    def state_dict(self) -> dict:
        """The filled part of the arrays (the whole ring once full) for a checkpoint, on the CPU."""
        n = self.size
        return {"obs": self.obs[:n].cpu(), "act": self.act[:n].cpu(), "rew": self.rew[:n].cpu(),
                "done": self.done[:n].cpu(), "ptr": self.ptr, "size": self.size}

    def load_state_dict(self, st: dict) -> None:
        """Restore :meth:`state_dict` (same capacity and env count)."""
        n = st["size"]
        for key in ("obs", "act", "rew", "done"):
            getattr(self, key)[:n] = st[key].to(self.device)
        self.ptr, self.size = st["ptr"], st["size"]


class EDEAgent:
    """QR-DQN ensemble with UCB/Thompson exploration on the epistemic uncertainty. ``update`` samples one minibatch
    per head from ``replay``; head k regresses onto its own target head's greedy action (no double-Q); the trunk
    is trained through one uniformly drawn head (the others see detached features) unless ``train_trunk_all``.

    Ablation switches (the paper's Fig. 4): ``loss="huber"`` with one quantile per head is DQN (an ensemble of
    DQN heads when M > 1: DQN+UCB, bootstrapped DQN); ``target="ensemble"`` is UA-DQN (every head regresses onto
    the ensemble-mean target quantiles at the ensemble's greedy action). ``amp="bf16"`` runs the network under
    bfloat16 autocast on CUDA (losses in float32)."""

    def __init__(self, net: EDENetwork, lr: float = 2.5e-4, adam_eps: float = 1.5e-4, batch_size: int = 512,
                 target_update: int = 500, grad_clip: float = 10.0, kappa: float = 1.0, train_trunk_all: bool = False,
                 device=None, generator: torch.Generator | None = None, loss: str = "quantile",
                 target: str = "own", amp: str | None = None):
        if loss not in ("quantile", "huber"):
            raise ValueError(f"loss={loss!r}: quantile (QR-DQN, EDE) or huber (DQN)")
        if target not in ("own", "ensemble"):
            raise ValueError(f"target={target!r}: own (each head its own target head) or ensemble (UA-DQN)")
        if loss == "huber" and net.heads.quantiles != 1:
            raise ValueError(f"loss=huber (DQN) needs quantiles=1, got {net.heads.quantiles}")
        self.device = torch.device(device or "cpu")
        self.net = net.to(self.device)
        self.target = copy.deepcopy(net).to(self.device).requires_grad_(False)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, eps=adam_eps)
        self.batch_size, self.target_update, self.grad_clip, self.kappa = batch_size, target_update, grad_clip, kappa
        self.train_trunk_all, self.updates, self.loss_kind, self.target_kind = train_trunk_all, 0, loss, target
        self.amp = torch.bfloat16 if (amp == "bf16" and self.device.type == "cuda") else None
        self.gen = generator or torch.Generator().manual_seed(0)

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp, enabled=self.amp is not None)

    def _forward(self, net, obs):
        with self._autocast():
            return net(torch.as_tensor(obs).to(self.device)).float()

    @torch.no_grad()
    def act(self, obs, coef) -> torch.Tensor:
        """UCB actions argmax mu + coef * sigma_epi (``coef`` scalar or one per env: TEE)."""
        return ucb_action(self._forward(self.net, obs), torch.as_tensor(coef)).cpu()

    @torch.no_grad()
    def thompson(self, obs, coef: float) -> torch.Tensor:
        """Thompson actions argmax mu + coef * xi * sigma_epi (Crafter)."""
        return thompson_action(self._forward(self.net, obs), coef, self.gen).cpu()

    @torch.no_grad()
    def quantiles(self, obs) -> torch.Tensor:
        """theta ``[B, M, N, A]`` of observations (acting with one head: bootstrapped DQN)."""
        return self._forward(self.net, obs).cpu()

    @torch.no_grad()
    def uncertainty(self, obs) -> torch.Tensor:
        """sigma_epi ``[B, A]`` of observations (diagnostics)."""
        return epistemic_uncertainty(self._forward(self.net, obs)).cpu()

    def loss(self, batches, head: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed loss, per-head losses) for one minibatch per head (a list of M sample dicts, or one dict whose
        tensors lead with ``[M, B]``); trunk gradients only through ``head``."""
        m = self.net.heads.heads
        if isinstance(batches, (list, tuple)):
            if len(batches) != m:
                raise ValueError(f"{len(batches)} minibatches for {m} heads: each head needs its own")
            batches = {k: torch.stack([b[k] for b in batches]) for k in ("obs", "act", "ret", "next_obs", "discount")}
        obs = batches["obs"].to(self.device)  # [M, B, ...]
        b_sz = obs.shape[1]
        with self._autocast():
            if self.train_trunk_all:
                feat = self.net.trunk(obs.flatten(0, 1)).view(m, b_sz, -1)
            else:  # the other heads' features carry no trunk gradient: compute them without autograd
                with torch.no_grad():
                    rest = self.net.trunk(obs.flatten(0, 1)[torch.arange(m * b_sz, device=self.device) // b_sz
                                                            != head])
                feat = torch.cat([rest[:head * b_sz], self.net.trunk(obs[head]), rest[head * b_sz:]])
                feat = feat.view(m, b_sz, -1)
            theta = self.net.heads(feat).float()  # [B, M, N, A], head k on its own minibatch
        act = batches["act"].to(self.device).T  # [B, M]
        cur = theta.gather(3, act[:, :, None, None].expand(-1, -1, theta.shape[2], 1)).squeeze(3)  # [B, M, N]
        with torch.no_grad():
            nxt = batches["next_obs"].to(self.device)
            with self._autocast():
                tfeat = self.target.trunk(nxt.flatten(0, 1))  # [M * B, F]
                if self.target_kind == "own":  # head k on its own next observations
                    tq = self.target.heads(tfeat.view(m, b_sz, -1)).float()  # [B, M, N, A]
                else:  # UA-DQN: the ensemble-mean target quantiles on each head's next observations
                    ens = self.target.heads(tfeat).float().mean(1)  # [M * B, N, A]
                    tq = ens.view(m, b_sz, *ens.shape[1:]).transpose(0, 1)  # [B, M, N, A]
            a_star = tq.mean(2).argmax(-1)  # greedy action on the mean (no double-Q)
            tgt = tq.gather(3, a_star[:, :, None, None].expand(-1, -1, tq.shape[2], 1)).squeeze(3)
            ret, disc = batches["ret"].to(self.device).T, batches["discount"].to(self.device).T
            tgt = ret[..., None] + disc[..., None] * tgt  # [B, M, N]
        if self.loss_kind == "quantile":
            per_head = torch.stack([quantile_huber_loss(cur[:, k], tgt[:, k], self.kappa) for k in range(m)])
        else:  # DQN: Huber on the single value per head
            per_head = torch.nn.functional.smooth_l1_loss(cur[..., 0], tgt[..., 0], reduction="none",
                                                          beta=self.kappa).mean(0)
        return per_head.sum(), per_head.detach()

    def update(self, replay: Replay) -> dict:
        """One gradient step: M minibatches, one random head for the trunk, Adam, norm clip; hard target copy
        every ``target_update`` updates. A non-finite loss raises (with the update count) instead of training on."""
        m = self.net.heads.heads
        flat = replay.sample(m * self.batch_size, self.gen)  # M independent uniform minibatches in one draw
        batches = {k: v.view(m, self.batch_size, *v.shape[1:]) for k, v in flat.items()}
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
        return mean_q(self._forward(self.net, obs)).argmax(-1).cpu()
