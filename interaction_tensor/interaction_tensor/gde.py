"""Generalisation disagreement equality (Jiang et al. 2022) on an ensemble's predictions.

- ``test_error``: mean error of the M models; ``disagreement``: mean over distinct model pairs of the fraction
  of points where they differ (what GDE compares with the error);
- ``cace``: class-aggregated calibration error of the ensemble h~_k(x) = fraction of models predicting k:
  sum over levels q in {0, 1/M, ..., 1} of |sum_k P(Y = k, h~_k(X) = q) - q sum_k P(h~_k(X) = q)|;
- ``iid_gap``: E[dis] - E[err] for two models drawn independently *with replacement* from the ensemble (the
  quantity of the GDE theorem); |iid_gap| <= CACE holds exactly for any ensemble (tested), and the distinct-pair
  disagreement is M / (M - 1) times the iid one."""
from __future__ import annotations

import numpy as np


def _check(preds, y=None):
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError(f"predictions must be [M models, N points], got shape {preds.shape}")
    if y is not None and np.asarray(y).shape != (preds.shape[1],):
        raise ValueError(f"labels must be [N] = [{preds.shape[1]}], got shape {np.asarray(y).shape}")
    return preds


def test_error(preds, y) -> float:
    preds = _check(preds, y)
    return float((preds != np.asarray(y)[None]).mean())


test_error.__test__ = False  # not a pytest test


def disagreement(preds) -> float:
    """Mean over distinct pairs (h, h') of P_x(h(x) != h'(x)): sum over points of (1 - sum_k c_k^2 ...) in O(MN)."""
    preds = _check(preds)
    M = preds.shape[0]
    if M < 2:
        raise ValueError("disagreement needs at least 2 models")
    counts = np.stack([(preds == k).sum(0) for k in np.unique(preds)])  # [classes seen, N]
    agree_pairs = (counts * (counts - 1)).sum(0)  # ordered pairs of distinct models that agree, per point
    return float(1 - agree_pairs.mean() / (M * (M - 1)))


def ensemble_probs(preds, n_classes: int) -> np.ndarray:
    """[N, K] fraction of models predicting each class."""
    preds = _check(preds)
    return np.stack([(preds == k).mean(0) for k in range(n_classes)], 1)


def cace(preds, y, n_classes: int) -> float:
    preds = _check(preds, y)
    M = preds.shape[0]
    h = ensemble_probs(preds, n_classes)  # values in {0, 1/M, ..., 1}
    levels = np.rint(h * M).astype(int)  # [N, K]
    onehot = np.eye(n_classes)[np.asarray(y)]  # [N, K]
    n = len(y)
    hit = np.bincount(levels.ravel(), weights=onehot.ravel(), minlength=M + 1) / n  # sum_k P(Y=k, h_k = q)
    mass = np.bincount(levels.ravel(), minlength=M + 1) / n  # sum_k P(h_k = q)
    q = np.arange(M + 1) / M
    return float(np.abs(hit - q * mass).sum())


def iid_gap(preds, y, n_classes: int) -> float:
    """E[dis] - E[err] for h, h' drawn i.i.d. from the ensemble (same model allowed)."""
    h = ensemble_probs(preds, n_classes)
    err = 1 - h[np.arange(len(y)), np.asarray(y)].mean()
    dis = 1 - (h ** 2).sum(1).mean()
    return float(dis - err)
