"""Oracles of EDE's core (issue #8): identical heads have zero epistemic uncertainty, the formula by hand,
quantile-Huber by hand (the official code's value 1.0 for cur = 0, target = +-1, N = 4) and its gradient sign,
UCB with coefficient 0 is greedy on the mean, TEE coefficients 18 -> ~0.5."""
import pytest
import torch

from ede import (
    aleatoric_uncertainty,
    epistemic_uncertainty,
    mean_q,
    quantile_huber_loss,
    tau_hat,
    tee_coefficients,
    thompson_action,
    ucb_action,
)


def test_identical_heads_have_zero_epistemic_uncertainty():
    head = torch.randn(3, 1, 7, 4)
    theta = head.expand(3, 5, 7, 4)
    assert torch.equal(epistemic_uncertainty(theta), torch.zeros(3, 4))
    assert torch.all(aleatoric_uncertainty(theta) > 0)


def test_epistemic_is_mean_over_quantiles_of_unbiased_head_variance_then_sqrt():
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(2, 5, 6, 3, generator=g, dtype=torch.float64)
    b, a = 1, 2
    per_quantile = []
    for j in range(6):
        vals = theta[b, :, j, a]
        m = vals.mean()
        per_quantile.append(((vals - m) ** 2).sum() / 4)  # unbiased: M - 1 = 4
    want = torch.stack(per_quantile).mean().sqrt()
    assert epistemic_uncertainty(theta)[b, a] == pytest.approx(want.item(), rel=1e-12)
    assert mean_q(theta)[b, a] == pytest.approx(theta[b, :, :, a].mean().item(), rel=1e-12)


def test_quantile_huber_loss_by_hand_and_gradient_sign():
    cur = torch.zeros(2, 4, requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    loss = quantile_huber_loss(cur, target)
    # row 1: sum_i tau_i * 0.5 = 0.5 * (1/8 + 3/8 + 5/8 + 7/8) = 1.0; row 2: sum_i (1 - tau_i) * 0.5 = 1.0
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert torch.all(cur.grad[0] < 0) and torch.all(cur.grad[1] > 0)  # descent moves each quantile toward targets
    # asymmetry: a target above every quantile pulls the high quantiles harder (tau_i weights)
    assert torch.all(cur.grad[0].diff() < 0)
    assert tau_hat(4).tolist() == [0.125, 0.375, 0.625, 0.875]


def test_quantile_huber_linear_tail():
    cur = torch.zeros(1, 2)
    far = quantile_huber_loss(cur, torch.full((1, 2), 3.0))
    # |u| = 3 > kappa = 1: Huber = 3 - 0.5 = 2.5; sum_i tau_i = 1/4 + 3/4 = 1 -> 2.5
    assert far.item() == pytest.approx(2.5)


def test_ucb_with_zero_coefficient_is_greedy_and_tee_schedule():
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(16, 5, 8, 6, generator=g)
    assert torch.equal(ucb_action(theta, 0.0), mean_q(theta).argmax(-1))
    assert torch.equal(thompson_action(theta, 0.0, g), mean_q(theta).argmax(-1))
    big = ucb_action(theta, 1e6)
    assert torch.equal(big, epistemic_uncertainty(theta).argmax(-1))  # huge bonus: most uncertain action
    phi = tee_coefficients(30, 0.6, 7, 64)
    assert phi[0].item() == pytest.approx(18.0) and phi[-1].item() == pytest.approx(30 * 0.6 ** 8, rel=1e-12)
    assert 0.49 < phi[-1].item() < 0.51 and torch.all(phi.diff() < 0)
    per_actor = ucb_action(theta, phi[:16])
    assert per_actor.shape == (16,)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="batch, heads, quantiles, actions"):
        epistemic_uncertainty(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="at least 2 heads"):
        epistemic_uncertainty(torch.zeros(1, 1, 3, 2))
    with pytest.raises(ValueError, match="current"):
        quantile_huber_loss(torch.zeros(2, 3), torch.zeros(3, 3))
