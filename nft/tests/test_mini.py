"""Slow tier: the mini end to end with its claims checked by shared.results against results/paper.yaml, the
submitit_local launcher, and a CPU extra (predict_gen on the toy CNN zoo) end to end."""
from pathlib import Path

import pytest

from shared import results
from shared.testing import run_script

PROJECT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_mini_claims_hold(tmp_path):
    run_script(PROJECT, ["train.py", "-m", "+experiment=mini", f"hydra.sweep.dir={tmp_path}/classify"], 1500)
    run_script(PROJECT, ["-m", "shared.results", ".", "--scale", "mini", "--check", "--runs", str(tmp_path), "--out",
                         f"{tmp_path}/mini.md"], 120)


def test_submitit_local_launcher(tmp_path):
    run_script(PROJECT, ["train.py", "-m", "+experiment=mini", "+launcher=local", "model=mlp", "seed=0",
                         "optim.epochs=2", f"hydra.sweep.dir={tmp_path}"], 600)
    assert len(results.find_runs(tmp_path)) == 1


def test_predict_gen_extra_runs(tmp_path):
    run_script(PROJECT, ["train.py", "-m", "+experiment=predict_gen_digits", "model=predict_gen_nft", "seed=0",
                         "cnn_zoo.n_nets=60", "cnn_zoo.max_steps=50", "optim.epochs=3",
                         f"hydra.sweep.dir={tmp_path}"], 900)
    (run,) = results.find_runs(tmp_path)
    m = run["metrics"]
    assert m["test/tau"] == m["test/tau_permuted"] and -1 <= m["test/tau"] <= 1
