"""Classifiers of networks from their weights (all take ``WeightSpaceFeatures`` with C = 1):

- ``MLPBaseline``: an MLP on the flattened parameters (not invariant to anything).
- ``StatNet`` (Unterthiner et al. 2020): 7 statistics per tensor (mean, variance, quantiles 0, .25, .5, .75, 1)
  -> MLP.
- ``NFN``: Gaussian Fourier features -> NPLinear (NFN-NP) or HNPLinear (NFN-HNP) + ReLU -> HNPPool -> MLP.
- ``NFT``: Gaussian Fourier features -> learned input/output position embeddings -> NFT blocks -> HNPPool -> MLP.
"""
from __future__ import annotations

import torch
from torch import nn

from nft.layers import GaussianFourier, HNPLinear, HNPPool, LearnedPosEmbedding, NFTBlock, NPLinear, Pointwise
from nft.weight_space import WeightSpaceFeatures


def _head(d_in: int, hidden: int, n_out: int, dropout: float) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))


class MLPBaseline(nn.Module):
    def __init__(self, n_params: int, n_out: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        mods, d = [], n_params
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        self.net = nn.Sequential(*mods, nn.Linear(d, n_out))

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return self.net(x.flatten())


class StatNet(nn.Module):
    """7 statistics per tensor -> MLP(hidden, hidden) -> n_out (Unterthiner et al.: two hidden layers of 1000)."""

    def __init__(self, n_layers: int, n_out: int, hidden: int = 1000):
        super().__init__()
        self.head = nn.Sequential(nn.Linear(2 * n_layers * 7, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, n_out))

    @staticmethod
    def features(x: WeightSpaceFeatures) -> torch.Tensor:
        q = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
        out = []
        for t in x.weights + x.biases:
            f = t.flatten(1)
            out += [f.mean(1, keepdim=True), f.var(1, unbiased=False, keepdim=True),
                    torch.quantile(f, q.to(f), dim=1).T]
        return torch.cat(out, 1)

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return self.head(self.features(x))


class NFN(nn.Module):
    """NFN: Fourier features (m, scale) -> ``depth`` x (NF-Layer, ReLU) -> HNPPool -> MLP head. ``mode="np"``
    uses NPLinear (NFN-NP; no input/output position encoding), ``mode="hnp"`` HNPLinear (NFN-HNP)."""

    def __init__(self, widths, n_out: int, channels: int = 32, depth: int = 2, fourier_m: int = 16,
                 fourier_scale: float = 1.0, head_hidden: int = 256, dropout: float = 0.0, mode: str = "np",
                 filters=None):
        super().__init__()
        if mode not in ("np", "hnp"):
            raise ValueError(f"mode={mode!r}: np | hnp")
        L = len(widths) - 1
        self.enc = GaussianFourier(fourier_m, fourier_scale)
        c = 2 * fourier_m
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(NPLinear(L, c, channels, filters) if mode == "np"
                               else HNPLinear(widths, c, channels, filters))
            c = channels
        self.pool = HNPPool()
        self.head = _head(HNPPool.out_size(widths, channels, filters), head_hidden, n_out, dropout)

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        x = self.enc(x)
        for layer in self.layers:
            x = layer(x).map(torch.relu)
        return self.head(self.pool(x))


class NFTEncoder(nn.Module):
    """Fourier features -> Pointwise to ``channels`` -> learned position embeddings -> ``depth`` NFT blocks: weight
    space to weight-space features (equivariant to S_HNP)."""

    def __init__(self, widths, channels: int = 32, depth: int = 2, heads: int = 4, ff_factor: int = 2,
                 fourier_m: int = 16, fourier_scale: float = 1.0, dropout: float = 0.0, filters=None):
        super().__init__()
        L = len(widths) - 1
        self.enc = GaussianFourier(fourier_m, fourier_scale)
        self.proj = Pointwise(L, 2 * fourier_m, channels, filters)
        self.pos = LearnedPosEmbedding(widths, channels)
        self.blocks = nn.ModuleList([NFTBlock(L, channels, heads, ff_factor, dropout, filters) for _ in range(depth)])

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        x = self.pos(self.proj(self.enc(x)))
        for block in self.blocks:
            x = block(x)
        return x


class NFT(nn.Module):
    """NFT classifier/regressor: ``NFTEncoder`` -> HNPPool -> MLP head."""

    def __init__(self, widths, n_out: int, channels: int = 32, depth: int = 2, heads: int = 4, ff_factor: int = 2,
                 fourier_m: int = 16, fourier_scale: float = 1.0, head_hidden: int = 256, dropout: float = 0.0,
                 filters=None):
        super().__init__()
        self.encoder = NFTEncoder(widths, channels, depth, heads, ff_factor, fourier_m, fourier_scale, dropout,
                                  filters)
        self.pool = HNPPool()
        self.head = _head(HNPPool.out_size(widths, channels, filters), head_hidden, n_out, dropout)

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return self.head(self.pool(self.encoder(x)))
