"""Slow tier: the mini's headline cell end to end on a toy model trained from scratch here (2000 steps, ~6 min on
2 cores: half the mini's recipe, so it fits the slow tier), claims checked with shared.results against
results/paper.yaml (one object per image, caption-only vs CAC vs MD, seed 0)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mini_claims_hold(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    sweep = [sys.executable, "train.py", "-m", "+experiment=mini", f"hydra.sweep.dir={tmp_path}/mini",
             "method=sd,cac,md", "data.n_objects=1", "seed=0",  # command-line values replace the sweeper's grid
             f"model.path={tmp_path}/toy", "model.train.steps=2000"]
    out = subprocess.run(sweep, cwd=PROJECT, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    check = subprocess.run([sys.executable, "-m", "shared.results", ".", "--scale", "mini", "--check", "--runs",
                            f"{tmp_path}/mini", "--out", f"{tmp_path}/mini.md"], cwd=PROJECT, capture_output=True,
                           text=True, env=env)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert "claims: 4/4 held" in check.stdout + (tmp_path / "mini.md").read_text()
