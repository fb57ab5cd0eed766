"""How good is a text detector against known boxes: recall at an IoU threshold, mean best IoU of true boxes,
and false boxes per text-free image (the issue asks for these for rapidocr on the mini's pool)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tmars.mask import quads_to_boxes


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-12)


def detector_quality(pred_quads: Sequence[np.ndarray], true_boxes: Sequence[np.ndarray], sizes: Sequence[tuple],
                     iou_threshold: float = 0.5) -> dict[str, float]:
    """``pred_quads[i]``: ``[k, 4, 2]`` detections; ``true_boxes[i]``: ``[m, 4]`` xyxy; ``sizes[i]``: (w, h)."""
    best, false_free, n_free = [], 0, 0
    for q, t, (w, h) in zip(pred_quads, true_boxes, sizes):
        p = quads_to_boxes(q, h, w).astype(np.float64) if len(q) else np.zeros((0, 4))
        t = np.asarray(t, dtype=np.float64).reshape(-1, 4)
        if len(t) == 0:
            n_free += 1
            false_free += len(p)
            continue
        best += list(_iou(t, p).max(1)) if len(p) else [0.0] * len(t)
    best = np.array(best)
    return {"recall": float((best >= iou_threshold).mean()) if len(best) else float("nan"),
            "mean_iou": float(best.mean()) if len(best) else float("nan"),
            "false_boxes_per_text_free_image": false_free / max(n_free, 1)}
