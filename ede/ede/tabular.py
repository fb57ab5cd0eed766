"""The paper's tabular contextual MDP (Fig. 2; spec section 2.1): a 5x5 grid, one shared goal, a training start and
a test start, and the three learners of the figure: Q-learning with epsilon-greedy, Q-learning with UCB, and a
softmax policy gradient with an entropy bonus. Every learner runs R independent runs as one batch of numpy arrays.

Reconstructed details (the paper's appendix could not be read; spec [verify]): reward on entering a cell (-0.04,
+2 for the goal), episodes end at the goal or after H = 100 steps, moving into a wall stays in place, Q0 = 0,
random tie-breaking among equal values; the values are config keys.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MOVES = np.array([[0, -1], [0, 1], [-1, 0], [1, 0]])  # up, down, left, right as (dx, dy); y = 0 is the top row


@dataclass
class TabularCMDP:
    """The grid: states are cells s = y * size + x; contexts differ only in the start state."""

    size: int = 5
    goal: tuple[int, int] = (4, 0)
    train_start: tuple[int, int] = (0, 0)
    test_start: tuple[int, int] = (0, 4)
    step_reward: float = -0.04
    goal_reward: float = 2.0
    horizon: int = 100

    @property
    def n_states(self) -> int:
        return self.size * self.size

    n_actions: int = 4

    def state(self, xy: tuple[int, int]) -> int:
        """The index of cell (x, y)."""
        return xy[1] * self.size + xy[0]

    def step(self, s: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorised transition: (next states, rewards, done) for arrays of states and actions."""
        x, y = s % self.size, s // self.size
        x2 = np.clip(x + MOVES[a, 0], 0, self.size - 1)
        y2 = np.clip(y + MOVES[a, 1], 0, self.size - 1)
        s2 = y2 * self.size + x2
        done = s2 == self.state(self.goal)
        return s2, np.where(done, self.goal_reward, self.step_reward), done

    def optimal_return(self, start: tuple[int, int]) -> float:
        """Undiscounted return of a shortest path (Manhattan distance on an empty grid): the goal reward plus
        the step reward of every cell entered before it."""
        d = abs(start[0] - self.goal[0]) + abs(start[1] - self.goal[1])
        return self.goal_reward + (d - 1) * self.step_reward if d else 0.0


