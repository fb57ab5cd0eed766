"""Rademacher complexity of explanation-constrained classes, made executable.

Linear class with an angle constraint: H = {x -> <w, x> : ||w|| <= B, angle(w, w') <= alpha}. For a draw of signs
sigma, z = (1/n) sum_i sigma_i x_i and theta = angle(z, w'), the supremum over H of <w, z> is in closed form:
B ||z|| max(0, cos(max(0, theta - alpha))) (the best w is the direction in the cone closest to z). The empirical
complexity is its mean over sigma draws (Monte Carlo over sigma only); the unconstrained class gives B E||z||, and
in high dimension theta ~ pi/2, so the constrained one is about sin(alpha) times it.

Two-layer ReLU nets with a gradient constraint: no closed form here (the paper's theorem could not be read); Monte
Carlo over sampled networks: perturbations of a teacher at a range of scales, each network's constraint value
phi_U = mean ||grad h - grad f*||^2 on unlabeled points, and for each alpha the supremum over the sampled networks
with phi_U <= alpha. A supremum over samples is a lower bound of the class's.
"""
from __future__ import annotations

import numpy as np

from epac.data import relu_teacher_gradient


def cone_sup(z: np.ndarray, w_prime: np.ndarray, alpha: float, B: float = 1.0) -> np.ndarray:
    """sup over the cone-and-ball class of <w, z>, for each row of ``z`` ``[S, d]``."""
    if not 0.0 <= alpha <= np.pi:
        raise ValueError(f"alpha={alpha} must lie in [0, pi] (radians)")
    zn = np.linalg.norm(z, axis=-1)
    cos = z @ w_prime / (np.maximum(zn, 1e-300) * np.linalg.norm(w_prime))
    theta = np.arccos(np.clip(cos, -1.0, 1.0))
    return B * zn * np.maximum(0.0, np.cos(np.maximum(0.0, theta - alpha)))


def cone_sup_bruteforce(z: np.ndarray, w_prime: np.ndarray, alpha: float, B: float = 1.0, n_dirs: int = 200_000,
                        seed: int = 0) -> np.ndarray:
    """The same supremum by search over ``n_dirs`` random directions of the cone (angle t ~ U[0, alpha] from w',
    a uniform direction orthogonal to it) and the origin: an independent check of :func:`cone_sup`."""
    rng = np.random.default_rng([seed, 7919])  # a stream apart from the one that drew w'
    d = len(w_prime)
    a = w_prime / np.linalg.norm(w_prime)
    v = rng.standard_normal((n_dirs, d))
    v -= (v @ a)[:, None] * a
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    v = v[norm[:, 0] > 1e-9] / norm[norm[:, 0] > 1e-9]  # drop draws (nearly) parallel to w'
    t = rng.uniform(0.0, alpha, len(v))
    t[0] = alpha  # include the boundary and the axis exactly
    t[1] = 0.0
    w = np.cos(t)[:, None] * a + np.sin(t)[:, None] * v
    return B * np.maximum(0.0, (z @ w.T).max(axis=1))


def _sign_means(X: np.ndarray, draws: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sigma = rng.choice([-1.0, 1.0], size=(draws, len(X)))
    return sigma @ X / len(X)


def rademacher_linear_cone(X: np.ndarray, w_prime: np.ndarray, alpha: float, B: float = 1.0, draws: int = 4000,
                           seed: int = 0) -> float:
    """Empirical Rademacher complexity of the angle-constrained linear class on the points ``X`` ``[n, d]``."""
    return float(cone_sup(_sign_means(X, draws, seed), w_prime, alpha, B).mean())


def rademacher_linear(X: np.ndarray, B: float = 1.0, draws: int = 4000, seed: int = 0) -> float:
    """The unconstrained ball class: B E||(1/n) sum sigma_i x_i||."""
    return float(B * np.linalg.norm(_sign_means(X, draws, seed), axis=1).mean())


def rademacher_twolayer_mc(X: np.ndarray, X_u: np.ndarray, u: np.ndarray, v: np.ndarray, alphas, n_nets: int = 4000,
                           scales=(0.0, 2.0), draws: int = 2000, seed: int = 0) -> dict:
    """Monte Carlo complexity of two-layer ReLU nets under the gradient constraint phi_U <= alpha (module doc):
    networks sum_j w_j relu(u_j^T x) with u_j = normalised(u*_j + s e_j), w_j = v*_j + s e'_j, s ~ U(scales),
    e ~ N(0, I); returns {alpha: estimate} and the unconstrained (all sampled nets) value under key ``inf``."""
    rng = np.random.default_rng(seed)
    m, d = u.shape
    s = rng.uniform(*scales, size=(n_nets, 1, 1))
    U = u[None] + s * rng.standard_normal((n_nets, m, d))
    U /= np.linalg.norm(U, axis=-1, keepdims=True)
    W = v[None] + s[:, :, 0] * rng.standard_normal((n_nets, m))
    H = np.einsum("km,knm->kn", W, np.maximum(np.einsum("kmd,nd->knm", U, X), 0.0))  # [nets, n]
    g_true = relu_teacher_gradient(X_u, u, v)
    act = (np.einsum("kmd,nd->knm", U, X_u) > 0).astype(float)  # [nets, k, m]
    grads = np.einsum("knm,km,kmd->knd", act, W, U)
    phi = ((grads - g_true[None]) ** 2).sum(-1).mean(-1)  # [nets]
    corr = _sign_means(H.T, draws, seed + 1)  # [draws, nets]: (1/n) sum_i sigma_i h(x_i)
    out = {"inf": float(corr.max(1).mean())}
    for a in alphas:
        keep = phi <= a
        out[float(a)] = float(corr[:, keep].max(1).mean()) if keep.any() else float("nan")
    out["phi_quantiles"] = np.quantile(phi, [0.0, 0.5, 1.0]).tolist()
    return out
