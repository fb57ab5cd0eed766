"""The pipeline on a tiny zoo: train.py writes metrics.json with exact permutation invariance for the equivariant
models, eval.py shows it, a killed run resumes from its last epoch, bad input is named; batched SIREN fitting fits."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from nft import fit_sirens
from nft.pipeline import run, show_run
from shared.testing import run_config

PROJECT = Path(__file__).resolve().parents[1]
TINY = ["zoo.classes=[0,1]", "zoo.copies=1", "zoo.steps=30", "optim.epochs=1", "model.channels=8"]


def _run(tmp_path, overrides):
    cache = {"zoo.cache_dir": str(tmp_path.parent / "cache")}
    return run_config(run, PROJECT / "configs", overrides, tmp_path, **cache)


def test_train_py_and_eval_py(tmp_path):
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}/r", f"zoo.cache_dir={tmp_path}/c", *TINY],
                         cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())["metrics"]
    assert m["test/perm_agreement"] == 1.0 and m["test/perm_max_logit_diff"] < 1e-4
    assert m["data/classes"] == 2 and 0 <= m["test/acc"] <= 1
    shown = show_run(OmegaConf.create({"run_dir": str(tmp_path / "r")}))
    assert shown["model"] == "nft" and shown["test/acc"] == m["test/acc"]


def test_models_and_resume(tmp_path):
    for name in ("mlp", "statnet", "nfn"):
        over = TINY[:-1] + [f"model={name}"] + (["model.channels=8"] if name == "nfn" else [])
        m = _run(tmp_path / name, over)
        assert 0 <= m["test/acc"] <= 1
        if name == "nfn":
            assert m["test/perm_agreement"] == 1.0
    full = _run(tmp_path / "full", TINY[:-1] + ["model=mlp", "optim.epochs=2"])
    _run(tmp_path / "half", TINY[:-1] + ["model=mlp", "optim.epochs=1"])
    (tmp_path / "half" / "metrics.json").unlink()  # a run killed after its first epoch
    resumed = _run(tmp_path / "half", TINY[:-1] + ["model=mlp", "optim.epochs=2"])
    assert resumed["test/acc"] == full["test/acc"] and resumed["train/acc"] == full["train/acc"]
    with pytest.raises(ValueError, match="another run"):
        _run(tmp_path / "half", TINY[:-1] + ["model=mlp", "optim.epochs=3", "optim.lr=0.01"])


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="study="):
        _run(tmp_path / "a", TINY + ["study=inr2array"])


def test_batched_siren_fit_reaches_a_small_error():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 8, 8, generator=g) * 2 - 1
    feats, mse = fit_sirens(images, steps=150, seed=0)
    assert feats.batch == 6 and feats.widths == (2, 16, 16, 1) and mse.max() < 0.05
