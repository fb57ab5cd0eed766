"""The mini's SIREN zoo: scikit-learn's bundled 8x8 digits (a class subset on request), pixel values mapped to
[-1, 1], ``copies`` SIRENs per image from independent random inits, fitted once and cached. Split by image: a
fixed random ``test_frac`` of the images are test images (their copy 0 only), the rest train images (all copies),
so no test image is seen in training under another init."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from nft.siren import fit_sirens
from nft.weight_space import WeightSpaceFeatures


def digits_zoo(classes=None, copies: int = 4, hidden=(16, 16), steps: int = 200, lr: float = 1e-3,
               w0_first: float = 8.0, w0_hidden: float = 30.0, test_frac: float = 0.28, split_seed: int = 0,
               cache_dir=None, progress: bool = False) -> dict:
    """{"train": (features, labels), "test": (features, labels), "fit_mse": mean per-pixel MSE, "widths"}."""
    from sklearn.datasets import load_digits

    spec = {"classes": sorted(classes) if classes else None, "copies": copies, "hidden": list(hidden),
            "steps": steps, "lr": lr, "w0_first": w0_first, "w0_hidden": w0_hidden}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"digits_zoo_{key}.pt" if cache_dir else None
    d = load_digits()
    keep = np.isin(d.target, spec["classes"]) if spec["classes"] else np.ones(len(d.target), bool)
    images = torch.tensor(d.images[keep] / 16.0 * 2 - 1, dtype=torch.float32)
    labels = torch.tensor(d.target[keep])
    if spec["classes"]:
        labels = torch.searchsorted(torch.tensor(spec["classes"]), labels)  # 0..K-1
    if path is not None and path.exists():
        blob = torch.load(path, weights_only=False)
        if blob["spec"] != spec:
            raise ValueError(f"{path} holds another zoo: delete it")
        zoo = blob["zoo"]
    else:
        parts = [fit_sirens(images, hidden, steps, lr, w0_first, w0_hidden, seed=1000 + c, progress=progress)
                 for c in range(copies)]  # copy c: its own random inits
        zoo = {"weights": [torch.stack([p[0].weights[i] for p in parts]) for i in range(len(hidden) + 1)],
               "biases": [torch.stack([p[0].biases[i] for p in parts]) for i in range(len(hidden) + 1)],
               "mse": torch.stack([p[1] for p in parts])}
        if path is not None:  # written then renamed: a parallel job never reads half a file
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            torch.save({"spec": spec, "zoo": zoo}, tmp)
            os.replace(tmp, path)
    n = len(images)
    order = np.random.default_rng(split_seed).permutation(n)
    n_test = int(round(test_frac * n))
    test_idx, train_idx = torch.tensor(order[:n_test]), torch.tensor(order[n_test:])

    def take(idx, cps):  # [copies, N, ...] -> the chosen copies of the chosen images, flattened
        w = tuple(t[cps][:, idx].flatten(0, 1) for t in zoo["weights"])
        b = tuple(t[cps][:, idx].flatten(0, 1) for t in zoo["biases"])
        return WeightSpaceFeatures(w, b), labels[idx].repeat(len(cps))

    return {"train": take(train_idx, list(range(copies))), "test": take(test_idx, [0]),
            "fit_mse": float(zoo["mse"].mean()), "widths": (2, *hidden, 1), "n_classes": int(labels.max()) + 1,
            "n_images": n}
