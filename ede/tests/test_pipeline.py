"""The tabular pipeline: a default train.py run writes metrics.json; eval.py shows it; bad input is named."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from ede.pipeline import run, show_run
from shared.testing import compose

PROJECT = Path(__file__).resolve().parents[1]


def test_train_py_writes_metrics_and_eval_shows_them(tmp_path):
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}", "runs=10", "episodes=200",
                          "method=epsilon"], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["env/optimal_train"] == pytest.approx(1.88) and m["data/runs"] == 10
    assert len(m["test/curve_mean"]) == len(m["episodes_evaluated"]) == 21  # episodes 0, 10, ..., 190, 199
    assert m["train/final_subopt"] < 0.1  # epsilon-greedy solves the training start
    shown = show_run(OmegaConf.create({"run_dir": str(tmp_path)}))
    assert shown["method"] == "epsilon" and shown["test/final_subopt"] == m["test/final_subopt"]
    with pytest.raises(FileNotFoundError, match="run_dir="):
        show_run(OmegaConf.create({"run_dir": str(tmp_path / "nope")}))


def test_unknown_method_is_named(tmp_path):
    cfg = compose(PROJECT / "configs", ["runs=2", "episodes=2"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
        cfg.method.name = "boltzmann"
    with pytest.raises(ValueError, match="method=boltzmann does not run"):
        run(cfg)


def test_fig2_plot_from_runs(tmp_path):
    from ede.report import plot_fig2
    from shared.results import find_runs

    for method in ("epsilon", "ucb"):
        cfg = compose(PROJECT / "configs", ["runs=4", "episodes=30", f"method={method}"])
        with open_dict(cfg):
            cfg.run_dir = str(tmp_path / method)
        run(cfg)
    titles = plot_fig2(find_runs(tmp_path), tmp_path / "f.png")
    assert titles == ["Q-learning, eps-greedy", "Q-learning, UCB c=10"] and (tmp_path / "f.png").stat().st_size > 5000


def test_deep_pipeline_on_the_grid_family(tmp_path):
    cfg = compose(PROJECT / "configs", ["+experiment=mini_deep", "deep.steps=120", "deep.eval_episodes=8"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    ret = run(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["train/updates"] == 70 and m["test/return"] == ret and -5 < ret <= 1.72 + 1e-9
    assert (tmp_path / "ckpt.pt").exists() and m["train/env_steps_per_s"] > 0


def test_method_env_mismatch_is_named(tmp_path):
    cfg = compose(PROJECT / "configs", ["method=ede"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    with pytest.raises(ValueError, match="does not run on env=tabular"):
        run(cfg)


def test_procgen_adapter_with_a_stand_in_module(monkeypatch):
    """The real ProcgenEnv is not installable here (numpy 2); a stand-in with its API checks our adapter."""
    import sys
    import types

    import numpy as np

    from ede.envs import ProcgenVec, make_procgen

    class FakeProcgenEnv:
        def __init__(self, num_envs, env_name, num_levels, start_level, distribution_mode, rand_seed):
            self.num_envs, self.kw = num_envs, (env_name, num_levels, distribution_mode)
            self.action_space = types.SimpleNamespace(n=15)

        def reset(self):
            return {"rgb": np.zeros((self.num_envs, 64, 64, 3), np.uint8)}

        def step(self, a):
            return ({"rgb": np.full((self.num_envs, 64, 64, 3), 7, np.uint8)}, np.ones(self.num_envs),
                    np.zeros(self.num_envs, bool), [{}] * self.num_envs)

    monkeypatch.setitem(sys.modules, "procgen", types.SimpleNamespace(ProcgenEnv=FakeProcgenEnv))
    env = ProcgenVec(make_procgen("coinrun", 3, num_levels=200))
    assert env.env.kw == ("coinrun", 200, "easy") and env.n == 3 and env.n_actions == 15
    assert env.reset().shape == (3, 3, 64, 64)
    obs, rew, done = env.step(np.zeros(3, int))
    assert obs.dtype == np.uint8 and obs[0, 0, 0, 0] == 7 and rew.dtype == np.float32 and done.dtype == bool
