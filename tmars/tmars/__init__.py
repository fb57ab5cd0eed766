"""T-MARS (Maini, Goyal, Lipton, Kolter, Raghunathan; arXiv 2307.03132): filter image-caption data by masking
detected text and re-scoring with CLIP."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tmars.detect import OracleDetector, PaddleOCRDetector, ParallelDetector, RapidOCRDetector, detect_text
from tmars.mask import mask_text
from tmars.score import clip_and_tmars_scores, clip_scores, load_clip
from tmars.select import datacomp_threshold, select, text_match


def filter_pool(images: Sequence, captions: Sequence[str], model, preprocess, tokenizer, detector=None,
                ring: int = 5, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """T-MARS scores of a small in-memory pool: detect text, mask it, score the masked image against the
    original caption. Keep the top fraction with ``select(scores, fraction=...)``."""
    quads = detect_text(images, detector)
    masked = [mask_text(np.asarray(im.convert("RGB") if hasattr(im, "convert") else im), q, ring)
              for im, q in zip(images, quads)]
    return clip_scores(model, preprocess, tokenizer, masked, captions, batch_size, device)


__all__ = ["OracleDetector", "PaddleOCRDetector", "ParallelDetector", "RapidOCRDetector", "clip_and_tmars_scores",
           "clip_scores", "datacomp_threshold", "detect_text", "filter_pool", "load_clip", "mask_text", "select",
           "text_match"]
