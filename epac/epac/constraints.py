"""Explanation constraints on input gradients and their surrogate losses phi(h, x) >= 0 (zero when satisfied).

- ``matching``: ||grad_x h(x) - g(x)||^2 over the known coordinates (``mask``: partial explanations).
- ``angle``: the gradient within angle ``alpha`` of a direction g(x): phi = the Euclidean distance from the gradient
  to that cone (||grad|| sin(theta - alpha) for alpha < theta < alpha + pi/2, ||grad|| beyond, 0 inside). Zero
  exactly on the cone, positively homogeneous, with a unit-size gradient at the boundary: an exact penalty (a
  large enough weight gives the constrained solution itself; a squared surrogate would not).
- ``zero``: no attribution on named features: phi = sum over the features in ``mask`` of (d h / d x_j)^2.

Input gradients are ``vmap(grad(...))`` of the score, so a penalty inside a training loss is a gradient of a
gradient: JAX differentiates through it (``jax.grad`` of a function that calls ``jax.grad``).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("matching", "angle", "zero")


@dataclass(frozen=True)
class Explanation:
    """Explanations g at points x: ``kind`` (matching | angle | zero), ``g`` ``[k, d]`` (the target gradient, or the
    cone's direction for ``angle``; unused for ``zero``), ``mask`` ``[k, d]`` of known / constrained coordinates
    (None: all), ``alpha`` the cone's half-angle in radians (``angle`` only)."""

    kind: str
    g: np.ndarray | None = None
    mask: np.ndarray | None = None
    alpha: float = 0.0

    def check(self, x) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"explanation kind={self.kind!r}: one of {KINDS}")
        k, d = np.shape(x)
        if k == 0:
            raise ValueError("no points to enforce the explanations on: the unlabeled set is empty (raise data.k)")
        if self.kind != "zero" and (self.g is None or np.shape(self.g) != (k, d)):
            raise ValueError(f"explanations g must have the inputs' shape {(k, d)}, got "
                             f"{None if self.g is None else np.shape(self.g)}")
        if self.mask is not None and np.shape(self.mask) != (k, d):
            raise ValueError(f"explanation mask must have shape {(k, d)}, got {np.shape(self.mask)}")
        if self.kind == "zero" and self.mask is None:
            raise ValueError("a zero-attribution explanation needs the mask of features with no attribution")
        if self.kind == "angle" and not 0.0 <= self.alpha <= np.pi:
            raise ValueError(f"angle alpha={self.alpha} must lie in [0, pi] (radians)")
        if self.kind == "angle" and self.mask is not None:
            raise ValueError("an angle constraint applies to the whole gradient: drop the mask")
        if self.kind == "angle" and np.any(np.linalg.norm(self.g, axis=-1) == 0):
            raise ValueError("an angle constraint needs a nonzero direction g at every point")


def input_gradients(apply_fn, params, x):
    """``[n, d]``: grad_x h(x) at every row of x, where ``apply_fn(params, x[None])`` is the score ``[1]``."""
    return jax.vmap(jax.grad(lambda xi: apply_fn(params, xi[None])[0]))(x)


def surrogate(grads, e: Explanation, g=None, mask=None):
    """phi per point ``[n]`` for input gradients ``grads`` against the explanation ``e`` (``g``/``mask`` override
    ``e``'s arrays, so jitted code passes them as traced arguments)."""
    g = e.g if g is None else g
    mask = e.mask if mask is None else mask
    if e.kind == "matching":
        diff = grads - g
        return jnp.sum((diff if mask is None else diff * mask) ** 2, axis=-1)
    if e.kind == "angle":
        return _cone_distance(grads, g, e.alpha)
    return jnp.sum((grads * mask) ** 2, axis=-1)


def _cone_distance(grads, g, alpha: float, eps: float = 1e-12):
    """Distance from each gradient to the cone of half-angle ``alpha`` around g: with theta = angle(grad, g) and
    d = theta - alpha, it is 0 for d <= 0, ||grad|| sin(d) for 0 < d < pi/2 and ||grad|| beyond (the apex is
    nearest). theta = atan2(||grad_perp||, <grad, g>/||g||); ``eps`` keeps ||grad_perp|| differentiable on the axis."""
    unit = g / jnp.linalg.norm(g, axis=-1, keepdims=True)
    along = jnp.sum(grads * unit, -1)
    sq = jnp.sum(grads**2, -1)
    perp = jnp.sqrt(jnp.maximum(sq - along**2, 0.0) + eps)
    d = jnp.arctan2(perp, along) - alpha
    norm = jnp.sqrt(sq + eps)
    return jnp.where(d <= 0, 0.0, jnp.where(d >= jnp.pi / 2, norm, norm * jnp.sin(jnp.clip(d, 0.0, jnp.pi / 2))))


def gradient_penalty(apply_fn, params, x, e: Explanation, g=None, mask=None):
    """Mean surrogate loss (1/k) sum_j phi(h, x_j): the empirical EPAC constraint on the points x."""
    return jnp.mean(surrogate(input_gradients(apply_fn, params, x), e, g, mask))


def constrained(e: Explanation, mask=None):
    """Per point, whether the explanation constrains anything there (a matching or zero explanation whose mask is
    all zero at a point, e.g. a WRENCH text without keywords, does not)."""
    mask = e.mask if mask is None else mask
    if mask is None or e.kind == "angle":
        return None
    return jnp.asarray(mask).sum(-1) > 0


def satisfied(grads, e: Explanation, tol: float = 0.1, g=None, mask=None):
    """Per point, whether the explanation holds: relative gradient error <= ``tol`` (matching), inside the cone
    (angle: within 1e-5 of the gradient's norm), attribution below ``tol`` times the gradient's norm (zero).
    Average it over the points where :func:`constrained` is true."""
    g = e.g if g is None else g
    mask = e.mask if mask is None else mask
    if e.kind == "matching":
        diff = grads - g
        if mask is not None:
            diff, g = diff * mask, g * mask
        return jnp.linalg.norm(diff, axis=-1) <= tol * jnp.linalg.norm(g, axis=-1)
    if e.kind == "angle":
        return _cone_distance(grads, g, e.alpha, 0.0) <= 1e-5 * jnp.linalg.norm(grads, axis=-1)
    return jnp.linalg.norm(grads * mask, axis=-1) <= tol * jnp.linalg.norm(grads, axis=-1)
