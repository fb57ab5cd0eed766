"""Non-learned baselines (spec section 2): independent coupling, persistence, entropic OT with a fixed hand
cost (eps tuned on the training split), and exact EMD (POT). All return log P (T, K, L)."""
from __future__ import annotations

import numpy as np
import torch

from sinkhorn_flow.metrics import flow_metrics
from sinkhorn_flow.sinkhorn import sinkhorn


def independent(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log (a b^T): everyone moves independently of where they were."""
    return torch.log(a.unsqueeze(-1) * b.unsqueeze(-2))


def persistence(prev_trans: torch.Tensor, a: torch.Tensor, b: torch.Tensor, smoothing: float = 1e-3) -> torch.Tensor:
    """The last observed transition probabilities applied to today's masses: P_ij = a_i T_prev_ij.

    Rows with no history (the first transition, newborn communities) fall back to b / sum(b). A
    ``smoothing`` share of the independent coupling keeps the KL finite when a new move appears.
    prev_trans: (T, K, L), the lag-1 row-normalised flow.
    """
    known = prev_trans.sum(-1, keepdim=True) > 0
    fallback = (b / b.sum(-1, keepdim=True)).unsqueeze(-2).expand_as(prev_trans)
    p = a.unsqueeze(-1) * torch.where(known, prev_trans, fallback)
    return torch.log((1 - smoothing) * p + smoothing * a.unsqueeze(-1) * b.unsqueeze(-2))


def fixed_cost_ot(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor, eps: float, mask: torch.Tensor,
                  n_iters: int = 500) -> torch.Tensor:
    """Entropic OT plan for the hand cost C: sinkhorn(S = -C, a, b, eps)."""
    return sinkhorn(-cost, a, b, n_iters=n_iters, eps=eps, mask=mask, log=True)


def tune_eps(cost, a, b, flow, mask, grid=(0.03, 0.1, 0.3, 1.0, 3.0, 10.0), n_iters: int = 500) -> tuple[float, dict]:
    """The eps of ``grid`` with the lowest mean KL on the given (training) transitions; returns (eps, {eps: kl})."""
    kls = {}
    for eps in grid:
        log_p = fixed_cost_ot(cost, a, b, eps, mask, n_iters)
        kls[float(eps)] = flow_metrics(flow, log_p, a, b)["kl"].mean().item()
    best = min(kls, key=lambda e: (np.nan_to_num(kls[e], nan=np.inf), e))
    return best, kls


def emd(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact (unregularised) OT plan for the hand cost with POT's network simplex, one problem per transition.

    Its plan is sparse, so KL(F || P) is infinite whenever the true flow has more support: report TV.
    """
    import ot

    out = np.zeros(tuple(cost.shape))
    a_np, b_np, c_np = a.double().cpu().numpy(), b.double().cpu().numpy(), cost.double().cpu().numpy()
    for t in range(c_np.shape[0]):  # POT solves one LP at a time
        rows, cols = a_np[t] > 0, b_np[t] > 0
        ma, mb = a_np[t, rows], b_np[t, cols]
        out[t][np.ix_(rows, cols)] = ot.emd(ma, mb * ma.sum() / mb.sum(), c_np[t][np.ix_(rows, cols)])
    return torch.log(torch.as_tensor(out, dtype=cost.dtype, device=cost.device))
