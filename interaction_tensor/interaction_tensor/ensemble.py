"""Ensembles of small MLPs trained together (one batched matmul per layer for all M models), each from its own
seed and, optionally, on its own random half of the training set (the setting where GDE was first reported; with
seeds alone the spec's pilot found disagreement under-estimating error). Penultimate activations, predictions and
probabilities on the evaluation points are what the interaction tensor and GDE need."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def init_mlps(n_models: int, sizes, generator=None) -> list:
    """[(W [M, d_in, d_out], b [M, d_out]), ...] with torch's default Linear init, per model."""
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:]):
        bound = 1 / math.sqrt(d_in)
        w = (torch.rand(n_models, d_in, d_out, generator=generator) * 2 - 1) * bound
        b = (torch.rand(n_models, d_out, generator=generator) * 2 - 1) * bound
        layers.append((w.requires_grad_(True), b.requires_grad_(True)))
    return layers


def forward(layers, x: torch.Tensor, return_hidden: bool = False):
    """x [M, B, d] (or [B, d], shared) -> logits [M, B, classes] (and the last hidden layer [M, B, h])."""
    h = x if x.dim() == 3 else x.expand(layers[0][0].shape[0], *x.shape)
    for i, (w, b) in enumerate(layers):
        z = torch.baddbmm(b[:, None], h, w)
        if i < len(layers) - 1:
            h = F.relu(z)
    return (z, h) if return_hidden else z


def train_ensemble(x, y, n_models: int = 12, hidden=(64, 32), epochs: int = 200, lr: float = 1e-3,
                   batch: int = 64, seed: int = 0, subsample: float | None = 0.5, n_classes: int | None = None,
                   progress: bool = False) -> dict:
    """Adam, ``epochs`` passes over each model's own training subset (a random ``subsample`` fraction of the
    training set, or all of it with None), minibatches of ``batch`` drawn per model. Returns the trained layers and
    each model's subset mask."""
    g = torch.Generator().manual_seed(seed)
    n, d = x.shape
    K = int(n_classes or int(y.max()) + 1)
    layers = init_mlps(n_models, (d, *hidden, K), g)
    if subsample is None:
        mask = torch.ones(n_models, n, dtype=torch.bool)
    else:
        if not 0 < subsample <= 1:
            raise ValueError(f"subsample={subsample}: a fraction in (0, 1] or null")
        keys = torch.rand(n_models, n, generator=g)
        mask = keys.argsort(1).argsort(1) < int(round(subsample * n))
    sizes = mask.sum(1)
    own = torch.stack([torch.nonzero(mask[m]).squeeze(1) for m in range(n_models)])  # [M, n_m]: equal sizes
    steps = epochs * math.ceil(int(sizes[0]) / batch)
    opt = torch.optim.Adam([t for pair in layers for t in pair], lr=lr)
    for _ in tqdm(range(steps), desc="ensemble", disable=not progress):
        pick = torch.randint(0, own.shape[1], (n_models, batch), generator=g)
        idx = own.gather(1, pick)  # [M, B]: each model's own minibatch
        logits = forward(layers, x[idx])
        loss = F.cross_entropy(logits.flatten(0, 1), y[idx].flatten(), reduction="sum") / batch
        opt.zero_grad()
        loss.backward()  # models are independent: the sum's gradient is each model's own
        opt.step()
    return {"layers": [(w.detach(), b.detach()) for w, b in layers], "mask": mask}


@torch.no_grad()
def evaluate(layers, x) -> dict:
    """Predictions [M, N], probabilities [M, N, K] and penultimate activations [M, N, h] on ``x``."""
    logits, hid = forward(layers, x, return_hidden=True)
    return {"pred": logits.argmax(-1), "probs": logits.softmax(-1), "acts": hid}
