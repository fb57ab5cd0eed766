"""GPU smoke (PTTT): a deep blueprint's batched forward on CUDA (the sampled planner's rollouts and the self-play
trainer use it) and best-responder DQN training steps on CUDA against it."""
import copy

import numpy as np
import pytest
import torch

from update_equivalence import load_game
from update_equivalence.best_response import BestResponseEnv, DQNConfig, evaluate_best_response, train_best_response
from update_equivalence.blueprint import BlueprintConfig, NetPolicy, PolicyNet, feature_size, train_blueprint
from update_equivalence.sampled import rollouts

pytestmark = pytest.mark.gpu
DEVICE = "cuda"


def _cuda():
    if DEVICE == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA")


def test_blueprint_forward_and_training_on_cuda():
    _cuda()
    game = load_game("phantom_ttt")
    torch.manual_seed(0)
    net = PolicyNet(feature_size(game), game.num_distinct_actions(), 256)
    cpu, gpu = NetPolicy(game, copy.deepcopy(net)), NetPolicy(game, net, DEVICE)
    states = [game.new_initial_state() for _ in range(512)]
    rng = np.random.default_rng(0)
    for i, s in enumerate(states):  # a spread of positions
        for _ in range(i % 7):
            if not s.is_terminal():
                s.apply_action(int(rng.choice(s.legal_actions())))
    live = [s for s in states if not s.is_terminal()]
    assert np.allclose(gpu.batch_probs(live), cpu.batch_probs(live), atol=1e-5)
    ret = rollouts(live[:256], gpu, rng, 9)
    assert ret.shape == (256, 2) and np.all(np.abs(ret) <= 1)
    policy, hist = train_blueprint(game, BlueprintConfig(iterations=3, games_per_iter=256, hidden=256), 0,
                                   device=DEVICE)
    assert next(policy.net.parameters()).device.type == DEVICE and len(hist) == 3


def test_best_responder_trains_on_cuda():
    _cuda()
    game = load_game("phantom_ttt")
    blueprint = NetPolicy(game, PolicyNet(feature_size(game), 9, 64), DEVICE)
    env = BestResponseEnv(game, blueprint, 0, seed=0)
    hp = DQNConfig(steps=1500, learn_start=200, batch_size=256, eval_episodes=50)
    q = train_best_response(env, hp, 0, DEVICE)
    assert next(q.parameters()).device.type == DEVICE
    value, ci = evaluate_best_response(env, q, hp.eval_episodes, DEVICE)
    assert -1 <= value <= 1 and np.isfinite(ci)
