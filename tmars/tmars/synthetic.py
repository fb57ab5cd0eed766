"""The CPU mini's generated image-caption pool (issue #6): shapes of 10 classes, captions "a photo of a {class}",
mixed with the pair types T-MARS is about. Categories:

- ``clean``: the shape, no text (visual-only);
- ``word_only``: the class word rendered, no shape (text-only: the caption is only readable, not visible);
- ``shape_word``: the shape and its class word (visual + text: T-MARS keeps it, Text-Match drops it);
- ``shape_other_word``: the shape and an unrelated word (unrelated text);
- ``mislabeled``: a shape of another class than the caption's (random/unaligned pair).

Every image comes with its true text boxes (xyxy pixels), so detectors can be scored and the oracle used.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CLASSES = ["circle", "square", "triangle", "star", "cross", "diamond", "hexagon", "ring", "bar", "arrow"]
OTHER_WORDS = ["SALE", "HELLO", "OPEN", "TAXI", "MENU", "PARK", "CAFE", "EXIT"]
CATEGORIES = ["clean", "word_only", "shape_word", "shape_other_word", "mislabeled"]


@dataclass
class Pool:
    """A generated pool: images, captions, category per pair, shape class id (-1: none), caption class id,
    true text boxes per image (``[k, 4]`` xyxy)."""

    images: list[Image.Image]
    captions: list[str]
    categories: list[str]
    shape_class: np.ndarray
    caption_class: np.ndarray
    text_boxes: list[np.ndarray]


def _polygon(cls: str, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    ang = lambda n, off=0.0: [off + 2 * np.pi * k / n for k in range(n)]  # noqa: E731
    pts = {
        "square": [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in ang(4, np.pi / 4)],
        "triangle": [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in ang(3, -np.pi / 2)],
        "diamond": [(cx + r * np.cos(a), cy + 1.3 * r * np.sin(a)) for a in ang(4)],
        "hexagon": [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in ang(6)],
        "star": [(cx + (r if k % 2 == 0 else r / 2.5) * np.cos(a), cy + (r if k % 2 == 0 else r / 2.5) * np.sin(a))
                 for k, a in enumerate(ang(10, -np.pi / 2))],
        "arrow": [(cx - r, cy - r / 4), (cx, cy - r / 4), (cx, cy - r), (cx + r, cy), (cx, cy + r), (cx, cy + r / 4),
                  (cx - r, cy + r / 4)],
    }
    return pts.get(cls)


def draw_shape(d: ImageDraw.ImageDraw, cls: str, cx: float, cy: float, r: float, colour) -> None:
    """Draw one shape of class ``cls`` centred at (cx, cy) with radius r."""
    if cls == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif cls == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(2, int(r / 3)))
    elif cls == "cross":
        d.rectangle([cx - r, cy - r / 4, cx + r, cy + r / 4], fill=colour)
        d.rectangle([cx - r / 4, cy - r, cx + r / 4, cy + r], fill=colour)
    elif cls == "bar":
        d.rectangle([cx - r, cy - r / 3, cx + r, cy + r / 3], fill=colour)
    else:
        d.polygon(_polygon(cls, cx, cy, r), fill=colour)


def make_pool(n: int, mix: dict[str, float] | None = None, size: int = 64, seed: int = 0,
              font_size: int = 12) -> Pool:
    """``n`` pairs with category shares ``mix`` (default: 40% clean, 20% word_only, 15% shape_word,
    15% shape_other_word, 10% mislabeled)."""
    mix = mix or {"clean": 0.4, "word_only": 0.2, "shape_word": 0.15, "shape_other_word": 0.15, "mislabeled": 0.1}
    if set(mix) - set(CATEGORIES):
        raise ValueError(f"unknown categories {sorted(set(mix) - set(CATEGORIES))}; known: {CATEGORIES}")
    rng = np.random.default_rng(seed)
    p = np.array([mix.get(c, 0.0) for c in CATEGORIES])
    cats = rng.choice(CATEGORIES, size=n, p=p / p.sum())
    font = ImageFont.load_default(size=font_size)
    images, captions, shape_cls, cap_cls, boxes = [], [], [], [], []
    for cat in cats:
        bg = tuple(int(v) for v in rng.integers(150, 256, 3))
        im = Image.new("RGB", (size, size), bg)
        d = ImageDraw.Draw(im)
        c = int(rng.integers(len(CLASSES)))
        shape = -1
        if cat != "word_only":
            shape = c if cat != "mislabeled" else int((c + rng.integers(1, len(CLASSES))) % len(CLASSES))
            r = size * rng.uniform(0.15, 0.22)
            cx, cy = rng.uniform(r + 1, size - r - 1), rng.uniform(r + 1, size * 0.55)
            draw_shape(d, CLASSES[shape], cx, cy, r, tuple(int(v) for v in rng.integers(0, 120, 3)))
        tb = np.zeros((0, 4))
        if cat in ("word_only", "shape_word", "shape_other_word"):
            word = CLASSES[c].upper() if cat != "shape_other_word" else str(rng.choice(OTHER_WORDS))
            x0, y0, x1, y1 = d.textbbox((0, 0), word, font=font)
            w, h = x1 - x0, y1 - y0
            if cat == "word_only":
                x, y = rng.uniform(2, max(3, size - w - 2)), rng.uniform(2, max(3, size - h - 2))
            else:  # below the shape, which sits in the upper part
                x = rng.uniform(2, max(3, size - w - 2))
                y = rng.uniform(size * 0.75, max(size * 0.75 + 1, size - h - 2))
            d.text((x - x0, y - y0), word, fill=(0, 0, 0), font=font)
            tb = np.array([[np.floor(x), np.floor(y), np.ceil(x + w), np.ceil(y + h)]])
        images.append(im)
        captions.append(f"a photo of a {CLASSES[c]}")
        shape_cls.append(shape)
        cap_cls.append(c)
        boxes.append(tb)
    return Pool(images, captions, [str(c) for c in cats], np.array(shape_cls), np.array(cap_cls), boxes)
