"""SIRENs (Sitzmann et al. 2020): x -> sin(w0 (W1 x + b1)) -> sin(w (W2 h + b2)) ... -> W_L h + b_L (linear out),
fitted in a batch: N networks as stacked parameter tensors, one ``bmm`` per layer, full-batch Adam on every pixel.
``fit_sirens`` returns their parameters as ``WeightSpaceFeatures`` (C = 1) and the fit's per-pixel MSE."""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from nft.weight_space import WeightSpaceFeatures


def grid(h: int, w: int) -> torch.Tensor:
    """[h w, 2] pixel coordinates on linspace(-1, 1), row-major."""
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).view(-1, 2)


def siren_forward(params: WeightSpaceFeatures, coords: torch.Tensor, w0_first: float = 30.0,
                  w0_hidden: float = 30.0) -> torch.Tensor:
    """Evaluate a batch of SIRENs [B networks] at ``coords`` [P, 2] (shared) or [B, P, 2] -> [B, P, n_out]."""
    h = coords.expand(params.batch, *coords.shape[-2:]) if coords.dim() == 2 else coords
    L = params.n_layers
    for i, (w, b) in enumerate(zip(params.weights, params.biases)):
        h = torch.baddbmm(b[:, 0, None, :], h, w[:, 0].transpose(1, 2))
        if i < L - 1:
            h = torch.sin((w0_first if i == 0 else w0_hidden) * h)
    return h


def init_sirens(n: int, widths, w0_hidden: float = 30.0, generator=None) -> WeightSpaceFeatures:
    """Sitzmann's init: first layer U(-1/n_in, 1/n_in), later layers U(-sqrt(6/n_in)/w0, sqrt(6/n_in)/w0); biases
    U(-1/sqrt(n_in), 1/sqrt(n_in)) (torch's default)."""
    ws, bs = [], []
    for i in range(len(widths) - 1):
        n_in, n_out = widths[i], widths[i + 1]
        bound = 1 / n_in if i == 0 else math.sqrt(6 / n_in) / w0_hidden
        ws.append((torch.rand(n, 1, n_out, n_in, generator=generator) * 2 - 1) * bound)
        bs.append((torch.rand(n, 1, n_out, generator=generator) * 2 - 1) / math.sqrt(n_in))
    return WeightSpaceFeatures(tuple(ws), tuple(bs))


def fit_sirens(images: torch.Tensor, hidden=(16, 16), steps: int = 200, lr: float = 1e-3, w0_first: float = 8.0,
               w0_hidden: float = 30.0, seed: int = 0, chunk: int = 4096, progress: bool = False):
    """Fit one SIREN per image ([N, H, W] grey or [N, H, W, 3] colour, values in [-1, 1]) from independent random
    inits. Returns (WeightSpaceFeatures of the N fitted networks, per-image MSE [N])."""
    if images.dim() == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    widths = (2, *hidden, c)
    g = torch.Generator().manual_seed(seed)
    coords = grid(h, w)
    target = images.reshape(n, h * w, c).float()
    out_w, out_b, mses = [], [], []
    for s in tqdm(range(0, n, chunk), desc="fit SIRENs", disable=not progress):
        p = init_sirens(min(chunk, n - s), widths, w0_hidden, g)
        tensors = [t.clone().requires_grad_(True) for t in p.weights + p.biases]
        opt = torch.optim.Adam(tensors, lr=lr)
        L = len(widths) - 1
        for _ in range(steps):
            cur = WeightSpaceFeatures(tuple(tensors[:L]), tuple(tensors[L:]))
            loss_per = ((siren_forward(cur, coords, w0_first, w0_hidden) - target[s:s + len(tensors[0])]) ** 2
                        ).mean((1, 2))
            opt.zero_grad()
            loss_per.sum().backward()  # independent networks: the sum's gradient is each network's own
            opt.step()
        out_w.append([t.detach() for t in tensors[:L]])
        out_b.append([t.detach() for t in tensors[L:]])
        mses.append(loss_per.detach())
    feats = WeightSpaceFeatures(tuple(torch.cat([c_[i] for c_ in out_w]) for i in range(L)),
                                tuple(torch.cat([c_[i] for c_ in out_b]) for i in range(L)))
    return feats, torch.cat(mses)
