"""Non-learned baselines against closed forms and POT."""
import math

import numpy as np
import ot
import torch
from conftest import random_problem

from sinkhorn_flow import baselines
from sinkhorn_flow.data import drifting_blobs


def test_independent_is_outer_product():
    _, a, b = random_problem(seed=1)
    assert torch.allclose(baselines.independent(a, b).exp(), a[:, None] * b[None])


def test_persistence_applies_last_transition_to_todays_mass():
    _, a, b = random_problem(3, 3, seed=2)
    prev = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.0, 0.0], [0.2, 0.3, 0.5]], dtype=a.dtype)
    p = baselines.persistence(prev[None], a[None], b[None], smoothing=0.0).exp()[0]
    assert torch.allclose(p[0], a[0] * prev[0]) and torch.allclose(p[2], a[2] * prev[2])
    assert torch.allclose(p[1], a[1] * b / b.sum())  # no history: fall back to b
    assert torch.allclose(p.sum(-1), a)


def test_fixed_cost_ot_equals_pot():
    _, a, b = random_problem(5, 5, seed=3)
    cost = torch.rand(5, 5, dtype=a.dtype)
    mask = torch.ones(5, 5, dtype=torch.bool)
    p = baselines.fixed_cost_ot(cost[None], a[None], b[None], 0.3, mask[None], n_iters=3000).exp()[0]
    ref = ot.sinkhorn(a.numpy(), b.numpy(), cost.numpy(), reg=0.3, numItermax=100000, stopThr=1e-15)
    assert np.abs(p.numpy() - ref).max() < 1e-10


def test_emd_equals_pot_and_handles_empty_communities():
    _, a, b = random_problem(4, 4, seed=4)
    a = torch.tensor([0.5, 0.0, 0.25, 0.25], dtype=a.dtype)
    cost = torch.rand(4, 4, dtype=a.dtype)
    p = baselines.emd(cost[None], a[None], b[None]).exp()[0]
    ref = np.zeros((4, 4))
    ref[[0, 2, 3]] = ot.emd(a.numpy()[[0, 2, 3]], b.numpy(), cost.numpy()[[0, 2, 3]])
    assert np.allclose(p.numpy(), ref) and (p[1] == 0).all()


def test_tune_eps_reports_true_train_kls_and_picks_the_best():
    from sinkhorn_flow.metrics import flow_metrics

    data, _ = drifting_blobs(n_agents=200, n_steps=20, seed=0)
    eps, kls = baselines.tune_eps(data.cost, data.a, data.b, data.flow, data.mask, grid=(0.1, 1.0, 10.0))
    for e in (0.1, 1.0, 10.0):  # each reported KL is the KL of that eps's plan, recomputed independently
        p = baselines.fixed_cost_ot(data.cost, data.a, data.b, e, data.mask)
        assert math.isclose(kls[e], flow_metrics(data.flow, p, data.a, data.b)["kl"].mean().item(), rel_tol=1e-9)
    assert eps == 1.0 and kls[1.0] < kls[0.1] and kls[1.0] < kls[10.0]  # an interior optimum on this data
