"""Deep blueprints: self-play training lowers the exact exploitability in Kuhn (OpenSpiel's own evaluator reads
the net as a policy), a killed run resumes bitwise, illegal actions never get probability or NaN gradients, and a
saved blueprint loads back only for its own game."""
import numpy as np
import pytest
import torch

from update_equivalence import exploitability, load_game
from update_equivalence.blueprint import BlueprintConfig, NetPolicy, selfplay_batch, train_blueprint

SMALL_HANABI = "hanabi(players=2,colors=2,ranks=2,hand_size=2,max_information_tokens=3,max_life_tokens=1)"


def test_self_play_lowers_kuhn_exploitability():
    game = load_game("kuhn_poker")
    policy, hist = train_blueprint(game, BlueprintConfig(iterations=40, games_per_iter=256, hidden=64, lr=1e-3), 0)
    assert len(hist) == 40
    assert exploitability(game, policy) < 0.35  # uniform play: 0.4583


def test_resume_is_bitwise(tmp_path):
    game = load_game("kuhn_poker")
    hp = BlueprintConfig(iterations=4, games_per_iter=32, hidden=16, magnet_every=2)
    full, _ = train_blueprint(game, hp, 3, tmp_path / "a.pt")
    short = BlueprintConfig(**{**hp.__dict__, "iterations": 2})
    train_blueprint(game, short, 3, tmp_path / "b.pt")
    ck = torch.load(tmp_path / "b.pt", weights_only=False)
    ck["hp"]["iterations"] = 4  # the same run, killed after 2 of its 4 iterations
    torch.save(ck, tmp_path / "b.pt")
    resumed, hist = train_blueprint(game, hp, 3, tmp_path / "b.pt")
    assert [h["iteration"] for h in hist] == [1, 2, 3, 4]
    for a, b in zip(full.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another run"):
        train_blueprint(game, BlueprintConfig(iterations=5, games_per_iter=32, hidden=16), 3, tmp_path / "b.pt")


def test_illegal_actions_get_zero_probability_and_finite_training():
    game = load_game("phantom_ttt")  # legal sets shrink: masked logits every step
    policy, _ = train_blueprint(game, BlueprintConfig(iterations=2, games_per_iter=64, hidden=32), 0)
    assert all(torch.isfinite(p).all() for p in policy.net.parameters())
    b = selfplay_batch(game, policy, 16, np.random.default_rng(0))
    assert b["legal"][np.arange(len(b["action"])), b["action"]].all()
    s = game.new_initial_state()
    s.apply_action(4)
    s.apply_action(4)  # player 1 tries the taken centre: it stays legal in its view until tried, then it moves again
    probs = policy.batch_probs([s])[0]
    illegal = np.setdiff1d(np.arange(9), s.legal_actions())
    assert np.all(probs[illegal] == 0) and probs.sum() == pytest.approx(1.0)
    assert policy.action_probabilities(s) == pytest.approx({a: probs[a] for a in s.legal_actions()})


def test_save_load_round_trip_and_errors(tmp_path):
    game = load_game(SMALL_HANABI)  # no information-state tensor: the observation tensor is the input
    policy, _ = train_blueprint(game, BlueprintConfig(iterations=1, games_per_iter=8, hidden=16), 0)
    policy.save(tmp_path / "bp.pt")
    back = NetPolicy.load(tmp_path / "bp.pt", game)
    s = game.new_initial_state()
    while s.is_chance_node():
        s.apply_action(s.chance_outcomes()[0][0])
    assert np.array_equal(back.batch_probs([s]), policy.batch_probs([s]))
    with pytest.raises(ValueError, match="trained for hanabi"):
        NetPolicy.load(tmp_path / "bp.pt", load_game("kuhn_poker"))
    with pytest.raises(FileNotFoundError, match="study=blueprint"):
        NetPolicy.load(tmp_path / "none.pt", game)
