"""Masking detected text (paper Sec. 3; the authors' description in locuslab/T-MARS issue #4: "masking images
with mean color"): each text region's axis-aligned box is filled with the mean colour of a ring of surrounding
pixels. Images without text are returned unchanged.
"""
from __future__ import annotations

import numpy as np


def quads_to_boxes(quads: np.ndarray, height: int, width: int) -> np.ndarray:
    """Integer pixel boxes ``[k, 4]`` (x0, y0, x1, y1; end-exclusive) covering each quad ``[k, 4, 2]`` (x, y),
    clipped to the image. A box covers every pixel the quad touches (floor of the minimum, ceil of the maximum)."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    x0 = np.clip(np.floor(q[..., 0].min(1)), 0, width)
    y0 = np.clip(np.floor(q[..., 1].min(1)), 0, height)
    x1 = np.clip(np.ceil(q[..., 0].max(1)), 0, width)
    y1 = np.clip(np.ceil(q[..., 1].max(1)), 0, height)
    return np.stack([x0, y0, x1, y1], 1).astype(np.int64)


def mask_text(image: np.ndarray, quads: np.ndarray, ring: int = 5) -> np.ndarray:
    """Fill each quad's box with the mean colour of the ``ring``-pixel band around it.

    ``image``: ``[H, W, C]`` uint8 (or float). The band excludes every text box of the image, so filled pixels
    never feed another box's colour: masking is order-independent and idempotent. A box whose band is empty
    (text covering the image) is filled with the mean of the pixels outside all boxes, or left as is if there are
    none. Returns a new array; the input is not modified.
    """
    img = np.asarray(image)
    h, w = img.shape[:2]
    boxes = quads_to_boxes(quads, h, w)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if len(boxes) == 0:
        return img.copy()
    text = np.zeros((h, w), bool)  # union of all text boxes: O(H W) memory, whatever the number of boxes
    for x0, y0, x1, y1 in boxes:
        text[y0:y1, x0:x1] = True
    src = img.reshape(h, w, -1).astype(np.float64)
    means = np.full((len(boxes), src.shape[2]), np.nan)
    for k, (x0, y0, x1, y1) in enumerate(boxes):  # the band, read from the box's neighbourhood crop only
        ya, yb, xa, xb = max(y0 - ring, 0), min(y1 + ring, h), max(x0 - ring, 0), min(x1 + ring, w)
        band = ~text[ya:yb, xa:xb]
        if band.any():
            means[k] = src[ya:yb, xa:xb][band].mean(0)
    if np.isnan(means).any() and (~text).any():
        means[np.isnan(means[:, 0])] = src[~text].mean(0)  # no band pixel: the mean outside all text
    out = src.copy()
    for k in np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"):
        if np.isfinite(means[k]).all():  # large first, small on top; a box with nothing to sample stays as is
            x0, y0, x1, y1 = boxes[k]
            out[y0:y1, x0:x1] = means[k]
    out = out.reshape(img.shape)
    if np.issubdtype(img.dtype, np.integer):
        out = np.clip(np.rint(out), np.iinfo(img.dtype).min, np.iinfo(img.dtype).max)
    return out.astype(img.dtype)
