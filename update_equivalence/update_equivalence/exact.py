"""Exact (infinite-budget) update-equivalent planning in small games, and the tabular learners it is equivalent to.

``exact_search_policy`` is what a decision-time planner with unlimited budget plays: at every information state s it
computes q(s, .) exactly under the common blueprint (the reach-weighted average of the infostate's history action
values) and applies :func:`update_equivalence.update` there. By update equivalence this is one global iterate of
the corresponding learning algorithm, which ``MMDLearner`` implements independently on top of OpenSpiel's own
action-value tree walk.
"""
from __future__ import annotations

import functools

import numpy as np

from update_equivalence.tree import GameTree
from update_equivalence.update import update


def load_game(name: str):
    """``pyspiel.load_game`` with the list of known names in the error."""
    import pyspiel

    try:
        return pyspiel.load_game(name)
    except pyspiel.SpielError as e:
        raise ValueError(f"unknown or malformed OpenSpiel game string {name!r} ({e}); e.g. kuhn_poker, leduc_poker, "
                         "dark_hex(board_size=2,gameversion=adh), liars_dice(dice_sides=4), tiny_hanabi, "
                         "phantom_ttt") from None


@functools.lru_cache(maxsize=8)
def _tree(game_str: str) -> GameTree:
    return GameTree(load_game(game_str))


def game_tree(game) -> GameTree:
    """The (cached) flat tree of a ``pyspiel.Game``."""
    return _tree(str(game))


def _to_tabular(tree: GameTree, arr: np.ndarray):
    pol = tree.tabular.__copy__(copy_action_probability_array=False)
    pol.action_probability_array = arr
    return pol


def exact_search_policy(game, blueprint, eta: float, alpha: float = 0.0, magnet=None, tie_break: str = "uniform"):
    """The policy of exact update-equivalent search at every infostate: ``update(pi(s), q_pi(s), eta, alpha,
    magnet(s))`` with q under ``blueprint`` for everyone (an OpenSpiel policy or a ``[n_infostates, A]`` array in
    ``TabularPolicy`` order); ``tie_break`` for the greedy step (eta = inf). Returns an OpenSpiel ``TabularPolicy``."""
    tree = game_tree(game)
    pi = tree.policy_array(blueprint)
    rho = None if magnet is None else tree.policy_array(magnet)
    q, _ = tree.action_values(pi)
    return _to_tabular(tree, update(pi, q, eta, alpha, rho, tree.legal, tie_break))


def exploitability(game, policy) -> float:
    """Exact exploitability (NashConv / 2) of a two-player zero-sum game's policy (OpenSpiel's own computation)."""
    import pyspiel
    from open_spiel.python.algorithms import exploitability as ex

    if game.num_players() != 2 or game.get_type().utility != pyspiel.GameType.Utility.ZERO_SUM:
        raise ValueError(f"exploitability is defined here for two-player zero-sum games; {game} is "
                         f"{game.get_type().utility}: use expected_return")
    return float(ex.exploitability(game, policy))


def expected_return(game, policy) -> np.ndarray:
    """Every player's expected return when all play ``policy`` (exact, on the flat tree)."""
    tree = game_tree(game)
    return tree.expected_returns(tree.policy_array(policy))


class MMDLearner:
    """Tabular magnetic mirror descent (Sokota et al. 2023) as a learning algorithm: every iteration updates all
    infostates at once with action values from OpenSpiel's ``TreeWalkCalculator`` (the counterfactual-reach-weighted
    q, computed independently of :class:`GameTree`), then moves the magnet toward the new policy with rate
    ``magnet_lr`` (rho' ∝ rho^(1 - m) pi'^m; 0 keeps it fixed)."""

    def __init__(self, game, eta: float, alpha: float = 0.0, magnet=None, magnet_lr: float = 0.0, policy=None):
        from open_spiel.python import policy as osp
        from open_spiel.python.algorithms.action_value import TreeWalkCalculator

        self.game, self.eta, self.alpha, self.magnet_lr = game, eta, alpha, magnet_lr
        self.policy = osp.TabularPolicy(game) if policy is None else policy.__copy__()
        self.legal = self.policy.legal_actions_mask.astype(bool)
        self.magnet = (self.legal / self.legal.sum(1, keepdims=True) if magnet is None
                       else np.asarray(magnet.action_probability_array, dtype=np.float64).copy())
        self._calc = TreeWalkCalculator(game)

    def action_values(self) -> np.ndarray:
        """q of every infostate under the current policy (all players), ``TabularPolicy`` order."""
        st = self._calc([self.policy] * self.game.num_players(), self.policy)
        cf = np.asarray(st.counterfactual_reach_probs)[:, None]
        num = np.asarray(st.sum_cfr_reach_by_action_value)
        return np.divide(num, cf, out=np.zeros_like(num), where=cf > 0)

    def step(self):
        """One global iterate; returns the new policy (an OpenSpiel ``TabularPolicy``)."""
        pi = np.asarray(self.policy.action_probability_array, dtype=np.float64)
        new = update(pi, self.action_values(), self.eta, self.alpha, self.magnet, self.legal)
        if self.magnet_lr:
            with np.errstate(divide="ignore"):
                logm = (1 - self.magnet_lr) * np.log(self.magnet) + self.magnet_lr * np.log(new)
            m = np.where(self.legal, np.exp(logm - logm.max(1, keepdims=True)), 0.0)
            self.magnet = m / m.sum(1, keepdims=True)
        self.policy.action_probability_array = new
        return self.policy


def cfr_policy(game, iterations: int):
    """The average policy of OpenSpiel's CFR+ after ``iterations`` (a near-Nash blueprint for small games)."""
    from open_spiel.python.algorithms import cfr

    solver = cfr.CFRPlusSolver(game)
    for _ in range(iterations):
        solver.evaluate_and_update_policy()
    return solver.average_policy()


def uniform_policy(game):
    """The uniform blueprint of the paper's adversarial experiments, as a ``TabularPolicy``."""
    from open_spiel.python import policy as osp

    return osp.TabularPolicy(game)
