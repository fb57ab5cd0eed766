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
    with pytest.raises(ValueError, match="method.name"):
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
