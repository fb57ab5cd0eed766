"""The pipeline on tiny zoos: train.py writes metrics.json with exact permutation invariance for the equivariant
models, eval.py shows it, a killed run resumes from its last epoch, every study runs, zoos are fitted in shards and
loaded from every source, bad input is named; batched SIREN fitting fits."""
import gzip
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from nft import fit_sirens
from nft.cnn_zoo import cnn_forward, init_cnns, small_cnn_zoo
from nft.data import load_images
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
    assert m["data/classes"] == 2 and 0 <= m["test/acc"] <= 1 and m["data/val_sirens"] > 0
    shown = show_run(OmegaConf.create({"run_dir": str(tmp_path / "r")}))
    assert shown["model"] == "nft" and shown["test/acc"] == m["test/acc"]


def test_models_extension_and_foreign_checkpoints(tmp_path):
    for name in ("mlp", "statnet", "nfn", "nfn_hnp"):
        over = TINY[:-1] + [f"model={name}"] + (["model.channels=8"] if name.startswith("nfn") else [])
        m = _run(tmp_path / name, over)
        assert 0 <= m["test/acc"] <= 1
        if name.startswith("nfn"):
            assert m["test/perm_agreement"] == 1.0
    full = _run(tmp_path / "full", TINY[:-1] + ["model=mlp", "optim.epochs=2"])
    _run(tmp_path / "half", TINY[:-1] + ["model=mlp", "optim.epochs=1"])
    extended = _run(tmp_path / "half", TINY[:-1] + ["model=mlp", "optim.epochs=2"])  # a constant schedule extends
    assert extended["test/acc"] == full["test/acc"] and extended["train/acc"] == full["train/acc"]
    with pytest.raises(ValueError, match="another run"):
        _run(tmp_path / "half", TINY[:-1] + ["model=mlp", "optim.epochs=3", "optim.lr=0.01"])


def test_a_killed_run_resumes_bitwise_with_dropout_and_a_schedule(tmp_path, monkeypatch):
    over = TINY[:-1] + ["model=nfn", "model.channels=8", "model.dropout=0.3", "optim.schedule=cosine",
                        "optim.warmup_steps=2", "optim.epochs=3"]  # NFN's head dropout draws from the RNG
    full = _run(tmp_path / "full", over)
    real_save, saves = torch.save, []

    def die_at_second_checkpoint(obj, f, *a, **k):  # the job is killed during its second epoch's checkpoint
        if "checkpoint" in str(f):
            saves.append(f)
            if len(saves) == 2:
                raise KeyboardInterrupt
        real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", die_at_second_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path / "killed", over)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(tmp_path / "killed" / "checkpoint_train.pt", weights_only=False)["epoch"] == 1
    resumed = _run(tmp_path / "killed", over)
    a, b = (torch.load(tmp_path / d / "checkpoint_train.pt", weights_only=False) for d in ("full", "killed"))
    assert a["epoch"] == b["epoch"] == 3 and a["best_epoch"] == b["best_epoch"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert resumed["test/acc"] == full["test/acc"] and resumed["val/acc"] == full["val/acc"]


def test_inr2array_predict_gen_and_editing_studies(tmp_path):
    i2a = ["study=inr2array", "model=inr2array", "model.channels=16", "model.depth=1", "model.fourier_m=8",
           "model.n_latents=4", "model.dec_hidden=32", "latent_classifier.d=32", "latent_classifier.depth=1",
           "latent_classifier.ff=64", "latent_classifier.head_hidden=32", "latent_classifier.optim.epochs=2",
           "latent_classifier.optim.warmup_steps=2"]
    m = _run(tmp_path / "i2a", TINY[:-1] + i2a)
    assert m["test/latent_max_diff"] < 1e-4 and m["test/perm_agreement"] == 1.0 and m["test/recon_mse"] > 0
    assert (tmp_path / "i2a" / "reconstructions.png").exists()
    pg = ["study=predict_gen", "model=nft", "model.channels=8", "cnn_zoo.n_nets=30", "cnn_zoo.max_steps=10",
          "optim.epochs=1", "optim.batch_size=8"]
    m = _run(tmp_path / "pg", pg)
    assert m["test/tau"] == m["test/tau_permuted"] and m["test/perm_max_diff"] < 1e-5 and m["data/test_nets"] == 15
    for name in ("nft", "mlp"):
        m = _run(tmp_path / f"ed_{name}", TINY[:-1] + ["study=editing", f"model={name}"]
                 + (["model.channels=8"] if name == "nft" else []))
        assert m["test/mse"] > 0 and m["test/mse_unedited"] > 0
        if name == "nft":
            assert m["test/perm_render_max_diff"] < 1e-4  # an equivariant edit draws the same picture
    with pytest.raises(ValueError, match="model=inr2array"):
        _run(tmp_path / "bad", TINY + ["study=inr2array"])


def test_zoo_shards_fitted_by_array_jobs_then_loaded(tmp_path):
    base = ["zoo.classes=[0,1]", "zoo.copies=1", "zoo.steps=5", "zoo.n_shards=2"]
    m = _run(tmp_path / "s0", base + ["study=fit_zoo", "zoo.fit_copy=0", "zoo.fit_shard=0"])
    assert m["fit/sirens"] == 180 and Path(m["fit/path"]).exists()
    with pytest.raises(FileNotFoundError, match="copy 0 shard 1"):
        _run(tmp_path / "c0", base + ["zoo.fit_missing=false", "model=mlp", "optim.epochs=1"])
    _run(tmp_path / "s1", base + ["study=fit_zoo", "zoo.fit_copy=0", "zoo.fit_shard=1"])
    m = _run(tmp_path / "c1", base + ["zoo.fit_missing=false", "model=mlp", "optim.epochs=1"])
    assert m["data/train_sirens"] + m["data/val_sirens"] + m["data/test_sirens"] == 360
    with pytest.raises(ValueError, match="fit_copy"):
        _run(tmp_path / "s2", base + ["study=fit_zoo"])


def _idx(path: Path, arr: np.ndarray, magic: int):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes())


