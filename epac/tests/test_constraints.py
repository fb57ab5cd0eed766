"""Explanations: the ReLU net's input gradient equals its analytic form; the penalty's parameter gradient (a
gradient of a gradient) matches finite differences in float64; each surrogate is zero exactly when its constraint
holds; bad explanations are named."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from epac import Explanation, gradient_penalty, input_gradients, make_model
from epac.constraints import satisfied, surrogate
from epac.data import relu_teacher_gradient


def _relu_net_with(u, v):
    model = make_model("mlp", [len(v)])
    p = model.init(jax.random.PRNGKey(0), jnp.zeros((1, u.shape[1])))
    p = {"params": {"Dense_0": {"kernel": jnp.asarray(u.T), "bias": jnp.zeros(len(v))},
                    "Dense_1": {"kernel": jnp.asarray(v[:, None]), "bias": jnp.zeros(1)}}}
    return model, p


def test_relu_input_gradient_is_the_analytic_one():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((8, 10)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    model, p = _relu_net_with(u, v)
    x = rng.standard_normal((200, 10)).astype(np.float32)
    assert np.allclose(input_gradients(model.apply, p, x), relu_teacher_gradient(x, u, v), atol=1e-5)


def test_penalty_gradient_matches_finite_differences_in_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        model = make_model("mlp", [5], activation="softplus")  # smooth: finite differences are meaningful
        x = jnp.asarray(rng.standard_normal((7, 3)))
        p = model.init(jax.random.PRNGKey(1), x[:1])
        p = jax.tree.map(lambda a: a.astype(jnp.float64), p)
        e = Explanation("matching", rng.standard_normal((7, 3)))
        flat, unravel = jax.flatten_util.ravel_pytree(p)

        @jax.jit
        def f(theta):
            return gradient_penalty(model.apply, unravel(theta), x, e, jnp.asarray(e.g))

        g = jax.grad(f)(flat)
        eps = 1e-6
        fd = np.array([(f(flat.at[i].add(eps)) - f(flat.at[i].add(-eps))) / (2 * eps) for i in range(len(flat))])
        assert np.allclose(g, fd, rtol=1e-5, atol=1e-7)


def test_angle_surrogate_is_zero_exactly_on_the_cone_and_homogeneous():
    e = Explanation("angle", np.tile([1.0, 0.0], (4, 1)), alpha=np.pi / 4)
    grads = jnp.array([[1.0, 0.5], [1.0, 1.0], [1.0, 1.5], [-1.0, 0.0]])  # 26.6 deg, 45 deg, 56.3 deg, 180 deg
    phi = np.asarray(surrogate(grads, e))
    assert phi[0] == 0 and abs(phi[1]) < 1e-6 and phi[2] > 0 and phi[3] > phi[2]
    assert np.allclose(surrogate(3 * grads, e), 3 * phi, atol=1e-6)
    assert list(np.asarray(satisfied(grads, e))) == [True, True, False, False]
    assert float(surrogate(jnp.array([[1.0, 1.5]]), e)[0]) == pytest.approx(np.hypot(1, 1.5) * np.sin(
        np.arctan(1.5) - np.pi / 4), abs=1e-5)  # the distance to the cone
    wide = Explanation("angle", np.tile([1.0, 0.0], (4, 1)), alpha=3 * np.pi / 4)  # wider than a half-space
    assert list(np.asarray(satisfied(grads, wide))) == [True, True, True, False]
    ray = Explanation("angle", np.tile([1.0, 0.0], (2, 1)), alpha=0.0)  # the opposite direction is not on the ray
    assert list(np.asarray(satisfied(jnp.array([[2.0, 0.0], [-2.0, 0.0]]), ray))) == [True, False]
    assert float(surrogate(jnp.array([[-2.0, 0.0]]), ray)[0]) == pytest.approx(2.0)


def test_matching_mask_and_zero_attribution():
    grads = jnp.array([[1.0, 2.0, 3.0]])
    e = Explanation("matching", np.array([[1.0, 0.0, 0.0]]), mask=np.array([[1.0, 0.0, 1.0]]))
    assert float(surrogate(grads, e)[0]) == pytest.approx(9.0)  # only the known coordinates count
    z = Explanation("zero", mask=np.array([[0.0, 1.0, 0.0]]))
    assert float(surrogate(grads, z)[0]) == pytest.approx(4.0)
    assert not bool(satisfied(grads, z)[0]) and bool(satisfied(jnp.array([[1.0, 0.01, 3.0]]), z)[0])


def test_bad_explanations_are_named():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="shape"):
        Explanation("matching", np.zeros((4, 2))).check(x)
    with pytest.raises(ValueError, match=r"\[0, pi\]"):
        Explanation("angle", np.ones((4, 3)), alpha=4.0).check(x)
    with pytest.raises(ValueError, match="unlabeled set is empty"):
        Explanation("matching", np.zeros((0, 3))).check(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="mask"):
        Explanation("zero").check(x)
    with pytest.raises(ValueError, match="kind"):
        Explanation("saliency", np.zeros((4, 3))).check(x)
    with pytest.raises(ValueError, match="nonzero direction"):
        Explanation("angle", np.zeros((4, 3)), alpha=0.5).check(x)
    with pytest.raises(ValueError, match="drop the mask"):
        Explanation("angle", np.ones((4, 3)), np.ones((4, 3)), alpha=0.5).check(x)
