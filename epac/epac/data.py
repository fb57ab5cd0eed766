"""Tasks: labeled points, unlabeled points with explanations, a test set with the true explanations.

- ``make_synthetic("twolayer")``: the spec's task. x ~ N(0, I_d); teacher f*(x) = sum_j v_j relu(u_j^T x) with
  ||u_j|| = 1, v_j ~ N(0, 1); y = f*(x) + N(0, noise^2); explanations g(x) = grad f*(x) (+ N(0, expl_noise^2) per
  coordinate; ``partial`` < 1 keeps only the first coordinates' explanations).
- ``make_synthetic("linear")``: f*(x) = <w*, x>; the explanation is an angle constraint: the gradient lies within
  ``alpha`` of a direction w' that is ``angle_true`` away from w* (so the truth satisfies it when angle_true <=
  alpha).
- ``load_wrench``: a WRENCH text dataset (JSON splits the user downloads) as binary bag-of-words features, with
  gradient explanations from keyword lists (our construction, LoL-style; see the README).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from epac.constraints import Explanation

WRENCH_URL = "https://github.com/JieyuZ2/wrench (README: 'Datasets' -> Google Drive folder)"


@dataclass(frozen=True)
class Task:
    """Arrays of one task (float32). ``expl_u``/``expl_l`` are the explanations given at the unlabeled / labeled
    points; ``expl_test`` the true ones at the test points (for violation and satisfaction)."""

    x_l: np.ndarray
    y_l: np.ndarray
    x_u: np.ndarray
    expl_u: Explanation
    expl_l: Explanation
    x_test: np.ndarray
    y_test: np.ndarray
    expl_test: Explanation
    loss: str = "mse"  # mse (regression) | logistic (binary labels in {0, 1})
    name: str = ""

    @property
    def n(self) -> int:
        return len(self.x_l)


def relu_teacher_gradient(x, u, v):
    """grad_x of sum_j v_j relu(u_j^T x): sum_j v_j 1[u_j^T x > 0] u_j, ``[n, d]``."""
    return ((x @ u.T) > 0).astype(x.dtype) * v @ u


def _unit(rng, m, d):
    u = rng.standard_normal((m, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def make_synthetic(kind: str = "twolayer", n_labeled: int = 32, k: int = 500, n_test: int = 2000, d: int = 10,
                   m: int = 8, noise: float = 0.1, expl_noise: float = 0.0, partial: float = 1.0,
                   alpha: float = 0.2, angle_true: float = 0.1, loss: str = "mse", seed: int = 0) -> Task:
    """A synthetic task (module docstring); each seed redraws the teacher and every point."""
    if kind not in ("twolayer", "linear"):
        raise ValueError(f"task kind={kind!r}: twolayer or linear")
    if loss not in ("mse", "logistic"):
        raise ValueError(f"loss={loss!r}: mse or logistic")
    if not 0 < partial <= 1:
        raise ValueError(f"partial={partial}: the fraction of explained coordinates, in (0, 1]")
    # one stream per role: the teacher and the test set do not depend on n or k, and the labeled (unlabeled) points
    # of a smaller n (k) are the first ones of a larger n (k): runs over n and k are paired
    streams = np.random.SeedSequence(seed).spawn(8)
    r_teacher, r_test, r_test_noise, r_u, r_u_expl, r_l, r_l_noise, r_l_expl = map(np.random.default_rng, streams)
    x_l, x_u, x_test = r_l.standard_normal((n_labeled, d)), r_u.standard_normal((k, d)), r_test.standard_normal(
        (n_test, d))
    rng = r_teacher
    if kind == "twolayer":
        u, v = _unit(rng, m, d), rng.standard_normal(m)

        def f(x):
            return np.maximum(x @ u.T, 0) @ v

        def grad(x):
            return relu_teacher_gradient(x, u, v)
    else:
        w_star = _unit(rng, 1, d)[0] * np.sqrt(d)
        other = _unit(rng, 1, d)[0]
        other -= other @ w_star / (w_star @ w_star) * w_star
        w_dir = np.cos(angle_true) * w_star / np.linalg.norm(w_star) + np.sin(angle_true) * other / np.linalg.norm(
            other)

        def f(x):
            return x @ w_star

        def grad(x):
            return np.broadcast_to(w_dir, x.shape).copy()

    def labels(x, r):
        y = f(x) + noise * r.standard_normal(len(x))
        return (y > 0).astype(np.float64) if loss == "logistic" else y

    mask = np.zeros(d)
    mask[: max(1, int(round(partial * d)))] = 1.0

    def expl(x, r):
        g = grad(x)
        if r is not None and expl_noise > 0:
            g = g + expl_noise * r.standard_normal(g.shape)
        if kind == "linear":
            return Explanation("angle", g.astype(np.float32), None, alpha)
        m_ = None if partial == 1 else np.broadcast_to(mask, x.shape).astype(np.float32)
        return Explanation("matching", g.astype(np.float32), m_)

    f32 = np.float32
    y_l, y_test = labels(x_l, r_l_noise), labels(x_test, r_test_noise)
    e_u, e_l = expl(x_u, r_u_expl), expl(x_l, r_l_expl)
    e_test = expl(x_test, None)  # the truth
    if kind == "twolayer" and partial < 1:  # the truth is judged on every coordinate
        e_test = replace(e_test, mask=None)
    return Task(x_l.astype(f32), y_l.astype(f32), x_u.astype(f32), e_u, e_l, x_test.astype(f32), y_test.astype(f32),
                e_test, loss, f"synthetic_{kind}")


def load_wrench(root, dataset: str, keywords: dict, n_labeled: int = 32, k: int | None = None,
                max_features: int = 5000, strength: float = 1.0, seed: int = 0) -> Task:
    """A binary WRENCH text dataset from ``root/dataset/{train,valid,test}.json`` (each ``{id: {"label": int,
    "data": {"text": str}, ...}}``). Features: binary bag of words fitted on the training texts (keywords always in
    the vocabulary). Labeled: ``n_labeled`` random training points; unlabeled: ``k`` others (default: all).
    Explanations (``matching`` on a mask): at a point containing keyword w of class c, d score / d x_w should be
    ``strength`` for c = 1 and ``-strength`` for c = 0; other coordinates are unconstrained. ``keywords`` maps
    class (0 or 1) to a list of words. The test set's explanations are the same construction (a proxy: WRENCH
    has no ground-truth gradients)."""
    from sklearn.feature_extraction.text import CountVectorizer

    folder = Path(root) / dataset
    files = [folder / f"{s}.json" for s in ("train", "valid", "test")]
    missing = [str(p) for p in files if not p.exists()]
    if missing:
        raise FileNotFoundError(f"WRENCH data not found: {missing}. Download the {dataset} folder (train.json, "
                                f"valid.json, test.json) from {WRENCH_URL} and pass data.root=<its parent folder>")

    def read(p):
        rows = list(json.loads(p.read_text()).values())
        return [r["data"]["text"] for r in rows], np.array([int(r["label"]) for r in rows])

    (tr_x, tr_y), _, (te_x, te_y) = (read(p) for p in files)
    if set(np.unique(np.concatenate([tr_y, te_y]))) - {0, 1}:
        raise ValueError(f"{dataset} is not binary: EPAC's gradient constraints here use one score (binary tasks)")
    words = sorted({w.lower() for ws in keywords.values() for w in ws})
    top = CountVectorizer(binary=True, max_features=max_features, lowercase=True).fit(tr_x)
    analyse = top.build_analyzer()
    bad = [w for w in words if analyse(w) != [w]]
    if bad:
        raise ValueError(f"keywords {bad} are not single tokens of the vectoriser: use single words")
    vec = CountVectorizer(binary=True, lowercase=True, vocabulary=sorted(set(top.vocabulary_) | set(words)))
    vec.fit(tr_x)  # the most frequent tokens plus every keyword, however rare
    vocab = vec.vocabulary_
    sign = np.zeros(len(vocab), np.float32)
    for c, ws in keywords.items():
        for w in ws:
            sign[vocab[w.lower()]] = strength if int(c) == 1 else -strength

    def feats(texts):
        x = vec.transform(texts).toarray().astype(np.float32)
        mask = (x > 0) & (sign != 0)
        return x, Explanation("matching", (mask * sign).astype(np.float32), mask.astype(np.float32))

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(tr_x))
    li, ui = order[:n_labeled], order[n_labeled:][:k]
    x_all, e_all = feats(tr_x)
    x_test, e_test = feats(te_x)

    def sub(e, idx):
        return replace(e, g=e.g[idx], mask=e.mask[idx])

    return Task(x_all[li], tr_y[li].astype(np.float32), x_all[ui], sub(e_all, ui), sub(e_all, li), x_test,
                te_y.astype(np.float32), e_test, "logistic", f"wrench_{dataset}")
