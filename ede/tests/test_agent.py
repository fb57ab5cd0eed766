"""EDE's agent: n-step returns from the time-major replay (episode ends, by hand), one minibatch per head, trunk
gradients only through the drawn head, target-head bootstrapping, networks' shapes, and learning on a toy task."""
import pytest
import torch

from ede.agent import EDEAgent, Replay
from ede.networks import EDENetwork, EnsembleQuantileHeads, ImpalaCNN, MLPTrunk, NatureCNN


def test_n_step_returns_by_hand_across_an_episode_end():
    r = Replay(capacity=16, n_envs=1, obs_shape=(1,), obs_dtype=torch.float32, n_step=3, gamma=0.5)
    rewards, dones = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], [False, False, True, False, False, False]
    for t, (rw, d) in enumerate(zip(rewards, dones)):
        r.add(torch.tensor([[float(t)]]), torch.tensor([t % 2]), torch.tensor([rw]), torch.tensor([d]))
    assert len(r) == 3  # steps 0..2 have 3 newer steps written
    s = r.sample(200, torch.Generator().manual_seed(0))
    by_t = {int(t): (float(R), float(disc), float(nx)) for t, R, disc, nx in
            zip(s["t"], s["ret"], s["discount"], s["next_obs"][:, 0])}
    assert set(by_t) == {0, 1, 2}
    assert by_t[0] == (1 + 0.5 * 2 + 0.25 * 4, 0.0, 3.0)  # the episode ends at step 2: no bootstrap
    assert by_t[1] == (2 + 0.5 * 4, 0.0, 4.0)  # shorter tail, stops at the end
    assert by_t[2] == (4.0, 0.0, 5.0)
    r.add(torch.tensor([[6.0]]), torch.tensor([0]), torch.tensor([64.0]), torch.tensor([False]))
    s = r.sample(300, torch.Generator().manual_seed(1))
    row = (s["t"] == 3).nonzero()[0, 0]
    assert s["ret"][row] == 8 + 0.5 * 16 + 0.25 * 32 and s["discount"][row] == 0.125 and s["next_obs"][row, 0] == 6
    with pytest.raises(ValueError, match="n_step"):
        Replay(8, 1, (1,), n_step=3).sample(4)


def test_network_shapes():
    assert ImpalaCNN().out_dim == 2048 and ImpalaCNN()(torch.zeros(2, 3, 64, 64, dtype=torch.uint8)).shape == (2, 2048)
    assert NatureCNN().out_dim == 3136 and NatureCNN()(torch.zeros(1, 4, 84, 84)).shape == (1, 3136)
    net = EDENetwork(MLPTrunk(6), n_actions=3, heads=5, quantiles=7, hidden=16)
    assert net(torch.zeros(4, 6)).shape == (4, 5, 7, 3)
    heads = EnsembleQuantileHeads(6, 3, 5, 7, 16)
    per_head_feat = torch.randn(5, 4, 6)
    out = heads(per_head_feat)
    for k in range(5):  # head k evaluated on its own feature batch k equals head k on the shared path
        assert torch.allclose(out[:, k], heads(per_head_feat[k])[:, k], atol=1e-6)


def _filled_replay(n_envs=4, steps=40, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = Replay(64, n_envs, (dim,), torch.float32, n_step=3, gamma=0.9)
    for _ in range(steps):
        r.add(torch.randn(n_envs, dim, generator=g), torch.randint(3, (n_envs,), generator=g),
              torch.randn(n_envs, generator=g), torch.rand(n_envs, generator=g) < 0.1)
    return r


def test_trunk_learns_only_through_the_drawn_head_and_heads_get_own_batches():
    torch.manual_seed(0)
    agent = EDEAgent(EDENetwork(MLPTrunk(6, 16), 3, heads=5, quantiles=8, hidden=16), batch_size=32)
    replay = _filled_replay()
    g = torch.Generator().manual_seed(3)
    batches = [replay.sample(32, g) for _ in range(5)]
    assert len({tuple(b["t"].tolist()) for b in batches}) == 5  # independent minibatches
    trunk = list(agent.net.trunk.parameters())
    total, per_head = agent.loss(batches, head=2)
    g_total = torch.autograd.grad(total, trunk)
    # the same trunk gradient as head 2's loss alone: the other heads' losses do not reach the trunk
    g_head2 = torch.autograd.grad(_head_loss(agent, batches, 2), trunk)
    for a, b in zip(g_total, g_head2):
        assert torch.allclose(a, b, atol=1e-6)
    agent.train_trunk_all = True  # the switch matters: every head's loss reaches the trunk then
    g_all = torch.autograd.grad(agent.loss(batches, head=2)[0], trunk)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(g_all, g_head2))
    assert per_head.shape == (5,)


def _head_loss(agent, batches, k):
    """Head k's loss alone, written out independently of EDEAgent.loss (every head sees live features)."""
    m = agent.net.heads.heads
    obs = torch.stack([b["obs"] for b in batches])
    feat = agent.net.trunk(obs.flatten(0, 1)).view(m, obs.shape[1], -1)
    theta = agent.net.heads(feat)
    act = torch.stack([b["act"] for b in batches], 1)
    cur = theta.gather(3, act[:, :, None, None].expand(-1, -1, theta.shape[2], 1)).squeeze(3)
    with torch.no_grad():
        nxt = torch.stack([b["next_obs"] for b in batches])
        tq = agent.target.heads(agent.target.trunk(nxt.flatten(0, 1)).view(m, obs.shape[1], -1))
        a_star = tq.mean(2).argmax(-1)
        tgt = tq.gather(3, a_star[:, :, None, None].expand(-1, -1, tq.shape[2], 1)).squeeze(3)
        ret = torch.stack([b["ret"] for b in batches], 1)
        disc = torch.stack([b["discount"] for b in batches], 1)
        tgt = ret[..., None] + disc[..., None] * tgt
    from ede.core import quantile_huber_loss

    return quantile_huber_loss(cur[:, k], tgt[:, k])


def test_updates_fit_a_constant_reward_and_copy_the_target():
    """Every transition pays 1 and never ends: with gamma 0.5 and 3-step returns the fixed point is
    Q = 1 + 0.5 + 0.25 + 0.125 Q -> Q = 2 for every action; the mean quantile approaches it."""
    torch.manual_seed(0)
    r = Replay(64, 2, (4,), torch.float32, n_step=3, gamma=0.5)
    g = torch.Generator().manual_seed(0)
    for _ in range(64):
        r.add(torch.randn(2, 4, generator=g), torch.randint(2, (2,), generator=g), torch.ones(2),
              torch.zeros(2, dtype=torch.bool))
    agent = EDEAgent(EDENetwork(MLPTrunk(4, 32), 2, heads=3, quantiles=5, hidden=32), lr=3e-3, batch_size=64,
                     target_update=50)
    for _ in range(400):
        out = agent.update(r)
    assert agent.updates == 400 and len(out["per_head"]) == 3
    q = agent.net(r.obs[:8, 0]).mean(2)  # [B, M, A]
    assert torch.allclose(q, torch.full_like(q, 2.0), atol=0.25), q
    for p, t in zip(agent.net.parameters(), agent.target.parameters()):
        assert torch.equal(p, t)  # copied at update 400
    assert agent.act(r.obs[:4, 0], torch.zeros(4)).shape == (4,) and agent.uncertainty(r.obs[:4, 0]).shape == (4, 2)
