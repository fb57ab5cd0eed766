"""Slow tier: the tabular mini end to end (3 learners x 100 runs, the UCB-constant sweep) with its claims checked by
shared.results against results/paper.yaml; the deep pipeline check on Procgen for both agents (shortened); the
submitit_local launcher."""
from pathlib import Path

import numpy as np
import pytest

from shared import results
from shared.testing import run_script

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args, timeout=900):
    return run_script(PROJECT, args, timeout)


def test_mini_claims_hold(tmp_path):
    _run(["train.py", "-m", "+experiment=mini", f"hydra.sweep.dir={tmp_path}/fig2"])
    _run(["train.py", "-m", "+experiment=mini_ucb_c", f"hydra.sweep.dir={tmp_path}/ucb_c"])
    _run(["-m", "shared.results", ".", "--scale", "mini", "--check", "--runs", str(tmp_path), "--out",
          f"{tmp_path}/mini.md"])


def test_deep_pipeline_check_on_procgen(tmp_path):
    pytest.importorskip("procgen", reason="procgen-mirror: pip install --no-deps -r requirements-nodeps.txt")
    _run(["train.py", "-m", "+experiment=mini_deep", "seed=0", "deep.steps=200", "deep.eval_episodes=8",
          f"hydra.sweep.dir={tmp_path}"])
    runs = results.find_runs(tmp_path)
    assert len(runs) == 2
    for rec in runs:
        m = rec["metrics"]
        assert m["train/updates"] == 20 and np.isfinite(m["train/last_loss"]) and np.isfinite(m["test/normalized"])


def test_submitit_local_launcher(tmp_path):
    _run(["train.py", "-m", "+experiment=mini", "+launcher=local", "method=ucb", "runs=5", "episodes=50",
          f"hydra.sweep.dir={tmp_path}"], timeout=600)
    assert len(results.find_runs(tmp_path)) == 1
