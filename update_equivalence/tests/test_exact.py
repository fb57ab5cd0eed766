"""Exact search: equal to one global iterate of a tabular MMD learner built on OpenSpiel's own action values
(update equivalence, to 1e-9), uniform-blueprint exploitabilities as regression constants (the spec's pilot),
Kuhn's Nash value via CFR+, and bad blueprints."""
import numpy as np
import pytest

from update_equivalence import (
    MMDLearner,
    cfr_policy,
    exact_search_policy,
    expected_return,
    exploitability,
    load_game,
    uniform_policy,
)

ADH2 = "dark_hex(board_size=2,gameversion=adh)"


@pytest.mark.parametrize("name", ["kuhn_poker", "leduc_poker", ADH2])
@pytest.mark.parametrize("eta, alpha", [(0.1, 1.0), (1.0, 0.5), (2.0, 0.0)])
def test_exact_search_equals_one_global_mmd_iterate(name, eta, alpha):
    game = load_game(name)
    warm = MMDLearner(game, 0.3, 0.5, magnet_lr=0.05)  # a non-uniform blueprint and magnet
    for _ in range(3):
        warm.step()
    blueprint, magnet = warm.policy.__copy__(), warm.policy.__copy__()
    magnet.action_probability_array = warm.magnet.copy()
    legal = blueprint.legal_actions_mask
    assert np.abs(blueprint.action_probability_array - legal / legal.sum(1, keepdims=True)).max() > 0.05  # moved
    learner = MMDLearner(game, eta, alpha, magnet=magnet, policy=blueprint)
    searched = exact_search_policy(game, blueprint, eta, alpha, magnet=magnet)
    diff = np.abs(learner.step().action_probability_array - searched.action_probability_array).max()
    assert diff < 1e-9


@pytest.mark.parametrize("name, uniform, md_half", [
    ("kuhn_poker", 0.4583, 0.2264), ("leduc_poker", 2.3736, 1.8604), (ADH2, 0.4167, 0.3709),
    ("liars_dice(dice_sides=4)", 0.6551, 0.5546)])
def test_uniform_blueprint_regression_constants(name, uniform, md_half):
    game = load_game(name)
    u = uniform_policy(game)
    assert exploitability(game, u) == pytest.approx(uniform, abs=1e-4)
    assert exploitability(game, exact_search_policy(game, u, 0.5)) == pytest.approx(md_half, abs=1e-4)
    # with a uniform blueprint and magnet MMD(1, 1) is MD(1/2)
    assert exploitability(game, exact_search_policy(game, u, 1.0, 1.0)) == pytest.approx(md_half, abs=1e-4)


def test_kuhn_nash_value_via_cfr():
    game = load_game("kuhn_poker")
    pol = cfr_policy(game, 300)
    assert exploitability(game, pol) < 5e-3
    assert expected_return(game, pol)[0] == pytest.approx(-1 / 18, abs=3e-3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="unknown or malformed OpenSpiel game"):
        load_game("kuhn_pokr")
    game = load_game("kuhn_poker")
    with pytest.raises(ValueError, match="does not cover infostate"):
        exact_search_policy(game, uniform_policy(load_game("leduc_poker")), 1.0)
    bad = uniform_policy(game)
    bad.action_probability_array[3] = [0.9, 0.3]
    with pytest.raises(ValueError, match="not normalised"):
        exact_search_policy(game, bad, 1.0)
    bad.action_probability_array[3] = [1.2, -0.2]
    with pytest.raises(ValueError, match="negative"):
        exact_search_policy(game, bad, 1.0)
    with pytest.raises(ValueError, match="two-player zero-sum"):
        exploitability(load_game("tiny_hanabi"), uniform_policy(load_game("tiny_hanabi")))
