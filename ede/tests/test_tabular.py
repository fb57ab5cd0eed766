"""The tabular CMDP (Fig. 2): optimal returns 1.88 / 1.72, transitions, and the three learners' qualitative
result on a small batch of runs (the full 100-run study is the mini)."""
import numpy as np
import pytest

from ede import TabularCMDP, run_policy_gradient, run_q_learning


def test_grid_and_optimal_returns():
    env = TabularCMDP()
    assert env.optimal_return(env.train_start) == pytest.approx(1.88)
    assert env.optimal_return(env.test_start) == pytest.approx(1.72)
    s = np.array([env.state((0, 0))] * 4)
    s2, r, done = env.step(s, np.arange(4))  # up, down, left, right from the top-left corner
    assert s2.tolist() == [0, 5, 0, 1] and np.allclose(r, -0.04) and not done.any()
    s2, r, done = env.step(np.array([env.state((3, 0))]), np.array([3]))
    assert done[0] and r[0] == 2.0


def test_ucb_generalises_to_the_test_start_and_epsilon_greedy_does_not():
    env = TabularCMDP()
    eps = run_q_learning(env, 300, 20, "epsilon", epsilon=0.1, seed=0)
    ucb = run_q_learning(env, 300, 20, "ucb", ucb_c=10.0, seed=0)
    assert np.allclose(eps["train"][:, -1], 0) and np.allclose(ucb["train"][:, -1], 0)  # both solve training
    assert np.allclose(ucb["test"][:, -1], 0, atol=1e-9)  # UCB's values are right off the training path
    assert eps["test"][:, -1].mean() > 1.0  # epsilon-greedy's greedy policy fails from the test start


def test_policy_gradient_learns_the_training_start():
    env = TabularCMDP()
    pg = run_policy_gradient(env, 300, 20, seed=0)
    assert pg["train"][:, -1].mean() < 0.5 < pg["train"][:, 0].mean()


def test_bad_exploration_name():
    with pytest.raises(ValueError, match="explore"):
        run_q_learning(TabularCMDP(), 1, 1, "boltzmann")
