"""Slow tier: the mini on one calibration seed (the tiny model trained once and cached, ~5 min the first
time), checking every claim of results/paper.yaml whose rows this shortened grid produces."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.results import summarize

PROJECT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mini_claims_on_one_seed(tmp_path):
    runs = tmp_path / "outputs" / "mini"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run([sys.executable, "train.py", "-m", "+experiment=mini", "seed=0",
                          "method=dense,wanda,magnitude,magnitude_row,wanda_layer", "setting=u50,u70,nm48,nm24",
                          f"hydra.sweep.dir={runs}"], cwd=PROJECT, capture_output=True, text=True, timeout=600,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    md, claims = summarize(PROJECT, "mini", runs_root=runs, out=tmp_path / "mini.md")
    judged = [c for c in claims if c["status"] != "missing"]
    assert len(judged) == 8, md  # N:M (2), metric vs metric at 50/70% per row and per layer (4), pruned > dense (2)
    assert all(c["status"] == "held" for c in judged), md
