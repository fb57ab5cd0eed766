"""SIREN zoos: images -> one SIREN per image and copy (independent random inits), fitted in batches, cached per
(copy, shard), split by image (validation and test images contribute copy 0 only, so no held-out image is seen in
training under another init).

Image sources: ``digits`` (scikit-learn's bundled 8x8 digits, the mini), ``mnist``, ``fashion``, ``cifar10``
(torchvision, train + test concatenated in that order; ``download=true`` fetches them, paper scale), ``npz`` (a file
with ``images`` [N, H, W(, 3)] in [0, 1] and ``labels`` [N]). Pixels are mapped to [-1, 1].

Paper-scale zoos are fitted as a Slurm array over shards (``study=fit_zoo zoo.fit_shard=i zoo.fit_copy=c``, one job
per shard and copy); a training run loads every shard and names the missing ones."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from nft.siren import fit_sirens
from nft.weight_space import WeightSpaceFeatures

SOURCES = ("digits", "mnist", "fashion", "cifar10", "npz")


def load_images(source: str, root=None, download: bool = False, classes=None):
    """(images [N, H, W] or [N, H, W, 3] float32 in [-1, 1], labels [N] int64 in 0..K-1, K)."""
    if source == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        images, labels = d.images / 16.0, d.target
    elif source in ("mnist", "fashion", "cifar10"):
        try:
            import torchvision
        except ImportError as e:
            raise ImportError("zoo.source=mnist|fashion|cifar10 needs torchvision: pip install torchvision") from e
        cls = {"mnist": torchvision.datasets.MNIST, "fashion": torchvision.datasets.FashionMNIST,
               "cifar10": torchvision.datasets.CIFAR10}[source]
        parts = []
        for train in (True, False):
            try:
                ds = cls(str(root), train=train, download=download)
            except RuntimeError as e:
                raise FileNotFoundError(f"{source} is not under zoo.root={root}: set zoo.download=true (needs "
                                        "network) or point zoo.root at a torchvision copy") from e
            data = ds.data.numpy() if torch.is_tensor(ds.data) else np.asarray(ds.data)
            parts.append((data, np.asarray(ds.targets)))
        images = np.concatenate([p[0] for p in parts]) / 255.0
        labels = np.concatenate([p[1] for p in parts])
    elif source == "npz":
        if root is None or not Path(root).exists():
            raise FileNotFoundError(f"zoo.source=npz needs zoo.root=<a .npz with images and labels>, got {root}")
        z = np.load(root)
        images, labels = z["images"], z["labels"]
    else:
        raise ValueError(f"zoo.source={source!r}: one of {SOURCES}")
    images = torch.tensor(np.asarray(images, dtype=np.float32) * 2 - 1)
    labels = torch.tensor(np.asarray(labels), dtype=torch.long)
    if classes:
        keep = torch.isin(labels, torch.tensor(sorted(classes)))
        images, labels = images[keep], torch.searchsorted(torch.tensor(sorted(classes)), labels[keep])
    return images, labels, int(labels.max()) + 1


def _shard_path(cache_dir, key: str, copy: int, shard: int, n_shards: int) -> Path:
    return Path(cache_dir) / f"zoo_{key}" / f"copy{copy}_shard{shard}of{n_shards}.pt"


def fit_shard(images, fit: dict, copy: int, shard: int, n_shards: int, path, progress: bool = False) -> dict:
    """Fit the SIRENs of one (copy, shard); written atomically to ``path`` (a parallel job never reads half a
    file) unless it is None."""
    idx = np.array_split(np.arange(len(images)), n_shards)[shard]
    seed = 1000 + copy + 7919 * shard  # copy c, shard 0 keeps the single-shard seeds
    feats, mse = fit_sirens(images[idx], tuple(fit["hidden"]), fit["steps"], fit["lr"], fit["w0_first"],
                            fit["w0_hidden"], seed=seed, chunk=fit.get("chunk", 4096), progress=progress)
    blob = {"fit": fit, "weights": list(feats.weights), "biases": list(feats.biases), "mse": mse}
    if path is None:
        return blob
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return blob


def zoo_key(source: str, classes, fit: dict, images: torch.Tensor) -> str:
    """The cache key: the source, classes, fitting settings and a hash of the images themselves (another file with
    as many images is another zoo)."""
    spec = {"source": source, "classes": sorted(classes) if classes else None, "n_images": len(images), **fit,
            "images": hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()}
    spec.pop("chunk", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def siren_zoo(source: str = "digits", classes=None, copies: int = 4, hidden=(16, 16), steps: int = 200,
              lr: float = 1e-3, w0_first: float = 8.0, w0_hidden: float = 30.0, test_frac: float = 0.28,
              val_frac: float = 0.1, split=None, split_seed: int = 0, cache_dir=None, n_shards: int = 1,
              fit_missing: bool = True, root=None, download: bool = False, progress: bool = False) -> dict:
    """{"train"/"val"/"test": (features, labels), "images": {split: [n, H, W, c]}, "fit_mse", "widths",
    "n_classes"}. ``split`` = [n_train, n_val, n_test] takes index ranges in order (the paper's splits); null =
    a random split by image (``test_frac``, ``val_frac`` of the images, ``split_seed``)."""
    images, labels, n_classes = load_images(source, root, download, classes)
    fit = {"hidden": list(hidden), "steps": steps, "lr": lr, "w0_first": w0_first, "w0_hidden": w0_hidden}
    key = zoo_key(source, classes, fit, images)
    parts, missing = [], []
    for c in range(copies):
        shards = []
        for s in range(n_shards):
            path = _shard_path(cache_dir, key, c, s, n_shards) if cache_dir else None
            if path is not None and path.exists():
                blob = torch.load(path, weights_only=False)
                if blob["fit"] != fit:
                    raise ValueError(f"{path} holds another fit: delete it")
            elif fit_missing or path is None:
                blob = fit_shard(images, fit, c, s, n_shards, path, progress)
            else:
                missing.append(f"copy {c} shard {s}")
                continue
            shards.append(blob)
        parts.append(shards)
    if missing:
        raise FileNotFoundError(f"SIREN zoo {key} misses {len(missing)} of {copies * n_shards} shards ({missing[:4]}"
                                f"...): fit them first, e.g. python train.py -m +experiment=<this experiment> "
                                f"study=fit_zoo 'zoo.fit_shard=range(0,{n_shards})' 'zoo.fit_copy=range(0,{copies})' "
                                "+launcher=slurm (or set zoo.fit_missing=true to fit them in this run)")
    L = len(hidden) + 1
    W = [torch.stack([torch.cat([b["weights"][i] for b in sh]) for sh in parts]) for i in range(L)]  # [copies, N,..]
    Bs = [torch.stack([torch.cat([b["biases"][i] for b in sh]) for sh in parts]) for i in range(L)]
    mse = torch.stack([torch.cat([b["mse"] for b in sh]) for sh in parts])
    n = len(images)
    if split:
        n_tr, n_va, n_te = split
        if n_tr + n_va + n_te > n:
            raise ValueError(f"zoo.split={list(split)} asks for {n_tr + n_va + n_te} images, the source has {n}")
        order = np.arange(n)
        tr, va, te = order[:n_tr], order[n_tr:n_tr + n_va], order[n - n_te:]
    else:
        order = np.random.default_rng(split_seed).permutation(n)
        n_te, n_va = int(round(test_frac * n)), int(round(val_frac * n))
        te, va, tr = order[:n_te], order[n_te:n_te + n_va], order[n_te + n_va:]

    def take(idx, cps):  # the chosen copies of the chosen images, flattened copy-major
        idx = torch.as_tensor(idx)
        w = tuple(t[cps][:, idx].flatten(0, 1) for t in W)
        b = tuple(t[cps][:, idx].flatten(0, 1) for t in Bs)
        return WeightSpaceFeatures(w, b), labels[idx].repeat(len(cps))

    img = images if images.dim() == 4 else images[..., None]
    return {"train": take(tr, list(range(copies))), "val": take(va, [0]), "test": take(te, [0]),
            "images": {"train": img[torch.as_tensor(tr)].repeat(copies, 1, 1, 1), "val": img[torch.as_tensor(va)],
                       "test": img[torch.as_tensor(te)]},
            "fit_mse": float(mse.mean()), "widths": (2, *hidden, img.shape[-1]), "n_classes": n_classes,
            "image_shape": tuple(img.shape[1:3]), "key": key}


def fit_zoo_shard(source, classes, hidden, steps, lr, w0_first, w0_hidden, copy: int, shard: int, n_shards: int,
                  cache_dir, root=None, download=False, progress=False) -> Path:
    """One job of the fitting array: fit (copy, shard) unless it is cached; returns its path."""
    images, _, _ = load_images(source, root, download, classes)
    fit = {"hidden": list(hidden), "steps": steps, "lr": lr, "w0_first": w0_first, "w0_hidden": w0_hidden}
    path = _shard_path(cache_dir, zoo_key(source, classes, fit, images), copy, shard, n_shards)
    if not path.exists():
        fit_shard(images, fit, copy, shard, n_shards, path, progress)
    return path
