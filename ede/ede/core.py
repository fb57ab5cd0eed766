"""EDE's distributional-ensemble pieces (paper Sec. 4; spec section 2.2): epistemic uncertainty from an ensemble of
quantile heads, the quantile-Huber loss of QR-DQN, UCB / Thompson action selection and the Temporally Equalized
Exploration (TEE) coefficients.

Shapes: quantiles ``theta`` are ``[batch, heads, quantiles, actions]``.
"""
from __future__ import annotations

import torch


def tau_hat(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Quantile midpoints tau_j = (2j - 1) / (2N), j = 1..N."""
    return (2 * torch.arange(n, device=device, dtype=dtype) + 1) / (2 * n)


def mean_q(theta: torch.Tensor) -> torch.Tensor:
    """mu(s, a): the mean over heads and quantiles, ``[batch, actions]``."""
    return theta.mean(dim=(1, 2))


def epistemic_uncertainty(theta: torch.Tensor) -> torch.Tensor:
    """Epistemic standard deviation ``[batch, actions]``: the unbiased variance across heads of each quantile,
    averaged over quantiles, then the square root (sigma_epi of the paper; the official ``_compute_uncertainty``)."""
    if theta.dim() != 4:
        raise ValueError(f"theta must be [batch, heads, quantiles, actions], got shape {tuple(theta.shape)}")
    if theta.shape[1] < 2:
        raise ValueError("epistemic uncertainty needs at least 2 heads (variance across heads)")
    return theta.var(dim=1, unbiased=True).mean(dim=1).sqrt()


def aleatoric_uncertainty(theta: torch.Tensor) -> torch.Tensor:
    """Aleatoric standard deviation ``[batch, actions]``: the unbiased variance over quantiles of the
    ensemble-mean quantile function (logged by the paper's code, not used for acting)."""
    return theta.mean(dim=1).var(dim=1, unbiased=True).sqrt()


def ucb_action(theta: torch.Tensor, coef: torch.Tensor | float) -> torch.Tensor:
    """argmax_a mu(s, a) + coef * sigma_epi(s, a); ``coef`` a scalar or one value per batch row (TEE actors)."""
    coef = torch.as_tensor(coef, dtype=theta.dtype, device=theta.device)
    if coef.dim() == 1:
        coef = coef[:, None]
    return (mean_q(theta) + coef * epistemic_uncertainty(theta)).argmax(-1)


def thompson_action(theta: torch.Tensor, coef: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """argmax_a mu + coef * xi_a * sigma_epi with xi_a ~ N(0, 1) i.i.d. per action and step (Crafter)."""
    xi = torch.randn(theta.shape[0], theta.shape[-1], generator=generator, dtype=theta.dtype).to(theta.device)
    return (mean_q(theta) + coef * xi * epistemic_uncertainty(theta)).argmax(-1)


def tee_coefficients(phi: float, lam: float, alpha: float, n_actors: int) -> torch.Tensor:
    """TEE: actor i uses phi * lam^(1 + alpha * i / (n_actors - 1)), fixed in time (Ape-X-style log spacing)."""
    if n_actors < 2:
        return torch.tensor([phi * lam])
    i = torch.arange(n_actors, dtype=torch.float64)
    return phi * lam ** (1 + alpha * i / (n_actors - 1))


def quantile_huber_loss(current: torch.Tensor, target: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """QR-DQN's loss for ``current`` quantiles ``[batch, N]`` (of the taken action) and ``target`` samples
    ``[batch, N']``: rho_tau(u) = |tau_i - 1{u < 0}| Huber_kappa(u) / kappa with u = T_j - theta_i, summed over i,
    averaged over j and the batch (the standard QR-DQN reduction, as in the paper's code)."""
    if current.dim() != 2 or target.dim() != 2 or current.shape[0] != target.shape[0]:
        raise ValueError(f"current [B, N] and target [B, N'] expected, got {tuple(current.shape)} and "
                         f"{tuple(target.shape)}")
    u = target[:, None, :] - current[:, :, None]  # [B, N, N']
    abs_u = u.abs()
    huber = torch.where(abs_u <= kappa, 0.5 * u ** 2, kappa * (abs_u - 0.5 * kappa))
    tau = tau_hat(current.shape[1], current.device, current.dtype)[None, :, None]
    rho = (tau - (u.detach() < 0).to(u.dtype)).abs() * huber / kappa
    return rho.sum(1).mean(1).mean()
