"""INR editing: a network reads a SIREN's (normalised) weights and outputs a weight edit; the edited SIREN (raw
weights + ``delta_scale`` x edit) must draw the transformed image. Targets come from OpenCV as in the paper's
task list (computed in torch, checked against OpenCV in the tests); the kernels are ours (3x3 ones for the morphology,
the 4-neighbour Laplacian sharpening kernel, contrast x1.5 around mid-grey) because the official settings were not
read.

``EditNet``: ``nft`` = NFT encoder -> Pointwise to one channel (equivariant), ``nfn`` / ``nfn_hnp`` = NF-Layers
(Fourier -> NP or HNP layers with ReLU -> one channel), ``mlp`` = flattened weights -> MLP -> flattened edit."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nft.layers import GaussianFourier, HNPLinear, NPLinear, Pointwise
from nft.models import MLPBaseline, NFTEncoder
from nft.weight_space import WeightSpaceFeatures

OPS = ("dilate", "erode", "gradient", "sharpen", "contrast")


def transform_images(images: torch.Tensor, op: str) -> torch.Tensor:
    """[N, H, W, c] in [-1, 1] -> the transformed images, same shape and range, batched in torch (equal to OpenCV's
    dilate / erode / morphologyEx(MORPH_GRADIENT) with a 3x3 ones kernel and filter2D with its default border; a
    test checks it against OpenCV when it is installed)."""
    if op not in OPS:
        raise ValueError(f"editing.op={op!r}: one of {OPS}")
    x = ((images.float() + 1) / 2).permute(0, 3, 1, 2)  # [N, c, H, W] in [0, 1]

    def dilate(t):
        return F.max_pool2d(t, 3, stride=1, padding=1)

    def erode(t):
        return -F.max_pool2d(-t, 3, stride=1, padding=1)

    if op == "dilate":
        y = dilate(x)
    elif op == "erode":
        y = erode(x)
    elif op == "gradient":
        y = dilate(x) - erode(x)
    elif op == "sharpen":
        k = torch.tensor([[0.0, -1, 0], [-1, 5, -1], [0, -1, 0]])
        c = x.shape[1]
        y = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), k.expand(c, 1, 3, 3), groups=c)
    else:
        y = (x - 0.5) * 1.5 + 0.5
    return (y.clamp(0, 1) * 2 - 1).permute(0, 2, 3, 1).contiguous()


class EditNet(nn.Module):
    """Weight space -> weight space (C = 1): the edit. Built from a model config (name nft | nfn | nfn_hnp | mlp)."""

    def __init__(self, m, widths, n_params: int):
        super().__init__()
        self.name, L = m.name, len(widths) - 1
        if m.name == "nft":
            self.body = NFTEncoder(widths, m.channels, m.depth, m.heads, m.ff_factor, m.fourier_m, m.fourier_scale,
                                   m.dropout)
            self.out = Pointwise(L, m.channels, 1)
        elif m.name in ("nfn", "nfn_hnp"):
            self.enc = GaussianFourier(m.fourier_m, m.fourier_scale)
            layers, c = [], 2 * m.fourier_m
            for _ in range(m.depth):
                layers.append(NPLinear(L, c, m.channels) if m.name == "nfn" else HNPLinear(widths, c, m.channels))
                c = m.channels
            self.layers = nn.ModuleList(layers)
            self.out = NPLinear(L, c, 1) if m.name == "nfn" else HNPLinear(widths, c, 1)
        elif m.name == "mlp":
            self.mlp = MLPBaseline(n_params, n_params, m.hidden, m.layers).net  # flattened weights -> flattened edit
        else:
            raise ValueError(f"model.name={m.name!r}: editing takes nft | nfn | nfn_hnp | mlp")

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if self.name == "nft":
            return self.out(self.body(x))
        if self.name == "mlp":
            order = [t for pair in zip(x.weights, x.biases) for t in pair]  # the order of x.flatten()
            parts = self.mlp(x.flatten()).split([t[0].numel() for t in order], 1)
            ts = [p.view(t.shape) for p, t in zip(parts, order)]
            return WeightSpaceFeatures(tuple(ts[0::2]), tuple(ts[1::2]))
        h = self.enc(x)
        for layer in self.layers:
            h = layer(h).map(torch.relu)
        return self.out(h)
