"""The sampled planner: beliefs only return histories consistent with the searcher's information and match the
exact posterior (chi-square, fixed seed); with many particles it approaches exact search; head to head runs."""
from collections import Counter

import numpy as np
import pytest
from open_spiel.python import policy as osp
from scipy.stats import chisquare

from update_equivalence import SampledPlanner, cfr_policy, exact_search_policy, head_to_head, load_game
from update_equivalence.exact import game_tree
from update_equivalence.sampled import own_record, sample_histories


def _play(game, actions):
    s = game.new_initial_state()
    for a in actions:
        s.apply_action(a)
    return s


def test_beliefs_are_consistent_in_phantom_ttt():
    game = load_game("phantom_ttt")
    u = osp.UniformRandomPolicy(game)
    rng = np.random.default_rng(0)
    s = game.new_initial_state()
    while len(s.history()) < 6:  # a few moves of two uniform players
        s.apply_action(int(rng.choice(s.legal_actions())))
    p = s.current_player()
    samples = sample_histories(game, own_record(s, p), p, u, 30, rng)
    assert all(h.information_state_string(p) == s.information_state_string(p) for h in samples)
    assert all(h.current_player() == p and not h.is_terminal() for h in samples)
    assert len({str(h) for h in samples}) > 1  # the opponent's hidden moves vary


def test_belief_matches_the_exact_posterior_in_kuhn():
    game = load_game("kuhn_poker")
    blueprint = cfr_policy(game, 10)  # a non-uniform blueprint: the posterior is not uniform
    tree = game_tree(game)
    pi = tree.policy_array(blueprint)
    r = tree.reach(pi)
    state = _play(game, [0, 1, 0])  # cards 0 and 1 dealt, player 0 passes: player 1 to act
    p = state.current_player()
    s_idx = tree.tabular.state_index(state)
    nodes = np.flatnonzero(tree.info == s_idx)
    cf = np.prod(np.delete(r[nodes], p, axis=1), axis=1)  # others' and chance's reach
    exact = cf / cf.sum()
    rng = np.random.default_rng(1)
    samples = sample_histories(game, own_record(state, p), p, blueprint, 2000, rng)
    # identify each sampled history with its node in the flat tree through player 0's card
    card = Counter(h.history()[0] for h in samples)
    node_card = [int(_first_action(tree, n)) for n in nodes]
    observed = np.array([card[c] for c in node_card])
    assert observed.sum() == 2000 and abs(exact.max() - exact.min()) > 0.02
    assert chisquare(observed, exact * 2000).pvalue > 1e-3


def _first_action(tree, node):
    while tree.parent[tree.parent[node]] >= 0:
        node = tree.parent[node]
    return tree.action[node]


def test_many_particles_approach_exact_search_in_kuhn():
    game = load_game("kuhn_poker")
    u = osp.UniformRandomPolicy(game)
    state = _play(game, [2, 0])  # player 0 holds the king
    exact = exact_search_policy(game, osp.TabularPolicy(game), 2.0, 0.5)
    ref = exact.action_probability_array[exact.state_index(state)]
    planner = SampledPlanner(game, u, 2.0, 0.5, n_particles=400, n_rollouts=10, seed=0)
    assert np.allclose(planner.policy(state), ref, atol=0.05)


def test_head_to_head_runs_and_reports_speed():
    game = load_game("dark_hex(board_size=3,gameversion=adh)")
    u = osp.UniformRandomPolicy(game)
    out = head_to_head(game, SampledPlanner(game, u, np.inf, n_particles=2, n_rollouts=1, seed=0), u, 4)
    assert out["games"] == 4 and -1 <= out["mean"] <= 1 and out["sec_per_move"] > 0
    with pytest.raises(ValueError, match="play="):
        SampledPlanner(game, u, 1.0, play="best")


@pytest.mark.slow  # ~0.2% of root draws are consistent: ~300k rejection trials, ~20-35 s
def test_belief_with_forced_own_actions_matches_the_exact_posterior_in_leduc():
    game = load_game("leduc_poker")
    tree = game_tree(game)
    rng = np.random.default_rng(3)
    pi = rng.dirichlet(np.ones(tree.n_actions), size=tree.legal.shape[0]) * tree.legal
    pi /= pi.sum(1, keepdims=True)  # a random full-support blueprint
    blueprint = osp.TabularPolicy(game)
    blueprint.action_probability_array = pi
    # deal 1 to p0 and 3 to p1; p0 checks, p1 raises, p0 raises, p1 calls (round 1); public card 5; p0 checks:
    # p1 to act, its third decision, the first two forced in every sample
    state = _play(game, [1, 3, 1, 2, 2, 1, 5, 1])
    p = state.current_player()
    assert p == 1 and len(own_record(state, p)) == 3
    child = {(int(pa), int(a)): i for i, (pa, a) in enumerate(zip(tree.parent, tree.action)) if pa >= 0}

    def node_of(history):
        n = 0
        for a in history:
            n = child[(n, a)]
        return n

    nodes = np.flatnonzero(tree.info == tree.tabular.state_index(state))
    r = tree.reach(pi)
    cf = np.prod(np.delete(r[nodes], p, axis=1), axis=1)
    samples = sample_histories(game, own_record(state, p), p, blueprint, 600, np.random.default_rng(4))
    counts = Counter(node_of(h.history()) for h in samples)
    assert set(counts) <= set(nodes.tolist())
    observed = np.array([counts[n] for n in nodes])
    assert chisquare(observed, cf / cf.sum() * 600).pvalue > 1e-3


