"""Data that follows the feature model (spec 5 D/F, our construction): t_d dominant and t_r rare random unit
directions in R^dim, each owned by one class; a dominant point (probability p_d) is the sum of n_d features of its
class's dominant pool, a rare point the sum of n_r of its class's rare pool; plus N(0, noise^2) per coordinate.
With few rare features per class, each is seen a few times in training: seeds differ on whether they learn it
(the theory's GDE-breaking regime); coupling more rare features per point (n_r up) covers rare points better."""
from __future__ import annotations

import torch


def feature_model_data(n: int, p_d: float = 0.5, t_d: int = 20, n_d: int = 2, t_r: int = 40, n_r: int = 1,
                       classes: int = 2, dim: int = 64, noise: float = 0.15, seed: int = 0, directions_seed: int = 0):
    """(x [n, dim], y [n], is_dominant [n]); the feature directions come from ``directions_seed`` so train and test
    sets drawn with different ``seed`` share them."""
    if not 0 <= p_d <= 1:
        raise ValueError(f"p_d={p_d} is a probability")
    if t_d % classes or t_r % classes:
        raise ValueError(f"t_d={t_d} and t_r={t_r} must be multiples of classes={classes} (each class owns a pool)")
    if n_d > t_d // classes or n_r > t_r // classes:
        raise ValueError("a point's n_d (n_r) features must fit in its class's dominant (rare) pool")
    gd = torch.Generator().manual_seed(directions_seed)
    dirs = torch.randn(t_d + t_r, dim, generator=gd)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    dom, rare = dirs[:t_d].view(classes, t_d // classes, dim), dirs[t_d:].view(classes, t_r // classes, dim)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    is_dom = torch.rand(n, generator=g) < p_d
    x = torch.zeros(n, dim)
    for pool, k, sel in ((dom, n_d, is_dom), (rare, n_r, ~is_dom)):
        idx = torch.nonzero(sel).squeeze(1)
        if len(idx) == 0:
            continue
        pick = torch.rand(len(idx), pool.shape[1], generator=g).argsort(1)[:, :k]  # k distinct features
        x[idx] = pool[y[idx][:, None], pick].sum(1)
    return x + noise * torch.randn(n, dim, generator=g), y, is_dom
