"""The update against its closed forms and special cases (spec 2.3), and bad input."""
import numpy as np
import pytest

from update_equivalence import update

RNG = np.random.default_rng(0)
PI = RNG.dirichlet(np.ones(4), size=5)
Q = RNG.normal(size=(5, 4))


def test_mirror_descent_closed_form_and_small_step():
    out = update(PI, Q, 0.7)
    ref = PI * np.exp(0.7 * Q)
    assert np.allclose(out, ref / ref.sum(1, keepdims=True), atol=1e-12)
    assert np.allclose(update(PI, Q, 1e-12), PI, atol=1e-10)  # eta -> 0 keeps pi


def test_magnetic_closed_form_and_uniform_identity():
    rho = RNG.dirichlet(np.ones(4), size=5)
    eta, alpha = 0.8, 1.5
    ref = (PI * rho ** (alpha * eta) * np.exp(eta * Q)) ** (1 / (1 + alpha * eta))
    assert np.allclose(update(PI, Q, eta, alpha, rho), ref / ref.sum(1, keepdims=True), atol=1e-12)
    uni = np.full((5, 4), 0.25)  # uniform blueprint and magnet: MMD(eta, alpha) = MD(eta / (1 + alpha eta))
    assert np.allclose(update(uni, Q, eta, alpha), update(uni, Q, eta / (1 + alpha * eta)), atol=1e-12)
    assert np.allclose(update(PI, Q, 1e-3, 1e6, rho), rho, atol=1e-2)  # a huge temperature pulls to the magnet


def test_greedy_limit_ties_and_masks():
    q = np.array([[1.0, 3.0, 3.0, 0.0]])
    pi = np.full((1, 4), 0.25)
    assert np.allclose(update(pi, q, np.inf), [[0, 0.5, 0.5, 0]])
    assert np.allclose(update(pi, q, np.inf, tie_break="first"), [[0, 1, 0, 0]])
    assert np.allclose(update(pi, q + [[0, 0, 1e-3, 0]], 1e5), [[0, 0, 1, 0]], atol=1e-9)  # eta -> inf: argmax
    legal = np.array([[True, False, True, True]])
    pi3 = np.array([[0.5, 0.0, 0.25, 0.25]])
    out = update(pi3, q, 2.0, 0.5, legal=legal)
    assert out[0, 1] == 0 and np.isclose(out.sum(), 1)
    assert np.allclose(update(pi3, q, np.inf, legal=legal), [[0, 0, 1, 0]])


def test_infinite_step_is_the_limit_of_the_update():
    pi, q = np.array([0.6, 0.3, 0.1]), np.array([1.0, 1.0, 0.0])
    # ties: pi restricted to the maximisers, in proportion to pi (not split evenly)
    assert np.allclose(update(pi, q, np.inf), update(pi, q, 1e6), atol=1e-6)
    assert np.allclose(update(pi, q, np.inf), [2 / 3, 1 / 3, 0])
    assert np.allclose(update(pi, q, np.inf, tie_break="uniform"), [0.5, 0.5, 0])
    # alpha > 0: rho exp(q / alpha) on pi's support
    rho = np.array([0.2, 0.5, 0.3])
    assert np.allclose(update(pi, q, np.inf, 0.1, rho), update(pi, q, 1e9, 0.1, rho), atol=1e-6)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="negative"):
        update(np.array([[1.2, -0.2]]), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="not normalised"):
        update(np.array([[0.5, 0.4]]), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="illegal"):
        update(np.array([[0.5, 0.5]]), np.zeros((1, 2)), 1.0, legal=np.array([[True, False]]))
    with pytest.raises(ValueError, match="same shape"):
        update(np.array([0.5, 0.5]), np.zeros(3), 1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        update(np.array([0.5, 0.5]), np.zeros(2), float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        update(np.array([0.5, 0.5]), np.array([0.0, np.nan]), 1.0)
    with pytest.raises(ValueError, match="tie_break"):
        update(np.array([0.5, 0.5]), np.zeros(2), 1.0, tie_break="random")
