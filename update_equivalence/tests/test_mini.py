"""Slow tier: the mini (A, B, D) end to end with its claims checked by shared.results against results/paper.yaml;
the DQN best responder against exact best-response values (Kuhn, uniform blueprint); the submitit_local launcher."""
from pathlib import Path

import numpy as np
import pytest
from open_spiel.python import policy as osp
from open_spiel.python.algorithms import best_response as obr

from shared import results
from shared.testing import run_script
from update_equivalence import load_game
from update_equivalence.best_response import DQNConfig, approximate_exploitability

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args, timeout=900):
    return run_script(PROJECT, args, timeout)


def test_mini_claims_hold(tmp_path):
    _run(["train.py", "-m", "+experiment=mini", f"hydra.sweep.dir={tmp_path}/exact"])
    _run(["train.py", "-m", "+experiment=mini_common", f"hydra.sweep.dir={tmp_path}/common"])
    _run(["train.py", "-m", "+experiment=mini_hanabi_blueprint", f"run_dir={tmp_path}/hanabi_blueprint"])
    _run(["train.py", "-m", "+experiment=mini_hanabi", f"blueprint.path={tmp_path}/hanabi_blueprint/blueprint.pt",
          f"hydra.sweep.dir={tmp_path}/hanabi"])
    _run(["-m", "shared.results", ".", "--scale", "mini", "--check", "--runs", str(tmp_path), "--out",
          f"{tmp_path}/mini.md"])


def test_dqn_best_response_matches_the_exact_one_in_kuhn():
    game = load_game("kuhn_poker")
    u = osp.UniformRandomPolicy(game)
    exact = [obr.BestResponsePolicy(game, p, u).value(game.new_initial_state()) for p in (0, 1)]  # 0.5, 0.4167
    out = approximate_exploitability(game, u, DQNConfig(steps=4000, learn_start=200, target_every=200,
                                                        eval_episodes=4000))
    for p in (0, 1):
        assert abs(out[f"br/value_p{p}"] - exact[p]) < max(0.05, 2 * out[f"br/ci95_p{p}"])
    assert out["approx/exploitability"] == pytest.approx(np.mean(exact), abs=0.05)


def test_submitit_local_launcher(tmp_path):
    _run(["train.py", "-m", "+experiment=mini_ties", "+launcher=local", "game=kuhn_poker",
          f"hydra.sweep.dir={tmp_path}"], timeout=600)
    assert len(results.find_runs(tmp_path)) == 1
