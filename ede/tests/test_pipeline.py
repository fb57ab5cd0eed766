"""The pipeline: a default train.py run writes metrics.json; eval.py shows it; every deep method runs (grid family,
Procgen through train.py, Crafter with its score); bad input is named."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf, open_dict

from ede.pipeline import run, show_run
from shared.testing import compose, run_config

PROJECT = Path(__file__).resolve().parents[1]


def _run(tmp_path, overrides):
    """One pipeline run in ``tmp_path`` with ``overrides``; its final metrics."""
    return run_config(run, PROJECT / "configs", overrides, tmp_path)


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
    with pytest.raises(ValueError, match="method.name='boltzmann'"):
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


GRID = ["env=grid_levels", "method.quantiles=16", "method.hidden=64", "method.batch_size=32", "method.lr=1e-3",
        "method.target_update=50", "method.replay_steps=1000", "method.start_steps=50", "method.phi=3.0",
        "method.normalize_rewards=false"]


def test_deep_pipeline_on_the_grid_family(tmp_path):
    cfg = compose(PROJECT / "configs", ["method=ede", *GRID, "deep.steps=120", "deep.eval_episodes=8"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    ret = run(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["train/updates"] == 70 and m["test/return"] == ret and -5 < ret <= 1.72 + 1e-9
    assert (tmp_path / "ckpt.pt").exists() and m["train/env_steps_per_s"] > 0
    again = show_run(OmegaConf.create({"run_dir": str(tmp_path), "episodes": 8, "seed": 7, "device": "cpu"}))
    assert again["episodes"] == 8 and again["test/return"] == pytest.approx(ret)  # same checkpoint, seed, episodes


def test_ppo_killed_and_resumed(tmp_path):
    args = ["method=ppo", "env=grid_levels", "method.n_steps=16", "method.minibatches=2", "deep.steps=64",
            "deep.eval_episodes=0"]
    for extra in (["deep.stop_after=32"], []):
        cfg = compose(PROJECT / "configs", args + extra)
        with open_dict(cfg):
            cfg.run_dir = str(tmp_path)
        run(cfg)
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["train/resumed_from"] == 32 and m["train/updates"] == 4 * 3 * 2  # 4 rollouts x 3 epochs x 2 minibatches


def test_method_env_mismatch_is_named(tmp_path):
    cfg = compose(PROJECT / "configs", ["method=ede"])
    with open_dict(cfg):
        cfg.run_dir = str(tmp_path)
    with pytest.raises(ValueError, match="does not run on env=tabular"):
        run(cfg)


@pytest.mark.parametrize("method", ["dqn", "uadqn", "bootstrapped_dqn", "ez_greedy", "noisy_qrdqn", "qrdqn_tee",
                                    "ppo"])
def test_every_baseline_and_variant_runs(tmp_path, method):
    extra = ["method.n_steps=16", "method.minibatches=2"] if method == "ppo" else GRID[1:]
    if method in ("dqn", "bootstrapped_dqn"):
        extra = [e for e in extra if not e.startswith("method.quantiles")]
    m = _run(tmp_path, [f"method={method}", "env=grid_levels", *extra, "deep.steps=80",
                       "deep.eval_episodes=4"])
    assert m["train/updates"] > 0 and np.isfinite(m["train/last_loss"]) and np.isfinite(m["test/return"])


def test_procgen_run(tmp_path):
    pytest.importorskip("procgen", reason="procgen-mirror: pip install --no-deps -r requirements-nodeps.txt")
    m = _run(tmp_path, ["+experiment=mini_deep", "env.n_envs=2", "deep.steps=24",
                       "method.start_steps=20", "method.batch_size=2", "method.train_freq=1",
                       "deep.eval_episodes=0"])
    assert m["train/updates"] == 4 and np.isfinite(m["train/last_loss"]) and "test/return" not in m


def test_crafter_run_scores_achievements(tmp_path):
    pytest.importorskip("crafter")
    m = _run(tmp_path, ["+experiment=crafter", "env.length=30", "deep.steps=40", "deep.device=cpu",
                       "deep.replay_device=cpu", "method.start_steps=20", "method.batch_size=4",
                       "method.quantiles=8", "method.hidden=16", "method.replay_steps=100",
                       "deep.progress=false"])
    assert m["train/updates"] == 5 and m["train/episodes"] == 1  # an episode of 30 steps ended in 40 steps
    assert 0 <= m["crafter/score"] <= 100 and len([k for k in m if k.startswith("crafter/")]) == 23
