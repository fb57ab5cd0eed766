"""Slow tier: the mini reproduction end to end (claims from results/paper.yaml) and the submitit_local path."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.results import summarize

PROJECT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


@pytest.mark.slow
def test_mini_reproduction_meets_the_claims(tmp_path):
    runs = tmp_path / "outputs" / "mini" / "synthetic"
    out = subprocess.run([sys.executable, "train.py", "-m", "+experiment=mini", f"hydra.sweep.dir={runs}"],
                         cwd=PROJECT, capture_output=True, text=True, timeout=600, env=ENV)
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(list(runs.rglob("metrics.json"))) == 21
    md, claims = summarize(PROJECT, "mini", runs_root=tmp_path / "outputs" / "mini", out=tmp_path / "mini.md")
    assert claims and all(c["status"] == "held" for c in claims), md


@pytest.mark.slow
def test_submitit_local_sweep(tmp_path):
    out = subprocess.run([sys.executable, "train.py", "-m", "+launcher=local", "method=sinkhorn,softmax",
                          "data.n_agents=120", "data.n_steps=21", "train.steps=20", "train.progress=false",
                          f"hydra.sweep.dir={tmp_path}"], cwd=PROJECT, capture_output=True, text=True,
                         timeout=600, env=ENV)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    recs = [json.loads(p.read_text()) for p in tmp_path.rglob("metrics.json")]
    assert sorted(r["config"]["method"]["name"] for r in recs) == ["sinkhorn", "softmax"]
    assert all(r["status"] == "completed" for r in recs)
