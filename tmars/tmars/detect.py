"""Text detection behind one interface: ``detector(images) -> list of quads [k, 4, 2] (x, y) in original pixels``.

- ``RapidOCRDetector``: PP-OCR (det, optionally rec) through ``rapidocr``, whose ONNX models ship inside the
  wheel and run offline. ``limit_side_len``/``limit_type="max"`` stop it from upscaling small images (its
  default resizes the short side up to 736 px, ~20x slower at 224 px).
- ``OracleDetector``: returns known boxes (synthetic data, tests, ablations without detector error).
- ``square_pad_resize``/``unpad_quads``: the FAST-style geometry of the official code (centred square padding
  with white, resize to ``size``); ``unpad_quads`` maps detections back to original pixels exactly.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def square_pad_resize(image: Image.Image, size: int = 512, fill: int = 255) -> tuple[Image.Image, dict]:
    """Pad to a centred square with ``fill`` then resize (bicubic) to ``size``; returns the image and the
    geometry needed by ``unpad_quads``."""
    w, h = image.size
    side = max(w, h)
    left, top = (side - w) // 2, (side - h) // 2
    canvas = Image.new(image.mode, (side, side), (fill,) * len(image.getbands()))
    canvas.paste(image, (left, top))
    return canvas.resize((size, size), Image.BICUBIC), {"left": left, "top": top, "scale": size / side,
                                                        "width": w, "height": h}


def unpad_quads(quads: np.ndarray, geom: dict) -> np.ndarray:
    """Quads in the padded, resized frame -> original pixels (clipped to the image)."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2) / geom["scale"]
    q[..., 0] = np.clip(q[..., 0] - geom["left"], 0, geom["width"])
    q[..., 1] = np.clip(q[..., 1] - geom["top"], 0, geom["height"])
    return q


class OracleDetector:
    """Known text boxes: ``boxes[i]`` is image i's list of xyxy pixel boxes (or quads)."""

    def __init__(self, boxes: Sequence):
        self.boxes = boxes

    def __call__(self, images: Sequence, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        idx = range(len(images)) if indices is None else indices
        out = []
        for i in idx:
            b = np.asarray(self.boxes[i], dtype=np.float64)
            if b.size == 0:
                out.append(np.zeros((0, 4, 2)))
            elif b.ndim == 2 and b.shape[1] == 4:  # xyxy -> quad (clockwise from top-left)
                out.append(np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], 1))
            else:
                out.append(b.reshape(-1, 4, 2))
        return out


class RapidOCRDetector:
    """PP-OCR text detection (and recognition with ``recognize=True``) via rapidocr, fully offline."""

    def __init__(self, limit_side_len: int = 320, limit_type: str = "max", recognize: bool = False,
                 box_thresh: float = 0.5):
        from rapidocr import RapidOCR

        self.recognize = recognize
        self.engine = RapidOCR(params={"Det.limit_side_len": limit_side_len, "Det.limit_type": limit_type,
                                       "Det.box_thresh": box_thresh, "Global.log_level": "error"})
        self.texts: list[list[str]] = []

    def __call__(self, images: Sequence) -> list[np.ndarray]:
        """Quads per image; with ``recognize``, ``self.texts`` holds the strings of the last call."""
        quads, texts = [], []
        for im in images:
            arr = np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im)
            # all three flags on every call: rapidocr keeps call-time flags on the engine object
            res = self.engine(arr, use_det=True, use_cls=False, use_rec=self.recognize)
            boxes = getattr(res, "boxes", None)
            none = np.zeros((0, 4, 2))
            quads.append(none if boxes is None else np.asarray(boxes, dtype=np.float64).reshape(-1, 4, 2))
            txt = getattr(res, "txts", None)
            texts.append(list(txt) if txt is not None else [])
        self.texts = texts
        return quads


def detect_text(images: Sequence, detector=None) -> list[np.ndarray]:
    """Quads ``[k, 4, 2]`` per image in original pixels, with ``detector`` (default: ``RapidOCRDetector()``)."""
    return (detector or RapidOCRDetector())(images)
