"""The hypothesis classes: a linear model and an MLP (two-layer ReLU by default), both Flax linen modules mapping
``[n, d]`` inputs to a scalar score ``[n]`` (a regression output or a binary logit). The explanation of a model at
x is the input gradient of that score (``epac.constraints.input_gradients``)."""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "softplus": nn.softplus, "tanh": jnp.tanh}


class Linear(nn.Module):
    """h(x) = <w, x> (+ b): its input gradient is w everywhere."""

    use_bias: bool = False

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, use_bias=self.use_bias)(x)[..., 0]


class MLP(nn.Module):
    """h(x) = w^T act(U_L ... act(U_1 x)) with ``hidden`` widths; one hidden layer is the paper's two-layer net."""

    hidden: Sequence[int] = (64,)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r}: one of {sorted(ACTIVATIONS)}")
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act(nn.Dense(h)(x))
        return nn.Dense(1)(x)[..., 0]


def make_model(kind: str, hidden: Sequence[int] = (64,), activation: str = "relu", use_bias: bool = False):
    """``kind``: linear | mlp."""
    if kind == "linear":
        return Linear(use_bias=use_bias)
    if kind == "mlp":
        return MLP(hidden=tuple(hidden), activation=activation)
    raise ValueError(f"model.kind={kind!r}: linear or mlp")
