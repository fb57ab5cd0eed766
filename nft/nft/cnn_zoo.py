"""CNN zoos for generalisation prediction (predict a network's test accuracy from its weights; metric Kendall's
tau).

- ``toy_cnn_zoo``: the Small CNN Zoo's architecture (conv 3x3 x3 with ``channels`` filters, ReLU, global average
  pooling, dense 10; 4,970 parameters at 16 channels and one input channel) trained on scikit-learn's 8x8 digits
  with random hyper-parameters (learning rate, steps, init scale, weight decay, fraction of the training data),
  every network of the zoo at once (grouped convolutions), on CPU in a minute. Ours, for the CPU; the real zoo
  varies more (optimiser, activation, dropout, init type) and trains 86 epochs on CIFAR-10/SVHN in grey.
  Convs 2 and 3 use stride 2 (8x8 -> 8 -> 4 -> 2) to keep it cheap (our choice).
- ``small_cnn_zoo``: the released Small CNN Zoo (Unterthiner et al. 2020: ``weights.npy``, ``metrics.csv.gz``,
  ``layout.csv``), the final checkpoint (step 86) of each run, TF layouts converted to ours. The layout.csv column
  names (varname, start_idx, end_idx, shape) are our reading of the release and checked with a named error.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nft.weight_space import WeightSpaceFeatures

STRIDES = (1, 2, 2)


def cnn_forward(params: WeightSpaceFeatures, images: torch.Tensor) -> torch.Tensor:
    """N CNNs (3 convs + GAP + dense) on one image batch [b, c, H, W] -> logits [N, b, n_out], as one grouped
    convolution per layer."""
    N = params.batch
    h = images.repeat(1, N, 1, 1)  # [b, N c_in, H, W]
    for i in range(params.n_layers - 1):
        w, bias = params.weights[i][:, 0], params.biases[i][:, 0]  # [N, o, i, kh, kw], [N, o]
        h = F.relu(F.conv2d(h, w.flatten(0, 1), bias.flatten(), stride=STRIDES[i], padding=1, groups=N))
    h = h.mean((2, 3)).view(h.shape[0], N, -1).transpose(0, 1)  # [N, b, c]
    return torch.baddbmm(params.biases[-1][:, 0, None], h, params.weights[-1][:, 0].transpose(1, 2))


def init_cnns(n: int, channels: int, n_in: int = 1, n_out: int = 10, scale=None, generator=None):
    """He-uniform init scaled per network by ``scale`` [n] (a random hyper-parameter of the zoo)."""
    scale = torch.ones(n) if scale is None else scale
    ws, bs, c_prev = [], [], n_in
    for c, k in ((channels, 3), (channels, 3), (channels, 3), (n_out, None)):
        fan = c_prev * (k * k if k else 1)
        shape = (n, 1, c, c_prev, k, k) if k else (n, 1, c, c_prev)
        bound = math.sqrt(6 / fan) * scale.view((n,) + (1,) * (len(shape) - 1))
        ws.append((torch.rand(*shape, generator=generator) * 2 - 1) * bound)
        bs.append(torch.zeros(n, 1, c))
        c_prev = c
    return WeightSpaceFeatures(tuple(ws), tuple(bs))


def toy_cnn_zoo(n_nets: int = 400, channels: int = 8, max_steps: int = 400, batch: int = 128, seed: int = 0,
                chunk: int = 200, cache_dir=None, progress: bool = False) -> dict:
    """{"params": WeightSpaceFeatures [n_nets], "acc": test accuracy [n_nets], "hparams": {...}}; cached."""
    from sklearn.datasets import load_digits

    spec = {"n_nets": n_nets, "channels": channels, "max_steps": max_steps, "batch": batch, "seed": seed,
            "strides": STRIDES}
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"toy_cnn_zoo_{key}.pt" if cache_dir else None
    if path is not None and path.exists():
        return torch.load(path, weights_only=False)
    d = load_digits()
    x = torch.tensor(d.images / 16.0 * 2 - 1, dtype=torch.float32)[:, None]
    y = torch.tensor(d.target)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(1234))
    te, tr = order[:500], order[500:]
    g = torch.Generator().manual_seed(seed)
    hp = {"lr": 10 ** (torch.rand(n_nets, generator=g) * 2.5 - 3),  # 1e-3 .. 10^-0.5, SGD
          "steps": torch.randint(10, max_steps + 1, (n_nets,), generator=g),
          "init_scale": 10 ** (torch.rand(n_nets, generator=g) - 0.5),
          "weight_decay": 10 ** (torch.rand(n_nets, generator=g) * 4 - 6),
          "data_frac": 0.1 + 0.9 * torch.rand(n_nets, generator=g)}
    out_w, out_b, accs = [], [], []
    for s in tqdm(range(0, n_nets, chunk), desc="train CNN zoo", disable=not progress):
        sl = slice(s, min(s + chunk, n_nets))
        n = sl.stop - sl.start
        p = init_cnns(n, channels, scale=hp["init_scale"][sl], generator=g)
        ts = [t.clone().requires_grad_(True) for t in p.weights + p.biases]
        L = p.n_layers
        n_avail = (hp["data_frac"][sl] * len(tr)).long()  # network j trains on the first n_avail[j] of its order
        for step in range(max_steps):
            idx = torch.randint(0, len(tr), (batch,), generator=g)
            logits = cnn_forward(WeightSpaceFeatures(tuple(ts[:L]), tuple(ts[L:])), x[tr[idx]])  # [n, b, 10]
            loss = F.cross_entropy(logits.flatten(0, 1), y[tr[idx]].repeat(n), reduction="none").view(n, batch)
            mask = (idx[None] < n_avail[:, None]).float()  # each network sees only its data fraction
            per_net = (loss * mask).sum(1) / mask.sum(1).clamp(min=1)
            grads = torch.autograd.grad(per_net.sum(), ts)
            live = (step < hp["steps"][sl]).float() * hp["lr"][sl]
            with torch.no_grad():
                for t, gr in zip(ts, grads):
                    shape = (n,) + (1,) * (t.dim() - 1)
                    t -= live.view(shape) * (gr + hp["weight_decay"][sl].view(shape) * t)
                    t.nan_to_num_(0.0, 0.0, 0.0)  # a diverged network stays in the zoo, at chance accuracy
        with torch.no_grad():
            final = WeightSpaceFeatures(tuple(t.detach() for t in ts[:L]), tuple(t.detach() for t in ts[L:]))
            acc = (cnn_forward(final, x[te]).argmax(-1) == y[te]).float().mean(1)
        out_w.append(final.weights)
        out_b.append(final.biases)
        accs.append(acc)
    params = WeightSpaceFeatures(tuple(torch.cat([w[i] for w in out_w]) for i in range(4)),
                                 tuple(torch.cat([b[i] for b in out_b]) for i in range(4)))
    zoo = {"params": params, "acc": torch.cat(accs), "hparams": hp, "spec": spec}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(zoo, tmp)
        os.replace(tmp, path)
    return zoo


def small_cnn_zoo(root, step: int = 86) -> dict:
    """The released Small CNN Zoo in ``root`` (weights.npy, metrics.csv.gz, layout.csv): the runs' checkpoints at
    ``step`` (86 = the final one, as the paper) as {"params", "acc"}."""
    import pandas as pd

    root = Path(root)
    need = [root / "weights.npy", root / "metrics.csv.gz", root / "layout.csv"]
    if not all(p.exists() for p in need):
        raise FileNotFoundError(f"{root} must hold weights.npy, metrics.csv.gz and layout.csv: download and unpack "
                                "the Small CNN Zoo (google-research dnn_predict_accuracy, e.g. cifar10.tar.xz) and "
                                "set data.root to the folder")
    layout = pd.read_csv(need[2])
    cols = {"varname", "start_idx", "end_idx", "shape"}
    if not cols <= set(layout.columns):
        raise ValueError(f"{need[2]} has columns {list(layout.columns)}; expected {sorted(cols)}: adapt "
                         "nft/cnn_zoo.py:small_cnn_zoo to this release")
    metrics = pd.read_csv(need[1])
    keep = (metrics["step"] == step).to_numpy()
    flat = torch.tensor(np.load(need[0], mmap_mode="r")[keep], dtype=torch.float32)
    acc = torch.tensor(metrics.loc[keep, "test_accuracy"].to_numpy(), dtype=torch.float32)
    ws, bs = [], []
    for _, r in layout.iterrows():
        shape = tuple(int(v) for v in str(r["shape"]).strip("()[] ").replace(",", " ").split())
        t = flat[:, int(r["start_idx"]):int(r["end_idx"])].reshape(len(flat), *shape)
        if len(shape) == 4:  # TF conv kernel [kh, kw, in, out] -> [out, in, kh, kw]
            ws.append(t.permute(0, 4, 3, 1, 2)[:, None])
        elif len(shape) == 2:  # TF dense [in, out] -> [out, in]
            ws.append(t.transpose(1, 2)[:, None])
        else:
            bs.append(t[:, None])
    return {"params": WeightSpaceFeatures(tuple(ws), tuple(bs)), "acc": acc}


def kendall_tau(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Kendall's tau-b (scipy), the paper's metric."""
    from scipy.stats import kendalltau

    return float(kendalltau(pred.double().numpy(), target.double().numpy()).statistic)
