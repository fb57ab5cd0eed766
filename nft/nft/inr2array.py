"""Inr2Array: an NFT encoder maps a SIREN's weights to a permutation-invariant latent *array* (M latents of C
channels, cross-attention pooled), a hypernetwork decodes every latent to a SIREN, and the model is trained to
autoencode in function space: the decoded SIRENs must draw what the input SIREN draws.

- Spatial decoding: the image is cut into a sqrt(M) x sqrt(M) grid of cells; pixel (y, x) is drawn by the SIREN
  decoded from the latent of its cell (at the pixel's global coordinates, our reading), so latents are tied to image
  regions.
- Decoders: ``sitzmann`` = one MLP per weight/bias tensor (hidden ``hidden``, ``hidden_layers`` hidden layers, last
  layer's init divided by 100, as Sitzmann's meta-modules); ``additive`` = one MLP to every parameter, a delta
  scaled by learned per-tensor scales and added to a learned base SIREN (the paper's CIFAR variant).
- ``LatentClassifier``: the downstream classifier on frozen latents, Linear -> learned position embedding ->
  pre-LN transformer encoder -> token 0 -> MLP.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from nft.layers import CrossAttentionPool
from nft.models import NFTEncoder
from nft.siren import grid, init_sirens, siren_forward
from nft.weight_space import WeightSpaceFeatures


def _mlp(d_in: int, hidden: int, hidden_layers: int, d_out: int, last_scale: float = 0.01) -> nn.Sequential:
    mods, d = [], d_in
    for _ in range(hidden_layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    last = nn.Linear(d, d_out)
    with torch.no_grad():
        last.weight.mul_(last_scale)
    return nn.Sequential(*mods, last)


class HyperDecoder(nn.Module):
    """Latent vectors [N, C] -> the parameters of N SIRENs with ``widths`` (``WeightSpaceFeatures``, C = 1)."""

    def __init__(self, widths, latent: int, hidden: int = 256, hidden_layers: int = 2, kind: str = "sitzmann",
                 w0_hidden: float = 30.0):
        super().__init__()
        self.widths, self.kind = tuple(widths), kind
        L = len(widths) - 1
        self.shapes = [(widths[i + 1], widths[i]) for i in range(L)] + [(widths[i + 1],) for i in range(L)]
        sizes = [math.prod(s) for s in self.shapes]
        if kind == "sitzmann":
            self.nets = nn.ModuleList([_mlp(latent, hidden, hidden_layers, n) for n in sizes])
        elif kind == "additive":
            self.net = _mlp(latent, hidden, hidden_layers, sum(sizes))
            base = init_sirens(1, widths, w0_hidden)
            self.base = nn.ParameterList([nn.Parameter(t[0, 0]) for t in base.weights + base.biases])
            self.scales = nn.Parameter(torch.ones(len(sizes)))
            self.sizes = sizes
        else:
            raise ValueError(f"decoder kind={kind!r}: sitzmann | additive")

    def forward(self, z: torch.Tensor) -> WeightSpaceFeatures:
        N, L = z.shape[0], len(self.widths) - 1
        if self.kind == "sitzmann":
            flat = [net(z) for net in self.nets]
        else:
            flat = [d * s + b.flatten()
                    for d, s, b in zip(self.net(z).split(self.sizes, 1), self.scales, self.base)]
        ts = [f.view(N, 1, *s) for f, s in zip(flat, self.shapes)]
        return WeightSpaceFeatures(tuple(ts[:L]), tuple(ts[L:]))


class Inr2Array(nn.Module):
    """SIREN weights (normalised, C = 1) -> latent array [B, M, C] -> decoded SIRENs -> rendered image.

    ``encode`` is invariant to hidden-neuron permutations (NFT encoder + cross-attention pooling); ``render``
    draws the decoded SIRENs on the ``image_shape`` grid, cell by cell; ``forward`` = render(encode(x))."""

    def __init__(self, widths, image_shape=(8, 8), channels: int = 256, depth: int = 6, heads: int = 4,
                 ff_factor: int = 4, dropout: float = 0.0, fourier_m: int = 128, fourier_scale: float = 3.0,
                 n_latents: int = 16, dec_type: str = "sitzmann", dec_hidden: int = 256, dec_hidden_layers: int = 2,
                 w0_first: float = 30.0, w0_hidden: float = 30.0):
        super().__init__()
        g = math.isqrt(n_latents)
        h, w = image_shape
        if g * g != n_latents:
            raise ValueError(f"n_latents={n_latents} must be a square (a sqrt x sqrt grid of image cells)")
        if h % g or w % g:
            raise ValueError(f"image {h}x{w} cannot be cut into a {g}x{g} grid of equal cells: pick n_latents so "
                             "that sqrt(n_latents) divides both sides")
        self.widths, self.image_shape, self.M, self.w0 = tuple(widths), (h, w), n_latents, (w0_first, w0_hidden)
        self.encoder = NFTEncoder(widths, channels, depth, heads, ff_factor, fourier_m, fourier_scale, dropout)
        self.pool = CrossAttentionPool(channels, n_latents)
        self.decoder = HyperDecoder(widths, channels, dec_hidden, dec_hidden_layers, dec_type, w0_hidden)
        coords = grid(h, w)
        rows, cols = torch.arange(h * w) // w, torch.arange(h * w) % w
        cell = (rows // (h // g)) * g + cols // (w // g)
        order = torch.argsort(cell, stable=True)  # pixels grouped by cell, cell-major
        self.register_buffer("cell_coords", coords[order].view(n_latents, h * w // n_latents, 2), persistent=False)
        self.register_buffer("unorder", torch.argsort(order), persistent=False)

    def encode(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return self.pool(self.encoder(x))

    def render(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B, M, C] -> image [B, h w, n_out] (row-major pixels)."""
        B = z.shape[0]
        params = self.decoder(z.flatten(0, 1))  # B M SIRENs
        coords = self.cell_coords.expand(B, -1, -1, -1).flatten(0, 1)  # [B M, P/M, 2]
        out = siren_forward(params, coords, *self.w0)  # [B M, P/M, n_out]
        return out.reshape(B, -1, out.shape[-1])[:, self.unorder]

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return self.render(self.encode(x))


class LatentClassifier(nn.Module):
    """Frozen Inr2Array latents [B, M, C] -> Linear(C, d) + learned position embedding (one per latent) ->
    ``depth`` pre-LN transformer layers (GELU) -> token 0 -> MLP -> ``n_out`` logits."""

    def __init__(self, latent: int, n_latents: int, n_out: int, d: int = 512, depth: int = 12, heads: int = 4,
                 ff: int = 2048, dropout: float = 0.1, head_hidden: int = 512):
        super().__init__()
        self.inp = nn.Linear(latent, d)
        self.pos = nn.Parameter(torch.randn(1, n_latents, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.enc = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, head_hidden), nn.GELU(), nn.Linear(head_hidden, n_out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(self.inp(z) + self.pos)[:, 0])
