"""The cone class's complexity: the closed-form supremum bounds a brute-force search and their means over sign
draws agree (d = 3, within 5e-4); in high dimension the complexity is about sin(alpha) times the unconstrained one
and grows with alpha; the two-layer Monte Carlo shrinks with the constraint."""
import numpy as np
import pytest

from epac import rademacher_linear_cone
from epac.rademacher import (
    _sign_means,
    cone_sup,
    cone_sup_bruteforce,
    rademacher_linear,
    rademacher_twolayer_mc,
)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0, 2.0])
def test_closed_form_sup_equals_brute_force_in_3d(alpha):
    rng = np.random.default_rng(0)
    X, w = rng.standard_normal((20, 3)), rng.standard_normal(3)
    z = _sign_means(X, 100, 1)
    closed, brute = cone_sup(z, w, alpha), cone_sup_bruteforce(z, w, alpha, n_dirs=200_000)
    assert np.all(brute <= closed + 1e-12)  # the closed form is the supremum
    assert abs(closed.mean() - brute.mean()) < 5e-4  # the complexities (means over sign draws)


def test_sin_alpha_law_in_high_dimension():
    rng = np.random.default_rng(2)
    X, w = rng.standard_normal((50, 50)), rng.standard_normal(50)
    free = rademacher_linear(X, draws=4000)
    vals = [rademacher_linear_cone(X, w, a, draws=4000) for a in (0.0, 0.1, 0.3, 0.6, 1.0, np.pi / 2, np.pi)]
    assert np.all(np.diff(vals) > 0) and vals[-1] == pytest.approx(free)
    for a, v in zip((0.3, 0.6, 1.0), vals[2:5]):
        assert abs(v - np.sin(a) * free) < 0.02
    with pytest.raises(ValueError, match=r"\[0, pi\]"):
        rademacher_linear_cone(X, w, -0.1)


def test_two_layer_monte_carlo_shrinks_with_the_constraint():
    rng = np.random.default_rng(3)
    u = rng.standard_normal((4, 5))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    out = rademacher_twolayer_mc(rng.standard_normal((30, 5)), rng.standard_normal((100, 5)), u,
                                 rng.standard_normal(4), [0.1, 1.0, 10.0], n_nets=500, draws=300)
    assert out[0.1] <= out[1.0] <= out[10.0] <= out["inf"]
    assert out[0.1] < out["inf"]
