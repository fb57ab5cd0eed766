"""The pieces behind the baselines and the Fig. 4 ablation: frame stacks rebuilt by the replay equal the env's own,
checkpointed replay state, DQN's loss, UA-DQN's ensemble target, NoisyNet heads, the explorers, PPO's GAE."""
import numpy as np
import pytest
import torch

from ede.agent import EDEAgent, Replay
from ede.loop import Explorer, GridLevels
from ede.networks import EDENetwork, EnsembleQuantileHeads, MLPTrunk
from ede.ppo import ActorCritic, PPOAgent, gae, train_ppo


class StackedCounter:
    """A vector env whose frame at step t of env e is the value (e * 1000 + t) % 251 + 1 (never 0) and whose
    observation is the stack of the last k frames, zero-padded at an episode start; episodes end at random."""

    def __init__(self, n=3, k=4, seed=0):
        self.n, self.k, self.t, self.rng = n, k, 0, np.random.default_rng(seed)
        self.stack = np.zeros((n, k, 1, 2), np.uint8)

    def _frame(self):
        return ((np.arange(self.n) * 1000 + self.t) % 251 + 1).astype(np.uint8)

    def reset(self):
        self.stack[:] = 0
        self.stack[:, -1] = self._frame()[:, None, None]
        return self.stack.copy().reshape(self.n, self.k, 2)

    def step(self):
        self.t += 1
        done = self.rng.random(self.n) < 0.15
        self.stack[:, :-1] = self.stack[:, 1:]
        self.stack[done] = 0
        self.stack[:, -1] = self._frame()[:, None, None]
        return self.stack.copy().reshape(self.n, self.k, 2), done


def test_replay_rebuilds_the_envs_frame_stacks():
    env, k = StackedCounter(), 4
    r = Replay(40, env.n, (k, 2), torch.uint8, n_step=3, gamma=0.9, frame_stack=k)
    seen = {}
    obs = env.reset()
    for t in range(100):  # wraps the 40-step ring twice
        seen[t] = obs
        nxt, done = env.step()
        r.add(torch.as_tensor(obs), torch.zeros(env.n), torch.zeros(env.n), torch.as_tensor(done))
        obs = nxt
    s = r.sample(500, torch.Generator().manual_seed(0))
    step_of = {int(t): 100 - 1 - ((r.ptr - 1 - int(t)) % r.T) for t in s["t"].unique()}  # ring slot -> env step
    for i in range(500):
        t, e = step_of[int(s["t"][i])], int(s["e"][i])
        assert np.array_equal(s["obs"][i].numpy(), seen[t][e])
    assert len(r) == (40 - 3 - (k - 1)) * env.n  # a full ring keeps k - 1 steps of history behind the oldest sample


def test_frame_stack_before_the_ring_fills_is_zero_padded():
    r = Replay(10, 1, (4, 1), torch.uint8, n_step=1, frame_stack=4)
    for t in range(9):  # slots 0..8 written, slot 9 not: step 0's history must not wrap onto slots 6..8
        r.add(torch.full((1, 4, 1), t + 1, dtype=torch.uint8), torch.zeros(1), torch.zeros(1), torch.zeros(1))
    stack = r._stack(torch.tensor([0, 2]), torch.tensor([0, 0]))
    assert stack[0].flatten().tolist() == [0, 0, 0, 1] and stack[1].flatten().tolist() == [0, 1, 2, 3]


