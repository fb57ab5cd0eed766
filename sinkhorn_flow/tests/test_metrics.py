"""Flow metrics against closed forms."""
import math

import torch

from sinkhorn_flow.metrics import cross_entropy, flow_metrics


def test_perfect_prediction_has_zero_kl_tv_and_marginal_errors():
    f = torch.tensor([[0.5, 0.1], [0.0, 0.4]], dtype=torch.float64)
    m = flow_metrics(f, torch.log(f), f.sum(-1), f.sum(-2))
    assert all(abs(m[k].item()) < 1e-15 for k in ("kl", "tv", "row_l1", "col_l1"))  # exp(log f) rounds


def test_hand_computed_kl_tv_nll():
    f = torch.tensor([[0.5, 0.0], [0.25, 0.25]], dtype=torch.float64)
    p = torch.tensor([[0.25, 0.25], [0.25, 0.25]], dtype=torch.float64)
    a, b = f.sum(-1), f.sum(-2)
    m = flow_metrics(f, torch.log(p), a, b)
    assert math.isclose(m["kl"].item(), 0.5 * math.log(2))  # 0.5 log(0.5/0.25) + 2 x 0.25 log 1
    assert math.isclose(m["tv"].item(), 0.25)
    # per-individual NLL: -sum F log(P_ij / a_i) with a = (0.5, 0.5): every P_ij / a_i = 0.5
    assert math.isclose(m["nll"].item(), math.log(2))
    assert math.isclose(cross_entropy(f, torch.log(p)).item(), math.log(4))
    assert math.isclose(m["col_l1"].item(), 0.5)  # P^T 1 = (0.5, 0.5) vs b = (0.75, 0.25)


def test_missing_support_gives_infinite_kl_not_nan():
    f = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    m = flow_metrics(f, torch.log(p), f.sum(-1), f.sum(-2))
    assert math.isinf(m["kl"].item()) and not math.isnan(m["tv"].item())
