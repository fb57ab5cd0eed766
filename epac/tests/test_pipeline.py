"""The pipeline: train.py writes metrics.json (JAX version and backend recorded) and eval.py shows it; a killed
run directory resumes; the rademacher study; bad input is named."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from epac.pipeline import run, show_run
from epac.report import main as report
from shared.testing import run_config

PROJECT = Path(__file__).resolve().parents[1]


def _run(tmp_path, overrides):
    return run_config(run, PROJECT / "configs", overrides, tmp_path)


def test_train_py_writes_metrics_and_eval_shows_them(tmp_path):
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}", "optim.steps=100", "data.k=100",
                          "data.n_test=200"], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert m["env/backend"] == "cpu" and m["data/n_labeled"] == 32 and m["test/mse"] > 0
    assert 0 <= m["test/satisfaction"] <= 1 and (tmp_path / "checkpoint.msgpack").exists()
    shown = show_run(OmegaConf.create({"run_dir": str(tmp_path)}))
    assert shown["method"] == "augmented_lagrangian" and shown["test/mse"] == m["test/mse"]


def test_learn_and_rademacher_runs_and_the_plots(tmp_path):
    m = _run(tmp_path / "sup", ["method=supervised", "optim.steps=60", "optim.chunk=30", "data.k=50",
                                "data.n_test=100"])  # every learner is tested in test_learners
    assert m["test/mse"] > 0
    _run(tmp_path / "rad", ["study=rademacher", "rademacher.brute_dirs=2000", "rademacher.draws=200"])
    _run(tmp_path / "rad2", ["study=rademacher", "rademacher.kind=twolayer", "rademacher.nets=200",
                             "rademacher.draws=100", "rademacher.k=50", "rademacher.d=5"])
    report(str(tmp_path), str(tmp_path / "fig"))
    assert (tmp_path / "fig_learn.png").exists() and (tmp_path / "fig_rademacher.png").exists()


def test_rademacher_study(tmp_path):
    m = _run(tmp_path, ["study=rademacher", "rademacher.alpha=0.6", "rademacher.brute_dirs=20000"])
    assert m["rad/sin_gap"] < 0.02 and m["rad/brute_gap"] < 2e-3 and m["rad/closed_form"] < m["rad/unconstrained"]


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="study="):
        _run(tmp_path / "a", ["study=explain"])
    with pytest.raises(ValueError, match="data.root"):
        _run(tmp_path / "b", ["+experiment=wrench"])
    with pytest.raises(FileNotFoundError, match="Download the youtube folder"):
        _run(tmp_path / "c", ["+experiment=wrench", f"data.root={tmp_path}"])
    with pytest.raises(ValueError, match="angle alpha"):
        _run(tmp_path / "d", ["data.kind=linear", "model.kind=linear", "data.alpha=4.0", "optim.steps=10"])
