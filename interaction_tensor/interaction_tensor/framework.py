"""The dominant/rare feature framework (paper Section 5; the exact learning rule could not be read here, so this
is the spec's documented reconstruction [recon], marked as such in the README):

- t_d dominant and t_r rare features; a point is dominant with probability p_d (rare otherwise) and carries n_d
  dominant (n_r rare) features drawn without replacement from its pool;
- a model learns a random subset of features: the default rule ``uniform_rule`` draws k_d of the t_d dominant and
  k_r of the t_r rare features uniformly; the rule is a plug-in of the Monte-Carlo simulator;
- a model is right on a point when it learned one of the point's features, otherwise it guesses uniformly among
  the K classes (K = 2 is the paper's binary case).

Closed forms for the uniform rule: q = C(t - n, k) / C(t, k) is the chance a model knows none of a point's
features (hypergeometric), and with independent models

    E[acc] = sum_type p_type (1 - q + q / K)
    E[agr] = sum_type p_type ((1 - q)^2 + 2 q (1 - q) / K + q^2 / K)
    E[dis] - E[err] = (1 - 1/K) sum_type p_type q (1 - q)  >= 0,

so GDE is exact only when every point is covered by all models or by none. Everything is vectorised over
parameter grids (numpy broadcasting)."""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln


def none_known(t, n, k):
    """P(a uniform k-subset of t features misses all n features of a point) = C(t-n, k) / C(t, k), broadcast."""
    t, n, k = (np.asarray(v, dtype=np.float64) for v in (t, n, k))
    if np.any(n > t) or np.any(k > t) or np.any(np.minimum(n, k) < 0):
        raise ValueError("need 0 <= n <= t and 0 <= k <= t for every feature type")
    with np.errstate(invalid="ignore"):
        log = gammaln(t - n + 1) - gammaln(t - n - k + 1) - gammaln(t + 1) + gammaln(t - k + 1)
    return np.where(t - n - k >= 0, np.exp(log), 0.0)


def _check(p_d, classes):
    p = np.asarray(p_d, dtype=np.float64)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_d is a probability: it lies in [0, 1]")
    if np.any(np.asarray(classes) < 2):
        raise ValueError("classes must be at least 2")
    return p


def framework_accuracy(p_d, t_d, n_d, k_d, t_r, n_r, k_r, classes=2):
    """E[accuracy] of one model (broadcast over any parameter grid)."""
    p = _check(p_d, classes)
    K = np.asarray(classes, dtype=np.float64)
    qd, qr = none_known(t_d, n_d, k_d), none_known(t_r, n_r, k_r)
    return p * (1 - qd + qd / K) + (1 - p) * (1 - qr + qr / K)


def framework_agreement(p_d, t_d, n_d, k_d, t_r, n_r, k_r, classes=2):
    """E[agreement] of two independently drawn models (broadcast over any parameter grid)."""
    p = _check(p_d, classes)
    K = np.asarray(classes, dtype=np.float64)

    def agr(q):
        return (1 - q) ** 2 + 2 * q * (1 - q) / K + q ** 2 / K

    return p * agr(none_known(t_d, n_d, k_d)) + (1 - p) * agr(none_known(t_r, n_r, k_r))


def uniform_rule(rng, n_models: int, t: int, k: int) -> np.ndarray:
    """The default learning rule: each model learns a uniform k-subset of the t features -> [n_models, t] bool."""
    keys = rng.random((n_models, t))
    return np.argsort(keys, axis=1).argsort(axis=1) < k


def simulate(p_d, t_d, n_d, k_d, t_r, n_r, k_r, classes=2, n_models: int = 100, n_points: int = 4000, seed=0,
             rule=uniform_rule) -> dict:
    """Monte-Carlo of the framework: ``n_models`` models (learned sets from ``rule(rng, n_models, t, k)`` per
    feature type), ``n_points`` points; every model's prediction is right if it knows a feature of the point, else
    a uniform guess among ``classes``. Returns the mean accuracy and the mean pairwise agreement over distinct
    pairs (from per-class vote counts: O(models x points) memory). Models share the sampled points, so the
    uncertainty of these means is best measured across seeds (``replicate_spread``)."""
    rng = np.random.default_rng(seed)
    dominant = rng.random(n_points) < p_d
    know = np.zeros((n_models, n_points), dtype=bool)
    for is_d, t, n, k in ((True, t_d, n_d, k_d), (False, t_r, n_r, k_r)):
        idx = np.flatnonzero(dominant == is_d)
        if len(idx) == 0:
            continue
        learned = rule(rng, n_models, t, k)  # [models, t]
        feats = np.argsort(rng.random((len(idx), t)), axis=1)[:, :n]  # each point's n features
        know[:, idx] = learned[:, feats].any(-1)
    y = rng.integers(0, classes, n_points)
    guess = rng.integers(0, classes, (n_models, n_points))
    pred = np.where(know, y[None], guess)
    acc = float((pred == y[None]).mean())
    counts = np.stack([(pred == c).sum(0) for c in range(classes)])  # [classes, points]
    agr = float((counts * (counts - 1)).sum(0).mean() / (n_models * (n_models - 1)))
    return {"acc": acc, "agr": agr}


def replicate_spread(params: dict, classes: int, n_models: int, n_points: int, seeds) -> dict:
    """Mean and standard deviation across independent simulations (``seeds``): the Monte-Carlo's own
    uncertainty."""
    sims = [simulate(**params, classes=classes, n_models=n_models, n_points=n_points, seed=s) for s in seeds]
    a, g = np.array([x["acc"] for x in sims]), np.array([x["agr"] for x in sims])
    return {"acc": float(a.mean()), "agr": float(g.mean()), "acc_sd": float(a.std(ddof=1)),
            "agr_sd": float(g.std(ddof=1)), "n": len(sims)}
