"""Flow-prediction metrics (spec: KL(F || P), total variation, marginal errors, per-individual NLL)."""
from __future__ import annotations

import torch


def _xlogy(f: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """f * log p with 0 where f == 0 (so masked pairs with log p = -inf never give 0 * -inf = NaN)."""
    return torch.where(f > 0, f * log_p, torch.zeros_like(f))


def cross_entropy(flow: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """-sum_ij F_ij log P_ij per transition: the training loss, = KL(F || P) + H(F)."""
    return -_xlogy(flow, log_p).sum((-2, -1))


def flow_metrics(flow: torch.Tensor, log_p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict:
    """Per-transition metrics of a predicted flow P = exp(log_p) against the observed F, as a dict of (T,).

    kl: KL(F || P) (inf when P misses observed mass, e.g. exact EMD); tv: 0.5 |F - P|_1;
    nll: per-individual transition NLL -sum F_ij log(P_ij / a_i); row_l1 / col_l1: marginal violations.
    """
    p = log_p.exp()
    kl = _xlogy(flow, torch.log(flow.clamp_min(1e-300))).sum((-2, -1)) + cross_entropy(flow, log_p)
    log_a = torch.log(a.clamp_min(1e-300)).unsqueeze(-1)
    nll = -_xlogy(flow, log_p - log_a).sum((-2, -1))
    return {
        "kl": kl,
        "tv": 0.5 * (flow - p).abs().sum((-2, -1)),
        "nll": nll,
        "row_l1": (p.sum(-1) - a).abs().sum(-1),
        "col_l1": (p.sum(-2) - b).abs().sum(-1),
    }
