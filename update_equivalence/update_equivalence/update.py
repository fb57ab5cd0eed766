"""The one update every planner of the paper applies at a decision point (Sec. 3-4; spec 2.2-2.3).

Magnetic mirror descent with step size eta, temperature alpha and magnet rho over the simplex of legal actions:

    pi'(a) = argmax_p <q, p> - alpha KL(p, rho) - (1/eta) KL(p, pi)
           ∝ [ pi(a) rho(a)^(alpha eta) exp(eta q(a)) ]^(1 / (1 + alpha eta))

alpha = 0 is mirror descent (MDS, common-payoff games), eta -> inf with alpha = 0 is the greedy (SPARTA-style)
policy-iteration step, eta -> 0 keeps pi. Vectorised over leading axes; computed in log space.
"""
from __future__ import annotations

import numpy as np


def _check(pi: np.ndarray, legal: np.ndarray, name: str = "pi") -> None:
    if np.any(pi < -1e-12):
        raise ValueError(f"{name} has negative probabilities (min {pi.min():.3g})")
    if np.any(pi[~legal] > 1e-12):
        raise ValueError(f"{name} puts mass on illegal actions")
    s = pi.sum(-1)
    if not np.allclose(s, 1.0, atol=1e-6):
        bad = np.abs(s - 1).max()
        raise ValueError(f"{name} is not normalised over the legal actions (|sum - 1| up to {bad:.3g})")


def update(pi, q, eta: float, alpha: float = 0.0, magnet=None, legal=None,
           tie_break: str = "proportional") -> np.ndarray:
    """The (magnetic) mirror-descent update of ``pi`` ``[..., A]`` with action values ``q`` ``[..., A]``.

    ``legal`` (bool ``[..., A]``, default: every action) masks illegal actions; ``magnet`` defaults to uniform over
    the legal actions. Actions with ``pi(a) = 0`` keep probability 0 (the update is multiplicative).
    ``eta=np.inf`` is the limit of the update: with ``alpha = 0`` the greedy step, pi restricted to the maximisers of
    q (``tie_break="proportional"``, the exact limit; ``"uniform"`` splits ties evenly, ``"first"`` takes the
    lowest action index, np.argmax's convention); with ``alpha > 0`` the regularised best response
    ∝ rho exp(q / alpha) on pi's support."""
    pi, q = np.asarray(pi, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if pi.shape != q.shape:
        raise ValueError(f"pi {pi.shape} and q {q.shape} must have the same shape")
    legal = np.ones(pi.shape, dtype=bool) if legal is None else np.asarray(legal, dtype=bool)
    if not (eta >= 0 and alpha >= 0) or np.isnan(alpha) or not np.isfinite(alpha):
        raise ValueError(f"eta={eta} and alpha={alpha} must be >= 0 (alpha finite, neither NaN)")
    if not np.all(np.isfinite(q[legal])):
        raise ValueError("q has non-finite values at legal actions")
    if tie_break not in ("proportional", "uniform", "first"):
        raise ValueError(f"tie_break={tie_break!r}: proportional, uniform or first")
    _check(pi, legal)
    if magnet is None:
        magnet = legal / legal.sum(-1, keepdims=True)
    else:
        magnet = np.broadcast_to(np.asarray(magnet, dtype=np.float64), pi.shape)
        _check(magnet, legal, "magnet")
    support = legal & (pi > 0)
    if np.isinf(eta) and alpha > 0:  # [pi rho^(alpha eta) e^(eta q)]^(1/(1+alpha eta)) -> rho e^(q/alpha) on supp(pi)
        with np.errstate(divide="ignore"):
            logits = np.where(support, np.log(magnet) + q / alpha, -np.inf)
        logits -= logits.max(-1, keepdims=True)
        out = np.exp(logits)
        return out / out.sum(-1, keepdims=True)
    if np.isinf(eta):
        qm = np.where(support, q, -np.inf)
        best = np.isclose(qm, qm.max(-1, keepdims=True), rtol=0, atol=1e-12) & np.isfinite(qm)
        if tie_break == "first":
            best = best & (np.cumsum(best, -1) == 1)
        w = best * pi if tie_break == "proportional" else best.astype(np.float64)
        return w / w.sum(-1, keepdims=True)
    with np.errstate(divide="ignore"):
        mag = alpha * eta * np.log(magnet) if alpha * eta > 0 else 0.0  # 0 * log(0) would be nan
        logits = (np.log(pi) + mag + eta * q) / (1.0 + alpha * eta)
    logits = np.where(legal, logits, -np.inf)
    logits -= logits.max(-1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(-1, keepdims=True)
