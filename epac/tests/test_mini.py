"""Slow tier: the mini end to end with its claims checked by shared.results against results/paper.yaml, and the
submitit_local launcher."""
from pathlib import Path

import pytest

from shared import results
from shared.testing import run_script

PROJECT = Path(__file__).resolve().parents[1]
ENV = {"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"}
pytestmark = pytest.mark.slow


def _run(args, timeout=900):
    return run_script(PROJECT, args, timeout, ENV)


def test_mini_claims_hold(tmp_path):
    _run(["train.py", "-m", "+experiment=mini", f"hydra.sweep.dir={tmp_path}/learn"])
    _run(["train.py", "-m", "+experiment=rademacher", "scale=mini", f"hydra.sweep.dir={tmp_path}/rad"])
    _run(["-m", "shared.results", ".", "--scale", "mini", "--check", "--runs", str(tmp_path), "--out",
          f"{tmp_path}/mini.md"])


def test_submitit_local_launcher(tmp_path):
    _run(["train.py", "-m", "+experiment=mini", "+launcher=local", "method=penalty", "data.n_labeled=8", "seed=0",
          "optim.steps=100", f"hydra.sweep.dir={tmp_path}"], timeout=600)
    assert len(results.find_runs(tmp_path)) == 1
