"""Location inputs -> region masks, and region masks -> per-layer masks (paper Sec. 3, "location masks").

CAC takes each local prompt's region as a binary mask in image space; every cross-attention layer needs it at
its own latent resolution (64/32/16/8 for SD at 512 px). One utility serves boxes and segmentation maps:
``masks_from_boxes`` / ``masks_from_segmentation`` give ``[n, H, W]`` masks, ``resize_masks`` takes them to a
layer's grid with area coverage, a 0.5 threshold and "snapping" (a region that would vanish keeps its
best-covered cells, so a small object still has tokens to attend to at 8x8).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def masks_from_boxes(
    boxes: Sequence[Sequence[float]] | torch.Tensor,
    height: int,
    width: int,
    units: str = "normalized",
    clip: bool = False,
) -> torch.Tensor:
    """Binary masks ``[n, height, width]`` (float 0/1) from xyxy boxes.

    ``units="normalized"``: coordinates in [0, 1] (GLIGEN's convention); ``units="pixel"``: pixels of an image of
    size ``height x width``. A pixel belongs to a box when its centre lies inside. Boxes reaching outside the image
    raise unless ``clip=True`` (then they are cut to the image); empty boxes always raise.
    """
    b = torch.as_tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    if units not in ("normalized", "pixel"):
        raise ValueError(f"units must be 'normalized' or 'pixel', got {units!r}")
    scale = torch.tensor([width, height, width, height], dtype=torch.float64)
    if units == "normalized":
        if (b.abs() > 1.0 + 1e-6).any():
            raise ValueError(f"normalized boxes must lie in [0, 1]; got {b.tolist()}. Pass units='pixel' for pixels.")
        b = b * scale
    outside = (b[:, :2] < -1e-6).any(1) | (b[:, 2:] > scale[2:] + 1e-6).any(1)
    if outside.any() and not clip:
        raise ValueError(
            f"boxes {b[outside].tolist()} reach outside the {width}x{height} image; "
            "cut them to the image or pass clip=True"
        )
    b = torch.minimum(torch.maximum(b, torch.zeros(4, dtype=b.dtype)), scale)
    empty = (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    if empty.any():
        raise ValueError(f"boxes {b[empty].tolist()} are empty (need x1 > x0 and y1 > y0 in xyxy order)")
    ys = torch.arange(height, dtype=torch.float64) + 0.5
    xs = torch.arange(width, dtype=torch.float64) + 0.5
    in_y = (ys[None, :] >= b[:, 1:2]) & (ys[None, :] < b[:, 3:4])
    in_x = (xs[None, :] >= b[:, 0:1]) & (xs[None, :] < b[:, 2:3])
    m = (in_y[:, :, None] & in_x[:, None, :]).float()
    if (m.flatten(1).sum(1) == 0).any():
        # A box thinner than a pixel covers no pixel centre: keep the pixel holding its centre.
        cy = ((b[:, 1] + b[:, 3]) / 2).long().clamp(0, height - 1)
        cx = ((b[:, 0] + b[:, 2]) / 2).long().clamp(0, width - 1)
        lost = m.flatten(1).sum(1) == 0
        m[lost.nonzero()[:, 0], cy[lost], cx[lost]] = 1.0
    return m


def masks_from_segmentation(
    seg: torch.Tensor,
    class_ids: Sequence[int],
    height: int | None = None,
    width: int | None = None,
    allow_empty: bool = False,
) -> torch.Tensor:
    """Binary masks ``[n, H, W]``, one per class id, from a class-id map ``seg`` of shape ``[H, W]``.

    ``height``/``width``, when given, are the image size the map must match (a map at another size is an error:
    resize it with nearest-neighbour first). A class absent from the map raises unless ``allow_empty=True``.
    """
    seg = torch.as_tensor(seg)
    if seg.ndim != 2:
        raise ValueError(f"segmentation map must be [H, W] class ids, got shape {tuple(seg.shape)}")
    if (height is not None and seg.shape[0] != height) or (width is not None and seg.shape[1] != width):
        raise ValueError(
            f"segmentation map is {seg.shape[0]}x{seg.shape[1]} but the image is {height}x{width}; "
            "resize the map with nearest-neighbour interpolation to the image size"
        )
    ids = torch.as_tensor(list(class_ids), dtype=seg.dtype)
    m = (seg[None] == ids[:, None, None]).float()
    empty = m.flatten(1).sum(1) == 0
    if empty.any() and not allow_empty:
        raise ValueError(f"class ids {ids[empty].tolist()} do not occur in the segmentation map "
                         "(allow_empty=True keeps them)")
    return m


def resize_masks(masks: torch.Tensor, height: int, width: int, threshold: float = 0.5,
                 snap: bool = True) -> torch.Tensor:
    """Resize binary masks ``[..., H, W]`` to ``[..., height, width]`` by area coverage.

    A cell is on when the region covers at least ``threshold`` of it. With ``snap``, a non-empty region whose
    every cell falls below the threshold keeps its best-covered cell(s) instead of disappearing. Grid-aligned
    boxes are resized exactly.
    """
    lead = masks.shape[:-2]
    m = masks.reshape(-1, 1, *masks.shape[-2:]).float()
    if m.shape[-2:] == (height, width):
        out = m
    else:
        cov = F.adaptive_avg_pool2d(m, (height, width)) if height <= m.shape[-2] and width <= m.shape[-1] else (
            F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)
        )
        out = (cov >= threshold - 1e-6).float()
        if snap:
            peak = cov.flatten(1).amax(1)
            lost = (out.flatten(1).sum(1) == 0) & (peak > 0)
            if lost.any():
                out[lost] = (cov[lost] >= peak[lost, None, None, None] - 1e-6).float()
    return out.reshape(*lead, height, width)


def layer_hw(n_tokens: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """The ``(h, w)`` grid of a layer holding ``n_tokens`` positions of a latent of size ``latent_hw``.

    UNet downsamplers halve with ceil (stride-2 conv, padding 1), so a 96x64 latent has layers 96x64, 48x32, ...
    Non-square latents are why the grid is derived from the latent's aspect ratio, not sqrt(n_tokens).
    """
    h, w = latent_hw
    for _ in range(12):
        if h * w == n_tokens:
            return h, w
        h, w = -(-h // 2), -(-w // 2)
    raise ValueError(f"no downsampled grid of the {latent_hw[0]}x{latent_hw[1]} latent has {n_tokens} positions")
