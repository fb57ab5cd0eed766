"""Evaluation as in the paper's Fig. 3 (rliable-style, written here): Procgen min-max normalisation, IQM, median,
mean and optimality gap over runs x games with stratified bootstrap confidence intervals; the Crafter score."""
from __future__ import annotations

import numpy as np

# Cobbe et al. (2020) easy-mode (R_min, R_max) per game [verify against the paper's appendix / Procgen paper]
EASY_MIN_MAX = {"bigfish": (1, 40), "bossfight": (0.5, 13), "caveflyer": (3.5, 12), "chaser": (0.5, 13),
                "climber": (2, 12.6), "coinrun": (5, 10), "dodgeball": (1.5, 19), "fruitbot": (-1.5, 32.4),
                "heist": (3.5, 10), "jumper": (3, 10), "leaper": (3, 10), "maze": (5, 10), "miner": (1.5, 13),
                "ninja": (3.5, 10), "plunder": (4.5, 30), "starpilot": (2.5, 64)}


def normalize(returns: np.ndarray, game: str) -> np.ndarray:
    """(R - R_min) / (R_max - R_min) with the easy-mode constants of ``game``."""
    if game not in EASY_MIN_MAX:
        raise ValueError(f"unknown Procgen game {game!r}; known: {sorted(EASY_MIN_MAX)}")
    lo, hi = EASY_MIN_MAX[game]
    return (np.asarray(returns, dtype=float) - lo) / (hi - lo)


def iqm(x: np.ndarray) -> float:
    """Interquartile mean of all scores: the mean of the middle 50% (``scipy.stats.trim_mean(x, 0.25)``, as
    rliable computes it)."""
    from scipy.stats import trim_mean

    return float(trim_mean(np.asarray(x, dtype=float).ravel(), 0.25))


def optimality_gap(x: np.ndarray, gamma: float = 1.0) -> float:
    """Mean shortfall below ``gamma``: mean(max(gamma - x, 0))."""
    return float(np.mean(np.maximum(gamma - np.asarray(x, dtype=float), 0.0)))


# rliable's definitions on scores [runs, games]: the median of the per-game means across runs; the IQM, mean and
# optimality gap of all run x game scores
AGGREGATES = {"median": lambda x: float(np.median(np.asarray(x, dtype=float).mean(0))), "iqm": iqm,
              "mean": lambda x: float(np.mean(x)), "optimality_gap": optimality_gap}


def aggregate_with_ci(scores: np.ndarray, reps: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict:
    """``scores [runs, games]`` of normalised returns -> {name: (point, low, high)}; the CI is the percentile
    interval of a stratified bootstrap that resamples runs independently within each game (rliable's default)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [runs, games], got shape {scores.shape}")
    rng = np.random.default_rng(seed)
    n, g = scores.shape
    idx = rng.integers(n, size=(reps, n, g))
    boot = np.take_along_axis(np.broadcast_to(scores, (reps, n, g)), idx, axis=1)
    out = {}
    for name, f in AGGREGATES.items():
        vals = np.array([f(b) for b in boot])
        out[name] = (f(scores), float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2)))
    return out


def crafter_score(success_rates_percent: np.ndarray) -> float:
    """Crafter's score: exp(mean_i ln(1 + s_i)) - 1 over the 22 achievements' success rates s_i in percent."""
    s = np.asarray(success_rates_percent, dtype=float)
    return float(np.exp(np.mean(np.log1p(s))) - 1)


class ReturnNormalizer:
    """Rewards divided by the running std of the discounted return per env and clipped (baselines'
    VecNormalize(ret=True), which the paper's Procgen code applies; easy to miss)."""

    def __init__(self, n_envs: int, gamma: float = 0.99, clip: float = 10.0, eps: float = 1e-8):
        self.ret = np.zeros(n_envs)
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.count, self.mean, self.var = 1e-4, 0.0, 1.0

    def __call__(self, rew: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Normalised rewards of one vectorised step; the running statistics update with this step's returns."""
        self.ret = self.ret * self.gamma + rew
        b_mean, b_var, b_n = self.ret.mean(), self.ret.var(), len(self.ret)
        delta, tot = b_mean - self.mean, self.count + b_n
        self.mean += delta * b_n / tot  # Chan et al. parallel update, as baselines' RunningMeanStd
        self.var = (self.var * self.count + b_var * b_n + delta ** 2 * self.count * b_n / tot) / tot
        self.count = tot
        self.ret[np.asarray(done, dtype=bool)] = 0.0
        return np.clip(rew / np.sqrt(self.var + self.eps), -self.clip, self.clip)

    def state_dict(self) -> dict:
        """Running statistics and the per-env returns (checkpointed with the run)."""
        return {"ret": self.ret.copy(), "count": self.count, "mean": self.mean, "var": self.var}

    def load_state_dict(self, st: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.ret, self.count, self.mean, self.var = st["ret"].copy(), st["count"], st["mean"], st["var"]
