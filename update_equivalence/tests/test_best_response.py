"""The best responder's environment and plumbing (fast); its accuracy against exact best responses is in the slow
tier (tests/test_mini.py)."""
import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict
from open_spiel.python import policy as osp

from shared.testing import compose
from update_equivalence import expected_return, load_game
from update_equivalence.best_response import BestResponseEnv, DQNConfig, approximate_exploitability
from update_equivalence.pipeline import run

PROJECT = Path(__file__).resolve().parents[1]


def test_env_returns_match_the_exact_value_of_a_fixed_response():
    game = load_game("kuhn_poker")
    env = BestResponseEnv(game, osp.UniformRandomPolicy(game), player=1, seed=0)
    rets = []
    for _ in range(4000):
        obs, legal = env.reset()
        assert env.state.current_player() == 1 and obs.shape == (game.information_state_tensor_size(),)
        done = False
        while not done:
            obs, legal, r, done = env.step(0)  # seat 1 always passes / checks
        rets.append(r)
    pol = osp.TabularPolicy(game)  # player 0 uniform, player 1 always action 0
    for idx in pol.state_lookup.values():
        if pol.states[idx].current_player() == 1:
            pol.action_probability_array[idx] = [1.0, 0.0]
    exact = expected_return(game, pol)[1]
    assert abs(np.mean(rets) - exact) < 3 * np.std(rets) / np.sqrt(len(rets))


def test_dqn_plumbing_on_kuhn():
    game = load_game("kuhn_poker")
    out = approximate_exploitability(game, osp.UniformRandomPolicy(game),
                                     DQNConfig(steps=300, learn_start=50, batch_size=32, eval_episodes=100))
    assert set(out) == {"br/value_p0", "br/ci95_p0", "br/value_p1", "br/ci95_p1", "approx/exploitability"}
    assert -2 <= out["approx/exploitability"] <= 2


def test_best_response_study_through_the_pipeline(tmp_path):
    cfg = compose(PROJECT / "configs", ["study=best_response", "br.steps=200", "br.learn_start=50",
                                        "br.batch_size=32", "br.eval_episodes=50", "method.eta=0.5",
                                        "br.exact_eval=true"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    run(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["exact/exploitability"] == pytest.approx(0.2264, abs=1e-4)  # the exact planner's, for comparison
    assert np.isfinite(m["approx/exploitability"])


def test_killed_best_responder_resumes_exactly(tmp_path, monkeypatch):
    import torch

    import update_equivalence.best_response as B

    game = load_game("kuhn_poker")
    hp = DQNConfig(steps=600, learn_start=50, batch_size=32, target_every=100, eval_episodes=10)
    u = osp.UniformRandomPolicy(game)
    full = B.train_best_response(B.BestResponseEnv(game, u, 0, 5), hp, 7)
    real, calls = B._save_learner, []

    def dying(*a):
        real(*a)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(B, "_save_learner", dying)
    ck = tmp_path / "br.pt"
    with pytest.raises(KeyboardInterrupt):
        B.train_best_response(B.BestResponseEnv(game, u, 0, 5), hp, 7, checkpoint=ck, ckpt_every=100)
    monkeypatch.setattr(B, "_save_learner", real)
    resumed = B.train_best_response(B.BestResponseEnv(game, u, 0, 5), hp, 7, checkpoint=ck, ckpt_every=100)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another best-response run"):
        B.train_best_response(B.BestResponseEnv(game, u, 1, 5), hp, 7, checkpoint=ck)
