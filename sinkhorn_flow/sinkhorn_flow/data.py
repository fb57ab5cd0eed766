"""Flow data: a synthetic generator of evolving communities with known flows, and the common
``Transitions`` container that every model and baseline consumes.

A transition t -> t+1 between K_t and K_{t+1} communities holds the masses a (at t) and b (at t+1), the
observed flow F (F_ij = share of all individuals in i at t and j at t+1; F 1 = a, F^T 1 = b), pair features
phi_ij known at prediction time, a hand-made cost C_ij for the fixed-cost OT baselines, and the previous
transition's row-normalised flow (for persistence and the sequence model). Variable numbers of
communities are padded to K_max with zero mass and ``mask = False``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Transitions:
    """A batch of T transitions padded to K x L communities (tensors, float64 unless converted)."""

    a: torch.Tensor            # (T, K) masses at t
    b: torch.Tensor            # (T, L) masses at t+1
    flow: torch.Tensor         # (T, K, L) observed flow F
    features: torch.Tensor     # (T, K, L, F) pair features known at prediction time
    cost: torch.Tensor         # (T, K, L) hand-made cost for the fixed-cost OT baselines
    prev_trans: torch.Tensor   # (T, H, K, L) previous H transitions' row-normalised flows (0 = unknown)
    mask: torch.Tensor         # (T, K, L) bool: pair allowed (zero-mass communities are masked anyway)
    feature_names: list[str] = field(default_factory=list)
    times: np.ndarray | None = None  # (T,) index of t in the original sequence

    def __len__(self) -> int:
        return self.a.shape[0]

    def __getitem__(self, idx) -> Transitions:
        """Select transitions (a slice or index array) along the time axis."""
        times = None if self.times is None else self.times[idx]
        return Transitions(self.a[idx], self.b[idx], self.flow[idx], self.features[idx], self.cost[idx],
                           self.prev_trans[idx], self.mask[idx], list(self.feature_names), times)

    def to(self, device=None, dtype=None) -> Transitions:
        """Move/convert every float tensor (the mask stays bool)."""
        conv = lambda x: x.to(device=device, dtype=dtype)  # noqa: E731
        return Transitions(conv(self.a), conv(self.b), conv(self.flow), conv(self.features), conv(self.cost),
                           conv(self.prev_trans), self.mask.to(device=device), list(self.feature_names),
                           self.times)

    def select_features(self, names: list[str]) -> torch.Tensor:
        """The feature columns called ``names`` (a clear error names an unknown one)."""
        missing = [n for n in names if n not in self.feature_names]
        if missing:
            raise KeyError(f"unknown pair feature(s) {missing}; this data set has {self.feature_names}")
        return self.features[..., [self.feature_names.index(n) for n in names]]


def flows_from_memberships(m: np.ndarray, k: int) -> np.ndarray:
    """Flows between consecutive steps from memberships ``m`` (T, N) in 0..k-1, -1 = not present.

    F_t[i, j] = (# individuals in i at t and j at t+1) / (# present at both). Returns (T-1, k, k).
    Vectorised with one bincount over (t, i, j) triples.
    """
    m = np.asarray(m)
    t_len = m.shape[0]
    src, dst = m[:-1], m[1:]
    both = (src >= 0) & (dst >= 0)
    tt = np.broadcast_to(np.arange(t_len - 1)[:, None], src.shape)
    idx = (tt[both] * k + src[both]) * k + dst[both]
    counts = np.bincount(idx, minlength=(t_len - 1) * k * k).reshape(t_len - 1, k, k).astype(np.float64)
    n = counts.sum((1, 2), keepdims=True)
    return counts / np.maximum(n, 1)


def row_normalise(flow: np.ndarray) -> np.ndarray:
    """Transition probabilities F_ij / a_i (rows with no mass stay 0)."""
    a = flow.sum(-1, keepdims=True)
    return np.divide(flow, a, out=np.zeros_like(flow), where=a > 0)


def _history(flows: np.ndarray, history: int) -> np.ndarray:
    """(T, H, K, L): for transition t, the row-normalised flows of t-1, ..., t-H (zeros before the start)."""
    trans = row_normalise(flows)
    t_len = flows.shape[0]
    out = np.zeros((t_len, history) + flows.shape[1:])
    for h in range(1, history + 1):  # loop over H lags only, each a vectorised slice
        out[h:, h - 1] = trans[:-h] if h < t_len else 0
    return out


def make_transitions(flows: np.ndarray, features: np.ndarray, feature_names: list[str], cost: np.ndarray,
                     history: int = 1, mask: np.ndarray | None = None) -> Transitions:
    """Pack per-transition arrays (T, K, L[, F]) into ``Transitions`` (float64 tensors)."""
    flows = np.asarray(flows, dtype=np.float64)
    a, b = flows.sum(-1), flows.sum(-2)
    if mask is None:
        # Zero-mass (padding, empty, unborn) communities are masked by the layer itself; this mask is for
        # pairs a data set forbids outright.
        mask = np.ones(flows.shape, dtype=bool)
    t = lambda x: torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float64)  # noqa: E731
    return Transitions(t(a), t(b), t(flows), t(features), t(cost), t(_history(flows, max(history, 1))),
                       torch.as_tensor(mask, dtype=torch.bool), list(feature_names),
                       np.arange(flows.shape[0]))


def pair_features(ca: np.ndarray, cb: np.ndarray, a: np.ndarray, b: np.ndarray,
                  floor: float = 1e-6) -> tuple[np.ndarray, list[str]]:
    """Pair features of the pilot (spec section 5): [d^2, d, 1(i=j), log a_i, log b_j], d = |c_i(t) - c_j(t+1)|.

    ca: (T, K, D) centres at t, cb: (T, L, D) centres at t+1, a: (T, K), b: (T, L).
    """
    d2 = ((ca[:, :, None, :] - cb[:, None, :, :]) ** 2).sum(-1)
    k, l = d2.shape[1:]
    eye = np.broadcast_to(np.eye(k, l), d2.shape)
    la = np.broadcast_to(np.log(np.maximum(a, floor))[:, :, None], d2.shape)
    lb = np.broadcast_to(np.log(np.maximum(b, floor))[:, None, :], d2.shape)
    return np.stack([d2, np.sqrt(d2), eye, la, lb], -1), ["d2", "d", "same", "log_a", "log_b"]


def drifting_blobs(n_agents: int = 600, n_communities: int = 8, n_steps: int = 160, sigma_drift: float = 0.15,
                   sigma_agent: float = 0.25, pull: float = 0.3, temperature: float = 0.3,
                   centre_scale: float = 1.5, agent_scale: float = 0.5, history: int = 1,
                   seed: int = 0) -> tuple[Transitions, dict]:
    """Evolving communities with known flows (spec section 5; our own generator, not the paper's).

    K centres random-walk (sigma_drift per step); N agents random-walk (sigma_agent) and are pulled towards
    their current community's centre with weight ``pull``. Membership is a Gumbel-max choice,
    m_i(t) = argmax_k(-|x_i - c_k(t)|^2 / temperature + Gumbel). The true flow F_t counts m(t) -> m(t+1).
    Observed at prediction time: a_t, a_{t+1} and the centres c(t), c(t+1), not the memberships at t+1.

    Returns (transitions (n_steps - 1 of them), raw dict with centres (T, K, 2), positions (T, N, 2),
    memberships (T, N)).
    """
    rng = np.random.default_rng(seed)
    k, n = n_communities, n_agents
    centres = np.empty((n_steps, k, 2))
    pos = np.empty((n_steps, n, 2))
    member = np.empty((n_steps, n), dtype=np.int64)

    def assign(x, c):
        logits = -((x[:, None, :] - c[None, :, :]) ** 2).sum(-1) / temperature
        return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)

    centres[0] = rng.normal(0.0, centre_scale, (k, 2))
    start = rng.integers(0, k, n)
    pos[0] = centres[0, start] + rng.normal(0.0, agent_scale, (n, 2))
    member[0] = assign(pos[0], centres[0])
    for t in range(1, n_steps):  # a time recursion: each step needs the previous one
        centres[t] = centres[t - 1] + rng.normal(0.0, sigma_drift, (k, 2))
        home = centres[t, member[t - 1]]
        pos[t] = pos[t - 1] + pull * (home - pos[t - 1]) + rng.normal(0.0, sigma_agent, (n, 2))
        member[t] = assign(pos[t], centres[t])
    flows = flows_from_memberships(member, k)
    a, b = flows.sum(-1), flows.sum(-2)
    feats, names = pair_features(centres[:-1], centres[1:], a, b)
    cost = feats[..., 0]  # squared centroid distance: the natural hand cost
    trans = make_transitions(flows, feats, names, cost, history=history)
    return trans, {"centres": centres, "positions": pos, "memberships": member}