def test_replay_state_round_trip_and_boundary():
    r = Replay(10, 2, (3,), torch.float32, n_step=2, gamma=0.5)
    for t in range(4):
        r.add(torch.full((2, 3), float(t)), torch.tensor([t, t]), torch.ones(2), torch.zeros(2, dtype=torch.bool))
    st = r.state_dict()
    assert st["obs"].shape == (4, 2, 3)  # only the filled part is saved
    r2 = Replay(10, 2, (3,), torch.float32, n_step=2, gamma=0.5)
    r2.load_state_dict(st)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = r.sample(16, g1), r2.sample(16, g2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    r2.mark_boundary()
    assert r2.done[3].all() and not r2.done[:3].any()


def _dqn_batch(m=2, b=4, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"obs": torch.randn(m, b, dim, generator=g), "act": torch.randint(2, (m, b), generator=g),
            "ret": torch.randn(m, b, generator=g), "next_obs": torch.randn(m, b, dim, generator=g),
            "discount": torch.full((m, b), 0.9)}


def test_dqn_loss_is_huber_on_the_taken_action():
    torch.manual_seed(0)
    agent = EDEAgent(EDENetwork(MLPTrunk(3, 8), 2, heads=2, quantiles=1, hidden=8), loss="huber")
    batch = _dqn_batch()
    total, per_head = agent.loss(batch, head=0)
    with torch.no_grad():
        for k in range(2):
            q = agent.net(batch["obs"][k])[:, k, 0]  # [B, A] of head k on its own minibatch
            tq = agent.target(batch["next_obs"][k])[:, k, 0]
            y = batch["ret"][k] + 0.9 * tq.max(-1).values
            u = y - q.gather(1, batch["act"][k][:, None]).squeeze(1)
            hub = torch.where(u.abs() <= 1, 0.5 * u ** 2, u.abs() - 0.5).mean()
            assert per_head[k].item() == pytest.approx(hub.item(), rel=1e-5)
    with pytest.raises(ValueError, match="quantiles=1"):
        EDEAgent(EDENetwork(MLPTrunk(3, 8), 2, heads=2, quantiles=4, hidden=8), loss="huber")


def test_uadqn_heads_share_the_ensemble_mean_target(monkeypatch):
    torch.manual_seed(0)
    agent = EDEAgent(EDENetwork(MLPTrunk(3, 8), 5, heads=3, quantiles=4, hidden=8), target="ensemble")
    batch = _dqn_batch(m=3, b=16)
    batch["next_obs"][:] = 20 * batch["next_obs"][0]  # every head sees the same (spread-out) next observations
    batch["ret"][:] = batch["ret"][0]
    t = []

    def spy(current, target, kappa=1.0):
        t.append(target)
        return current.sum() * 0

    monkeypatch.setattr("ede.agent.quantile_huber_loss", spy)
    agent.loss(batch, 0)
    assert torch.allclose(t[0], t[1]) and torch.allclose(t[1], t[2])  # one target for all heads
    with torch.no_grad():
        ens = agent.target(batch["next_obs"][0]).mean(1)  # [B, N, A] ensemble mean
        a = ens.mean(1).argmax(-1)
        ref = batch["ret"][0][:, None] + 0.9 * ens[torch.arange(16), :, a]
    assert len(a.unique()) > 1 and torch.allclose(t[0], ref, atol=1e-6)


def test_noisy_heads():
    torch.manual_seed(0)
    h = EnsembleQuantileHeads(6, 3, heads=2, quantiles=4, hidden=8, noisy=True)
    x = torch.randn(5, 6)
    a, b = h(x), h(x)
    assert a.shape == (5, 2, 4, 3) and not torch.allclose(a, b)  # fresh noise at every call
    for name in ("sw1", "sb1", "sw2", "sb2"):
        getattr(h, name).data.zero_()
    plain = EnsembleQuantileHeads(6, 3, heads=2, quantiles=4, hidden=8)
    plain.load_state_dict({k: v for k, v in h.state_dict().items() if not k.startswith("s")})
    assert torch.allclose(h(x), plain(x))  # sigma = 0: the noiseless heads
    h.sw2.data.fill_(0.1)
    h(x).sum().backward()
    assert h.sw2.grad.abs().sum() > 0  # the noise scales are learned


def test_explorers():
    ex = Explorer("epsilon", 64, 5, 1, lam=0.6, alpha=7.0, tee=True)
    eps = ex.epsilon(0)
    assert eps[0] == pytest.approx(0.6) and eps[-1] == pytest.approx(0.6 ** 8) and (np.diff(eps) < 0).all()
    assert Explorer("epsilon", 4, 5, 1, tee=False, start_steps=10, eps_decay=8000).epsilon(10)[0] == pytest.approx(1.0)
    # bootstrapped DQN: head k of this network prefers action k; each actor follows its own head
    torch.manual_seed(0)
    net = EDENetwork(MLPTrunk(2, 4), 3, heads=3, quantiles=1, hidden=4)
    with torch.no_grad():
        net.heads.w2.zero_()
        net.heads.b2.zero_()
        for k in range(3):
            net.heads.b2[k, k] = 1.0
    agent = EDEAgent(net, loss="huber")
    boot = Explorer("bootstrap", 6, 3, 3, tee=True, lam=1e-9)  # eps ~ 0
    act = boot(agent, torch.zeros(6, 2), 0)
    assert np.array_equal(act, boot.head)
    before = boot.head.copy()
    boot.episode_end(np.array([False] * 6))
    assert np.array_equal(boot.head, before)
    # ez-greedy: a random action, once drawn, is repeated for its zeta-distributed duration
    ez = Explorer("ez_greedy", 1, 7, 1, tee=False, eps_decay=1e9, seed=1)  # eps = 1: always exploring
    acts = [int(ez(_ConstAgent(), torch.zeros(1, 2), 0)[0]) for _ in range(400)]
    runs = np.diff(np.flatnonzero(np.diff(acts) != 0))
    assert runs.max() > 3  # long repeats happen (P(n > 3) = 1 - (1 + 1/4 + 1/9) / zeta(2) ~ 0.17 per draw)
    with pytest.raises(ValueError, match="explore"):
        Explorer("boltzmann", 2, 3, 1)


class _ConstAgent:
    def greedy(self, obs):
        return torch.zeros(len(obs), dtype=torch.long)


def test_gae_by_hand():
    rew = torch.tensor([[1.0], [0.0], [2.0]])
    val = torch.tensor([[0.5], [0.2], [0.1]])
    done = torch.tensor([[False], [True], [False]])
    last = torch.tensor([0.3])
    adv, ret = gae(rew, val, done, last, gamma=0.9, lam=0.8)
    d2 = 2.0 + 0.9 * 0.3 - 0.1
    d1 = 0.0 - 0.2  # the episode ended after step 1: no bootstrap
    d0 = 1.0 + 0.9 * 0.2 - 0.5
    a1 = d1
    a0 = d0 + 0.9 * 0.8 * a1
    assert torch.allclose(adv[:, 0], torch.tensor([a0, a1, d2])) and torch.allclose(ret, adv + val)


def test_ppo_learns_the_training_start():
    torch.manual_seed(0)
    env = GridLevels(8, [(0, 0)], seed=0, horizon=20)
    agent = PPOAgent(ActorCritic(MLPTrunk(25, 32), 4, 32), lr=3e-3, gamma=0.99, epochs=4, minibatches=2, seed=0)
    out = train_ppo(agent, env, 1200, n_steps=32, normalize_rewards=False)
    assert out["steps_done"] == 1200 and np.isfinite(out["last_loss"])
    assert np.mean(out["episode_returns"][-50:]) > 1.8  # the optimum is 1.88 (4 moves)
