"""Robust per-sample processing: every sample of a pool ends as a record with a status, nothing is dropped.

Web pools hold corrupt or truncated files, zero-size images, grayscale/RGBA/CMYK/palette modes and empty or
huge captions. ``load_image`` and ``clean_caption`` turn each into a usable input or a failure reason;
``score_records`` runs detect -> mask -> score on the usable ones and returns one record per input
(``status`` "ok" or "failed", ``reason``, ``score``, ``n_boxes``), so counts always add up.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

MAX_CAPTION_CHARS = 1000  # longer captions are cut (CLIP reads 77 tokens anyway); the record says so


def load_image(src: bytes | str | Path | Image.Image) -> tuple[Image.Image | None, str | None]:
    """``(RGB image, None)`` or ``(None, reason)``. Alpha is dropped (``convert("RGB")``, as DataComp's loaders)."""
    try:
        im = src if isinstance(src, Image.Image) else Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
        im.load()  # decode now: truncated files fail here, not later inside a batch
        if im.width == 0 or im.height == 0:
            return None, f"zero-size image ({im.width}x{im.height})"
        return (im if im.mode == "RGB" else im.convert("RGB")), None
    except Exception as e:  # noqa: BLE001 - any decoder error (bombs, odd modes) fails this sample, not the shard
        return None, f"unreadable image: {type(e).__name__}: {e}"[:300]


def clean_caption(text) -> tuple[str | None, str | None]:
    """``(caption, note)``: None with a reason when empty; cut to ``MAX_CAPTION_CHARS`` with a note when huge."""
    if text is None or not str(text).strip():
        return None, "empty caption"
    text = " ".join(str(text).split())
    if len(text) > MAX_CAPTION_CHARS:
        return text[:MAX_CAPTION_CHARS], f"caption cut from {len(text)} to {MAX_CAPTION_CHARS} characters"
    return text, None


def score_records(uids: Sequence[str], images: Sequence, captions: Sequence, model, preprocess, tokenizer,
                  detector=None, ring: int = 5, batch_size: int = 64, device: str = "cpu") -> list[dict]:
    """T-MARS score per sample, with failures recorded (status, reason) instead of dropped."""
    from tmars.detect import detect_text
    from tmars.mask import mask_text
    from tmars.score import clip_scores

    recs, ok_imgs, ok_caps, ok_idx = [], [], [], []
    for i, (uid, src, cap) in enumerate(zip(uids, images, captions, strict=True)):
        rec = {"uid": uid, "status": "ok", "reason": None, "score": float("nan"), "n_boxes": 0}
        im, why = load_image(src)
        text, note = clean_caption(cap)
        if im is None or text is None:
            rec.update(status="failed", reason=why or note)
        else:
            rec["reason"] = note
            ok_imgs.append(im)
            ok_caps.append(text)
            ok_idx.append(i)
        recs.append(rec)
    if ok_imgs:
        if detector is None:
            quads = detect_text(ok_imgs)
        else:
            quads = detector(ok_imgs, ok_idx) if _takes_indices(detector) else detector(ok_imgs)
        masked = [mask_text(np.asarray(im), q, ring) for im, q in zip(ok_imgs, quads)]
        scores = clip_scores(model, preprocess, tokenizer, masked, ok_caps, batch_size, device)
        for i, s, q in zip(ok_idx, scores, quads):
            recs[i].update(score=float(s), n_boxes=len(q))
    return recs


def _takes_indices(detector) -> bool:
    from tmars.detect import OracleDetector

    return isinstance(detector, OracleDetector)
