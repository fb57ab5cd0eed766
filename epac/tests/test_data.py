"""Tasks: the synthetic teacher's explanations are its true input gradients (finite differences), partial and noisy
explanations are what they say, the linear task's truth lies in its cone; the WRENCH loader reads the JSON splits
and names the download when they are absent."""
import json

import numpy as np
import pytest

from epac import load_wrench, make_synthetic
from epac.constraints import satisfied


def test_twolayer_explanations_are_the_teachers_gradients():
    t = make_synthetic("twolayer", n_labeled=8, k=50, n_test=20, noise=0.0, seed=3)
    assert t.x_l.shape == (8, 10) and t.x_u.shape == (50, 10) and t.expl_u.g.shape == (50, 10)
    # a bias-free ReLU teacher is positively homogeneous: f*(x) = <grad f*(x), x> (Euler), so noise-free labels
    # and the explanations must agree point by point
    assert np.allclose(t.y_test, np.sum(t.expl_test.g * t.x_test, 1), atol=1e-4)
    assert t.expl_test.mask is None and t.expl_u.kind == "matching"


def test_runs_over_n_and_k_are_paired():
    a = make_synthetic("twolayer", n_labeled=8, k=50, n_test=30, seed=4)
    b = make_synthetic("twolayer", n_labeled=32, k=200, n_test=30, seed=4)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)  # same teacher and test set
    assert np.array_equal(a.x_l, b.x_l[:8]) and np.array_equal(a.y_l, b.y_l[:8])  # nested labeled sets
    assert np.array_equal(a.x_u, b.x_u[:50])


def test_teacher_gradient_by_finite_differences():
    from epac.data import relu_teacher_gradient

    rng = np.random.default_rng(1)
    u, v, x = rng.standard_normal((8, 10)), rng.standard_normal(8), rng.standard_normal((5, 10))

    def f(z):
        return np.maximum(z @ u.T, 0) @ v

    eps = 1e-6
    fd = np.stack([(f(x + eps * np.eye(10)[j]) - f(x - eps * np.eye(10)[j])) / (2 * eps) for j in range(10)], 1)
    assert np.allclose(relu_teacher_gradient(x, u, v), fd, atol=1e-5)


def test_partial_noisy_and_linear_tasks():
    clean = make_synthetic("twolayer", k=40, seed=0)
    noisy = make_synthetic("twolayer", k=40, expl_noise=1.0, seed=0)
    assert (noisy.expl_u.g - clean.expl_u.g).std() == pytest.approx(1.0, abs=0.15)
    part = make_synthetic("twolayer", k=40, partial=0.5, seed=0)
    assert part.expl_u.mask[:, :5].all() and not part.expl_u.mask[:, 5:].any() and part.expl_test.mask is None
    lin = make_synthetic("linear", n_labeled=4, k=30, d=6, alpha=0.2, angle_true=0.1, noise=0.0, seed=0)
    w_star = np.linalg.lstsq(lin.x_test, lin.y_test, rcond=None)[0]  # noise-free: the true weights
    assert bool(satisfied(w_star[None], lin.expl_test.__class__("angle", lin.expl_test.g[:1], None, 0.2))[0])
    assert not bool(satisfied(w_star[None], lin.expl_test.__class__("angle", lin.expl_test.g[:1], None, 0.05))[0])
    with pytest.raises(ValueError, match="partial"):
        make_synthetic(partial=0.0)


def _write_wrench(root, labels=(0, 1), name="toy"):
    texts = ["subscribe to my channel", "great song love it", "check out my channel please", "best song ever",
             "free money subscribe", "i love this music video"]
    folder = root / name
    folder.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        rows = {str(i): {"label": labels[(i + 1) % 2], "data": {"text": t}, "weak_labels": [-1]}
                for i, t in enumerate(texts)}  # spam (1) at even rows
        (folder / f"{split}.json").write_text(json.dumps(rows))


def test_wrench_loader_and_errors(tmp_path):
    _write_wrench(tmp_path)
    kw = {1: ["subscribe", "channel"], 0: ["song", "love"]}
    t = load_wrench(tmp_path, "toy", kw, n_labeled=2, seed=0)
    assert t.loss == "logistic" and t.n == 2 and len(t.x_u) == 4 and t.x_l.shape[1] == t.x_test.shape[1]
    vocab_hits = t.expl_test.mask.sum(1)
    assert vocab_hits[0] == 2 and vocab_hits[1] == 2  # "subscribe ... channel" and "song ... love"
    assert set(np.unique(t.expl_test.g[t.expl_test.mask > 0])) == {-1.0, 1.0}
    with pytest.raises(FileNotFoundError, match="Download the nowhere folder"):
        load_wrench(tmp_path, "nowhere", kw)
    with pytest.raises(ValueError, match="single words"):
        load_wrench(tmp_path, "toy", {1: ["check out"]})
    rare = load_wrench(tmp_path, "toy", {1: ["free"], 0: ["song"]}, n_labeled=2, max_features=2)
    assert rare.x_l.shape[1] <= 4 and rare.expl_test.mask[4].sum() == 1  # top 2 tokens + keywords: "free" kept
    _write_wrench(tmp_path, labels=(0, 2), name="multi")
    with pytest.raises(ValueError, match="not binary"):
        load_wrench(tmp_path, "multi", kw)