def _argmax_random_ties(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """argmax over the last axis, ties broken uniformly at random (untrained greedy play is a random walk)."""
    best = values == values.max(-1, keepdims=True)
    return np.argmax(best * rng.random(values.shape), -1)


def rollout(env: TabularCMDP, policy, start: tuple[int, int], runs: int, rng: np.random.Generator,
            learn=None) -> dict:
    """One episode per run from ``start``: ``policy(s, run_idx) -> actions`` for the active runs; ``learn`` (if
    given) is called per step with (run_idx, s, a, r, s2, done). Returns per-run undiscounted returns, lengths and
    the trajectory arrays [runs, H] (states, actions, rewards, active mask)."""
    s = np.full(runs, env.state(start))
    ret, length = np.zeros(runs), np.zeros(runs, dtype=int)
    active = np.ones(runs, dtype=bool)
    traj = {k: np.zeros((runs, env.horizon), dtype=t) for k, t in
            (("s", int), ("a", int), ("r", float), ("m", bool))}
    for t in range(env.horizon):
        idx = np.nonzero(active)[0]
        if len(idx) == 0:
            break
        a = policy(s[idx], idx)
        s2, r, done = env.step(s[idx], a)
        if learn is not None:
            learn(idx, s[idx], a, r, s2, done)
        traj["s"][idx, t], traj["a"][idx, t], traj["r"][idx, t], traj["m"][idx, t] = s[idx], a, r, True
        ret[idx] += r
        length[idx] += 1
        s[idx] = s2
        active[idx[done]] = False
    return {"return": ret, "length": length, **traj}


def run_q_learning(env: TabularCMDP, episodes: int, runs: int, explore: str = "epsilon", epsilon: float = 0.1,
                   ucb_c: float = 10.0, alpha: float = 0.1, gamma: float = 0.9, eval_every: int = 10,
                   seed: int = 0) -> dict:
    """Tabular Q-learning from the training start only, with epsilon-greedy or UCB exploration
    (a = argmax Q + c sqrt(ln(N(s) + 1) / N(s, a)), untried actions first). Every ``eval_every`` episodes a
    greedy rollout from each start measures suboptimality = optimal return - achieved return.
    Returns {episodes, train, test}: suboptimality curves [runs, n_evals]."""
    if explore not in ("epsilon", "ucb"):
        raise ValueError(f"explore={explore!r}: use epsilon or ucb")
    rng = np.random.default_rng(seed)
    q = np.zeros((runs, env.n_states, env.n_actions))
    n_sa = np.zeros_like(q)

    def behaviour(s, idx):
        qs = q[idx, s]
        if explore == "epsilon":
            greedy = _argmax_random_ties(qs, rng)
            rand = rng.integers(env.n_actions, size=len(idx))
            return np.where(rng.random(len(idx)) < epsilon, rand, greedy)
        n = n_sa[idx, s]
        bonus = ucb_c * np.sqrt(np.log(n.sum(-1, keepdims=True) + 1) / np.maximum(n, 1))
        return _argmax_random_ties(np.where(n == 0, np.inf, qs + bonus), rng)

    def learn(idx, s, a, r, s2, done):
        target = r + gamma * (~done) * q[idx, s2].max(-1)
        q[idx, s, a] += alpha * (target - q[idx, s, a])
        n_sa[idx, s, a] += 1

    greedy = lambda s, idx: _argmax_random_ties(q[idx, s], rng)  # noqa: E731
    return _train_and_evaluate(env, episodes, runs, eval_every, rng, behaviour, learn, greedy)


def run_policy_gradient(env: TabularCMDP, episodes: int, runs: int, lr: float = 0.1, entropy: float = 0.01,
                        gamma: float = 0.99, eval_every: int = 10, seed: int = 0) -> dict:
    """Tabular softmax REINFORCE with an entropy bonus, from the training start; evaluated by sampling its policy
    (as the figure's PG curve). Returns suboptimality curves like ``run_q_learning``."""
    rng = np.random.default_rng(seed)
    logits = np.zeros((runs, env.n_states, env.n_actions))

    def probs(idx, s):
        z = logits[idx, s]
        z = np.exp(z - z.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)

    def sample(s, idx):
        p = probs(idx, s)
        return (p.cumsum(-1) > rng.random((len(idx), 1))).argmax(-1)

    def after_episode(tr):
        r, m = tr["r"], tr["m"]
        g = np.zeros_like(r)
        acc = np.zeros(r.shape[0])
        for t in range(r.shape[1] - 1, -1, -1):  # discounted returns-to-go, backwards over time (H steps)
            acc = np.where(m[:, t], r[:, t] + gamma * acc, 0.0)
            g[:, t] = acc
        rows = np.nonzero(m)
        s, a = tr["s"][rows], tr["a"][rows]
        p = probs(rows[0], s)
        onehot = np.eye(env.n_actions)[a]
        logp = np.log(p + 1e-12)
        ent_grad = -p * (logp - (p * logp).sum(-1, keepdims=True))  # d(entropy)/d(logits)
        grad = g[rows][:, None] * (onehot - p) + entropy * ent_grad
        np.add.at(logits, (rows[0], s), lr * grad)

    return _train_and_evaluate(env, episodes, runs, eval_every, rng, sample, None, sample,
                               after_episode=after_episode)


def _train_and_evaluate(env, episodes, runs, eval_every, rng, behaviour, learn, evaluate_policy,
                        after_episode=None) -> dict:
    """Train from the training start; every ``eval_every`` episodes (and at the end) one evaluation rollout per
    run from each start; suboptimality = optimal return - achieved return."""
    opt_train, opt_test = env.optimal_return(env.train_start), env.optimal_return(env.test_start)
    evals, train_sub, test_sub = [], [], []
    for ep in range(episodes):
        tr = rollout(env, behaviour, env.train_start, runs, rng, learn)
        if after_episode is not None:
            after_episode(tr)
        if ep % eval_every == 0 or ep == episodes - 1:
            evals.append(ep)
            train_sub.append(opt_train - rollout(env, evaluate_policy, env.train_start, runs, rng)["return"])
            test_sub.append(opt_test - rollout(env, evaluate_policy, env.test_start, runs, rng)["return"])
    return {"episodes": np.array(evals), "train": np.stack(train_sub, 1), "test": np.stack(test_sub, 1)}
