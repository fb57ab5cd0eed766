"""The synthetic generator and the Transitions container."""
import numpy as np
import pytest
import torch

from sinkhorn_flow.data import drifting_blobs, flows_from_memberships, make_transitions, row_normalise


def test_flows_from_memberships_hand_case():
    m = np.array([[0, 0, 1, 2, -1], [0, 1, 1, -1, 2]])  # agent 3 leaves, agent 4 was absent at t
    f = flows_from_memberships(m, 3)[0]
    expected = np.zeros((3, 3))
    expected[0, 0] = expected[0, 1] = expected[1, 1] = 1 / 3  # only the 3 agents present at both steps count
    assert np.allclose(f, expected)


def test_generator_flows_are_joint_distributions_with_membership_marginals():
    data, raw = drifting_blobs(n_agents=200, n_communities=5, n_steps=30, seed=1)
    m = raw["memberships"]
    assert len(data) == 29
    assert torch.allclose(data.flow.sum((-2, -1)), torch.ones(29, dtype=torch.float64))
    hist = np.stack([np.bincount(row, minlength=5) / 200 for row in m])
    assert np.allclose(data.a.numpy(), hist[:-1]) and np.allclose(data.b.numpy(), hist[1:])
    assert torch.allclose(data.flow.sum(-1), data.a) and torch.allclose(data.flow.sum(-2), data.b)
    # most mass stays (the spec's pilot: about 86% at the default settings)
    stay = torch.diagonal(data.flow, dim1=-2, dim2=-1).sum(-1).mean().item()
    assert 0.6 < stay < 0.98


def test_generator_is_seeded():
    a, _ = drifting_blobs(n_agents=50, n_steps=10, seed=3)
    b, _ = drifting_blobs(n_agents=50, n_steps=10, seed=3)
    c, _ = drifting_blobs(n_agents=50, n_steps=10, seed=4)
    assert torch.equal(a.flow, b.flow) and not torch.equal(a.flow, c.flow)


def test_features_cost_and_history():
    data, raw = drifting_blobs(n_agents=100, n_communities=4, n_steps=6, seed=0)
    c = raw["centres"]
    d2 = ((c[2][:, None] - c[3][None]) ** 2).sum(-1)
    assert np.allclose(data.select_features(["d2"])[2, ..., 0].numpy(), d2)
    assert torch.equal(data.cost, data.select_features(["d2"])[..., 0])
    assert torch.allclose(data.prev_trans[3, 0], torch.as_tensor(row_normalise(data.flow[2].numpy())))
    assert (data.prev_trans[0] == 0).all()  # no history before the first transition
    with pytest.raises(KeyError, match="unknown pair feature"):
        data.select_features(["nope"])


def test_slicing_and_dtype():
    data, _ = drifting_blobs(n_agents=50, n_steps=10, seed=0)
    part = data[2:5].to(dtype=torch.float32)
    assert len(part) == 3 and part.flow.dtype == torch.float32 and part.mask.dtype == torch.bool
    assert list(part.times) == [2, 3, 4]


def test_history_lags():
    flows = np.random.default_rng(0).dirichlet(np.ones(4), size=5).reshape(5, 2, 2)
    t = make_transitions(flows, np.zeros((5, 2, 2, 1)), ["z"], np.zeros((5, 2, 2)), history=2)
    assert t.prev_trans.shape == (5, 2, 2, 2)
    assert np.allclose(t.prev_trans[4, 1].numpy(), row_normalise(flows[2]))
