"""Environments of the paper, behind clear install errors: Procgen (``procgen-mirror``, cp311 wheels of Procgen
0.10.7; the original ``procgen`` stops at Python 3.10) in easy mode with 200 training levels, and Crafter."""
from __future__ import annotations

from ede.metrics import EASY_MIN_MAX

PROCGEN_HINT = ("Procgen is not installed: pip install --no-deps procgen-mirror==0.10.7 gym3 gym==0.26.2 "
                "(in the venv of requirements-full.txt; the original 'procgen' wheels stop at Python 3.10)")


def make_procgen(game: str, n_envs: int, num_levels: int = 200, start_level: int = 0,
                 distribution_mode: str = "easy", seed: int = 0):
    """A vectorised Procgen env (``ProcgenEnv``): training uses levels [start_level, start_level + num_levels),
    testing ``num_levels=0`` (the full level distribution)."""
    if game not in EASY_MIN_MAX:
        raise ValueError(f"unknown Procgen game {game!r}; the 16 games: {sorted(EASY_MIN_MAX)}")
    try:
        from procgen import ProcgenEnv
    except ImportError as e:
        raise ImportError(f"{PROCGEN_HINT} ({e})") from None
    return ProcgenEnv(num_envs=n_envs, env_name=game, num_levels=num_levels, start_level=start_level,
                      distribution_mode=distribution_mode, rand_seed=seed)


def make_crafter(seed: int = 0):
    """One Crafter env (64x64 RGB, 17 actions, episodes of at most 10000 steps)."""
    try:
        import crafter
    except ImportError as e:
        raise ImportError(f"Crafter is not installed: pip install crafter==1.8.3 ({e})") from None
    return crafter.Env(seed=seed)


class ProcgenVec:
    """Procgen's baselines-style vector env as the loop's protocol: ``reset() -> obs [E, 3, 64, 64] uint8``,
    ``step(actions) -> (obs, reward, done)`` (Procgen resets finished envs itself)."""

    def __init__(self, env):
        self.env = env
        self.n = env.num_envs
        self.n_actions = int(env.action_space.n)
        self.obs_shape = (3, 64, 64)

    @staticmethod
    def _rgb(obs):
        import numpy as np

        return np.ascontiguousarray(obs["rgb"].transpose(0, 3, 1, 2))

    def reset(self):
        return self._rgb(self.env.reset())

    def step(self, actions):
        obs, rew, done, _ = self.env.step(actions)
        return self._rgb(obs), rew.astype("float32"), done.astype(bool)
