"""Environments of the paper, behind clear install errors: Procgen (``procgen-mirror``, cp311/cp312 wheels of
Procgen 0.10.7; the original ``procgen`` stops at Python 3.10) in easy mode with 200 training levels, and Crafter
(frames resized to 84x84 grey and stacked by 4, as the paper's Crafter agent sees them)."""
from __future__ import annotations

import contextlib
import io

from ede.metrics import EASY_MIN_MAX

PROCGEN_HINT = ("Procgen is not installed: pip install --no-deps -r requirements-nodeps.txt (procgen-mirror==0.10.7, "
                "gym3, gym==0.26.2; make env does it) after pip install -r requirements.txt; the original 'procgen' "
                "wheels stop at Python 3.10. On a machine without libGL: apt install libgl1")


def make_procgen(game: str, n_envs: int, num_levels: int = 200, start_level: int = 0,
                 distribution_mode: str = "easy", seed: int = 0):
    """A vectorised Procgen env (``ProcgenEnv``): training uses levels [start_level, start_level + num_levels),
    testing ``num_levels=0`` (the full level distribution)."""
    if game not in EASY_MIN_MAX:
        raise ValueError(f"unknown Procgen game {game!r}; the 16 games: {sorted(EASY_MIN_MAX)}")
    try:
        # gym 0.26 (only Procgen's env registration uses it) prints a 4-line deprecation banner on import
        with contextlib.redirect_stderr(io.StringIO()):
            from procgen import ProcgenEnv
    except (ImportError, OSError) as e:  # OSError: libGL.so.1 missing for the bundled Qt
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

    def close(self):
        """Free the C envs now (gym3's destructor fails noisily at interpreter exit)."""
        self.env.close()


ACHIEVEMENTS = ("collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling", "collect_stone",
                "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant", "make_iron_pickaxe",
                "make_iron_sword", "make_stone_pickaxe", "make_stone_sword", "make_wood_pickaxe", "make_wood_sword",
                "place_furnace", "place_plant", "place_stone", "place_table", "wake_up")


def crafter_frame(rgb, size: int = 84):
    """Crafter's 64x64 RGB frames ``[E, 64, 64, 3]`` -> ``[E, size, size]`` uint8: nearest-neighbour resize, then
    grey as the channel mean (spec 2.4: the paper's Crafter agent, built on Kaixhin's Rainbow)."""
    import numpy as np

    rgb = np.asarray(rgb)
    idx = (np.arange(size) * rgb.shape[1]) // size
    return rgb[:, idx][:, :, idx].mean(-1).round().astype(np.uint8)


class CrafterVec:
    """``n_envs`` Crafter envs stepped in turn, as the loop's vector env: observations ``[E, stack, 84, 84]``
    uint8 (a new episode starts from zero frames), auto-reset on episode end; ``achievements`` lists, for every
    finished episode, the set of achievements it unlocked (the Crafter score's input)."""

    def __init__(self, n_envs: int = 1, seed: int = 0, stack: int = 4, size: int = 84, length: int = 10000):
        import numpy as np

        try:
            import crafter
        except ImportError as e:
            raise ImportError(f"Crafter is not installed: pip install crafter==1.8.3 ({e})") from None
        self.envs = [crafter.Env(length=length, seed=seed + i) for i in range(n_envs)]
        self.n, self.n_actions, self.size, self.k = n_envs, int(self.envs[0].action_space.n), size, stack
        self.obs_shape = (stack, size, size)
        self.frames = np.zeros((n_envs, stack, size, size), dtype=np.uint8)
        self.achievements: list[set] = []

    def _push(self, i, rgb, new_episode: bool):
        if new_episode:
            self.frames[i] = 0
        self.frames[i, :-1] = self.frames[i, 1:]
        self.frames[i, -1] = crafter_frame(rgb[None], self.size)[0]

    def reset(self):
        for i, e in enumerate(self.envs):
            self._push(i, e.reset(), True)
        return self.frames.copy()

    def step(self, actions):
        import numpy as np

        rew, done = np.zeros(self.n, dtype=np.float32), np.zeros(self.n, dtype=bool)
        for i, (e, a) in enumerate(zip(self.envs, np.asarray(actions))):
            rgb, rew[i], done[i], info = e.step(int(a))
            if done[i]:
                self.achievements.append({k for k, v in info["achievements"].items() if v > 0})
                rgb = e.reset()
            self._push(i, rgb, bool(done[i]))
        return self.frames.copy(), rew, done