def test_image_sources_torchvision_mnist_and_npz(tmp_path):
    pytest.importorskip("torchvision")
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = np.random.default_rng(0)
    for split, n in (("train", 6), ("t10k", 4)):  # torchvision reads the raw idx files (no download)
        _idx(raw / f"{split}-images-idx3-ubyte", g.integers(0, 256, (n, 28, 28), dtype=np.uint8), 2051)
        _idx(raw / f"{split}-labels-idx1-ubyte", g.integers(0, 10, (n,), dtype=np.uint8), 2049)
    images, labels, k = load_images("mnist", tmp_path)
    assert images.shape == (10, 28, 28) and images.min() >= -1 and images.max() <= 1 and len(labels) == 10
    with pytest.raises(FileNotFoundError, match="zoo.download=true"):
        load_images("fashion", tmp_path)
    np.savez(tmp_path / "x.npz", images=g.random((5, 4, 4, 3)), labels=np.array([0, 1, 2, 1, 0]))
    images, labels, k = load_images("npz", tmp_path / "x.npz", classes=[1, 2])
    assert images.shape == (3, 4, 4, 3) and labels.tolist() == [0, 1, 0] and k == 2
    with pytest.raises(FileNotFoundError, match="zoo.root"):
        load_images("npz", None)


def test_small_cnn_zoo_loader_converts_tf_layouts(tmp_path):
    pd = pytest.importorskip("pandas")
    ours = init_cnns(3, 4, generator=torch.Generator().manual_seed(0))
    ours = ours.map(lambda t: t, lambda t: torch.randn_like(t))  # non-zero biases
    cols, rows, start = [], [], 0
    for i in range(4):  # TF order per layer: kernel [kh, kw, in, out] / dense [in, out], then bias
        w = ours.weights[i][:, 0]
        tf = w.permute(0, 3, 4, 2, 1) if w.dim() == 5 else w.transpose(1, 2)
        for name, t in ((f"layer{i}/kernel", tf), (f"layer{i}/bias", ours.biases[i][:, 0])):
            n = t[0].numel()
            rows.append({"varname": name, "start_idx": start, "end_idx": start + n, "shape": str(tuple(t.shape[1:]))})
            cols.append(t.reshape(3, -1))
            start += n
    flat = torch.cat(cols, 1).numpy()
    np.save(tmp_path / "weights.npy", np.concatenate([flat, flat * 0]))  # a second checkpoint at another step
    pd.DataFrame(rows).to_csv(tmp_path / "layout.csv", index=False)
    with gzip.open(tmp_path / "metrics.csv.gz", "wt") as f:
        pd.DataFrame({"step": [86, 86, 86, 0, 0, 0], "test_accuracy": [0.1, 0.5, 0.9, 0.1, 0.1, 0.1]}).to_csv(f)
    zoo = small_cnn_zoo(tmp_path)
    assert zoo["params"].filter_shapes == ((3, 3), (3, 3), (3, 3), ()) and zoo["acc"].tolist() == pytest.approx(
        [0.1, 0.5, 0.9])
    images = torch.randn(2, 1, 8, 8)
    assert torch.allclose(cnn_forward(zoo["params"], images), cnn_forward(ours, images), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="Small CNN Zoo"):
        small_cnn_zoo(tmp_path / "nothing")


def test_bad_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="study="):
        _run(tmp_path / "a", TINY + ["study=pretrain"])
    with pytest.raises(ValueError, match="cnn_zoo.root"):
        _run(tmp_path / "b", ["study=predict_gen", "cnn_zoo.source=small_cnn_zoo"])


def test_batched_siren_fit_reaches_a_small_error():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 8, 8, generator=g) * 2 - 1
    feats, mse = fit_sirens(images, steps=150, seed=0)
    assert feats.batch == 6 and feats.widths == (2, 16, 16, 1) and mse.max() < 0.05