def test_enumerated_belief_is_the_exact_posterior_in_leduc():
    from update_equivalence.sampled import enumerate_belief

    game = load_game("leduc_poker")
    tree = game_tree(game)
    rng = np.random.default_rng(5)
    pi = rng.dirichlet(np.ones(tree.n_actions), size=tree.legal.shape[0]) * tree.legal
    pi /= pi.sum(1, keepdims=True)
    blueprint = osp.TabularPolicy(game)
    blueprint.action_probability_array = pi
    state = _play(game, [1, 3, 1, 2, 2, 1, 5, 1])  # as in the rejection test below: p1's third decision
    p = state.current_player()
    states, w = enumerate_belief(game, state, p, blueprint)
    nodes = np.flatnonzero(tree.info == tree.tabular.state_index(state))
    cf = np.prod(np.delete(tree.reach(pi)[nodes], p, axis=1), axis=1)
    exact = dict(zip((tuple(tree_history(tree, n)) for n in nodes), cf / cf.sum()))
    got = {tuple(h.history()): x for h, x in zip(states, w)}
    assert set(got) == set(exact)
    assert all(abs(got[k] - exact[k]) < 1e-12 for k in exact)


def tree_history(tree, node):
    out = []
    while tree.parent[node] >= 0:
        out.append(int(tree.action[node]))
        node = tree.parent[node]
    return out[::-1]


def test_hanabi_planner_uses_enumerated_beliefs():
    from update_equivalence.sampled import enumerate_belief, observation_record, selfplay

    game = load_game("hanabi(players=2,colors=2,ranks=2,hand_size=2,max_information_tokens=3,max_life_tokens=1)")
    u = osp.UniformRandomPolicy(game)
    rng = np.random.default_rng(0)
    s = game.new_initial_state()
    while s.is_chance_node() or len(s.history()) < 10:  # deals, hints, then a discard and a redraw
        hints = [a for a in s.legal_actions() if "Reveal" in s.action_to_string(a)] if not s.is_chance_node() else []
        acts = [a for a, _ in s.chance_outcomes()] if s.is_chance_node() else hints or s.legal_actions()
        s.apply_action(int(rng.choice(acts)))
    p = s.current_player()
    states, w = enumerate_belief(game, s, p, u)
    assert tuple(s.history()) in {tuple(h.history()) for h in states} and w.sum() == pytest.approx(1.0)
    assert all(observation_record(h, p) == observation_record(s, p) for h in states)
    assert len(states) > 1  # its own cards are unknown to the searcher

    def moves(h):  # (player, action) of every decision: Hanabi's moves are public
        g, out = h.get_game().new_initial_state(), []
        for a in h.history():
            if not g.is_chance_node():
                out.append((g.current_player(), a))
            g.apply_action(a)
        return out

    assert all(moves(h) == moves(s) for h in states)  # the partner's moves as played, not look-alikes
    with pytest.raises(ValueError, match="belief=enumerate"):
        SampledPlanner(game, u, 1.0)
    planner = SampledPlanner(game, u, 1.0, n_particles=4, n_rollouts=1, belief="enumerate", play="argmax", seed=0)
    out = selfplay(game, planner, 2, seed=0)
    assert 0 <= out["mean"] <= 4 and planner.fallbacks == 0


def test_hanabi_belief_tells_apart_look_alike_moves():
    # player 1 holds two identical cards (R1, R1); after a colour hint it plays card 0. Player 0's observation
    # string reads the same had it played card 1: only the observation tensor records which card was played
    from update_equivalence.sampled import enumerate_belief

    game = load_game("hanabi(players=2,colors=2,ranks=2,hand_size=2,max_information_tokens=3,max_life_tokens=1)")
    s = _play(game, [0, 1, 0, 0, 4, 2])
    s.apply_action(s.chance_outcomes()[0][0])  # player 1 draws
    alt = _play(game, [0, 1, 0, 0, 4, 3])
    alt.apply_action(alt.chance_outcomes()[0][0])
    assert s.observation_string(0) == alt.observation_string(0)  # the look-alike the string cannot separate
    states, w = enumerate_belief(game, s, 0, osp.UniformRandomPolicy(game))
    assert {h.history()[5] for h in states} == {2} and w.sum() == pytest.approx(1.0)
