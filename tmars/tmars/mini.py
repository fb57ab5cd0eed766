"""The CPU mini reproduction (issue #6, spec section 5): the paper's equal-compute filtering comparison on a
generated pool.

1. A tiny open_clip *scorer* (stand-in for OpenAI's L/14) is trained on a separate clean pool of shapes, shapes
   with their word, and words alone, so that it both sees shapes and reads words, as CLIP does.
2. The filtering pool mixes text-free shapes, text-only images (the caption's word, no shape), shapes with their
   word, shapes with unrelated words and mislabeled shapes. It is scored by CLIP score (original images), by
   T-MARS (text masked: true boxes, or rapidocr's boxes), and OCR-read for Text-Match.
3. Each filter keeps a subset; a fresh tiny CLIP *student* is trained on each with the same samples seen and
   evaluated zero-shot on text-free test shapes (the visual skill) and on text-only test images (how much it
   learned to read the caption instead of seeing the object).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from tmars.mask import mask_text
from tmars.synthetic import CATEGORIES, Pool
from tmars.tinyclip import cosine_scores, to_tensor, tokenize


def upscale(images: list[Image.Image], factor: int) -> list[Image.Image]:
    """Bicubic upscaling for the detector (PP-OCR's detector is trained on text far larger than 12 px)."""
    return [im.resize((im.width * factor, im.height * factor), Image.BICUBIC) for im in images]


def detect_pool(pool: Pool, detector, factor: int = 3, batch: int = 256, progress: bool = False):
    """Detected quads in the pool's pixels (detection on the ``factor``-times upscaled image) and the OCR
    strings when the detector recognises."""
    from tqdm.auto import tqdm

    quads, texts = [], []
    for i in tqdm(range(0, len(pool.images), batch), desc="rapidocr", disable=not progress, leave=False):
        q = detector(upscale(pool.images[i:i + batch], factor))
        quads += [x / factor for x in q]
        texts += getattr(detector, "texts", None) or [[] for _ in q]
    return quads, texts


def pool_scores(scorer, pool: Pool, boxes: dict[str, list[np.ndarray]], ring: int) -> dict[str, np.ndarray]:
    """``clip`` (original images) and ``tmars_<name>`` (each box source's masked images) cosine scores."""
    tokens = tokenize(pool.captions)
    out = {"clip": cosine_scores(scorer, to_tensor(pool.images), tokens)}
    for name, quads in boxes.items():
        masked = [mask_text(np.asarray(im), q, ring) for im, q in zip(pool.images, quads)]
        out[f"tmars_{name}"] = cosine_scores(scorer, to_tensor(masked), tokens)
    return out


def composition(keep: np.ndarray, categories: list[str]) -> dict[str, float]:
    """Share of each pair category among the kept samples, and the share of each category that was kept."""
    cats = np.asarray(categories)
    out = {"subset/n": int(keep.sum()), "subset/fraction": float(keep.mean())}
    for c in CATEGORIES:
        out[f"subset/share_{c}"] = float((cats[keep] == c).mean()) if keep.any() else 0.0
        out[f"subset/kept_{c}"] = float(keep[cats == c].mean()) if (cats == c).any() else float("nan")
    return out


def zero_shot_sets(n: int, size: int, font_size: int, seed: int) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """Test images: ``clean`` (shapes, no text: the visual skill) and ``word_only`` (the class word alone: reading)."""
    from tmars.synthetic import make_pool

    out = {}
    for k, cat in enumerate(("clean", "word_only")):
        p = make_pool(n, mix={cat: 1.0}, size=size, font_size=font_size, seed=seed + k)
        out[cat] = (to_tensor(p.images), p.caption_class)
    return out
