"""Slow tier: the mini end to end on a smaller pool (2500 pairs, 2 student seeds, everything trained and detected
from scratch in a temporary cache: ~9 min on 2 cores), claims checked with shared.results against
results/paper.yaml."""
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
             "seed=0,1", "data.n=2500", f"cache_dir={tmp_path}/cache"]  # command-line values replace the grid's
    out = subprocess.run(sweep, cwd=PROJECT, capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    check = subprocess.run([sys.executable, "-m", "shared.results", ".", "--scale", "mini", "--check", "--runs",
                            f"{tmp_path}/mini", "--out", f"{tmp_path}/mini.md"], cwd=PROJECT, capture_output=True,
                           text=True, env=env)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
