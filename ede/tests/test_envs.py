"""The simulators behind our adapters: real Procgen (procgen-mirror) and Crafter, observation layout, frame
preprocessing and stacking, achievements."""
import numpy as np
import pytest

from ede.envs import ACHIEVEMENTS, CrafterVec, ProcgenVec, crafter_frame, make_procgen


def test_procgen_adapter_on_the_real_simulator():
    pytest.importorskip("procgen", reason="procgen-mirror: pip install --no-deps -r requirements-nodeps.txt")
    env = ProcgenVec(make_procgen("coinrun", 3, num_levels=200))
    assert env.n == 3 and env.n_actions == 15 and env.obs_shape == (3, 64, 64)
    obs = env.reset()
    assert obs.shape == (3, 3, 64, 64) and obs.dtype == np.uint8 and obs.std() > 0
    for _ in range(5):
        obs, rew, done = env.step(np.zeros(3, int))
    assert obs.shape == (3, 3, 64, 64) and rew.dtype == np.float32 and done.dtype == bool


def test_crafter_frames_resize_and_grey_by_hand():
    rgb = np.arange(64 * 64 * 3, dtype=np.int64).reshape(1, 64, 64, 3) % 256
    out = crafter_frame(rgb.astype(np.uint8), 84)
    src = (np.arange(84) * 64) // 84  # nearest neighbour: output pixel i reads input pixel floor(i * 64 / 84)
    i, j = 50, 17
    assert out.shape == (1, 84, 84) and out.dtype == np.uint8
    assert out[0, i, j] == round(rgb[0, src[i], src[j]].mean())


def test_crafter_vector_env_stacks_frames_and_records_achievements():
    pytest.importorskip("crafter")
    env = CrafterVec(1, seed=0, length=12)
    obs = env.reset()
    assert obs.shape == (1, 4, 84, 84) and (obs[:, :3] == 0).all() and obs[:, 3].std() > 0  # zero-padded stack
    prev = obs
    for t in range(12):
        obs, rew, done = env.step(np.array([5]))  # 5 = do
        if t < 11:
            assert not done.any() and np.array_equal(obs[:, :3], prev[:, 1:])  # the stack shifts by one frame
        prev = obs
    assert done.all() and len(env.achievements) == 1  # the time limit ends the episode
    assert (obs[:, :3] == 0).all()  # the next episode's stack starts from zeros again
    assert all(a <= set(ACHIEVEMENTS) for a in env.achievements)
