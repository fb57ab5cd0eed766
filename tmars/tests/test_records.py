"""Bad input: every sample ends as a record; failures carry their reason; counts add up."""
import io

import numpy as np
from PIL import Image

from tmars import OracleDetector
from tmars.records import MAX_CAPTION_CHARS, clean_caption, load_image, score_records


def _png(mode, size=(40, 30), color=None):
    buf = io.BytesIO()
    Image.new(mode, size, color if color is not None else 128).save(buf, format="PNG" if mode != "CMYK" else "JPEG")
    return buf.getvalue()


def test_modes_are_converted_and_broken_files_named():
    for mode in ("L", "RGBA", "P", "CMYK", "I;16"):
        im, why = load_image(_png(mode) if mode != "I;16" else Image.new(mode, (8, 8)))
        assert why is None and im.mode == "RGB", mode
    jpg = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpg, format="JPEG")
    im, why = load_image(jpg.getvalue()[:200])  # truncated
    assert im is None and "unreadable" in why
    im, why = load_image(b"not an image at all")
    assert im is None and "unreadable" in why
    im, why = load_image(Image.new("RGB", (0, 5)))
    assert im is None and "zero-size" in why


def test_captions():
    assert clean_caption("  a   photo\n of a cat ") == ("a photo of a cat", None)
    assert clean_caption("")[0] is None and clean_caption(None)[1] == "empty caption"
    text, note = clean_caption("word " * 1000)
    assert len(text) == MAX_CAPTION_CHARS and "cut" in note


def test_score_records_counts_add_up(tiny_clip):
    model, pre, tok = tiny_clip
    good = Image.fromarray(np.full((32, 32, 3), 200, dtype=np.uint8))
    srcs = [good, b"garbage", _png("RGBA"), good, Image.new("RGB", (0, 3))]
    caps = ["a cat", "a dog", "a fish", "", "a bird"]
    recs = score_records(["a", "b", "c", "d", "e"], srcs, caps, model, pre, tok,
                         detector=OracleDetector([[[0, 0, 8, 8]], [], [], [], []]))
    assert [r["uid"] for r in recs] == ["a", "b", "c", "d", "e"]
    assert [r["status"] for r in recs] == ["ok", "failed", "ok", "failed", "failed"]
    assert recs[0]["n_boxes"] == 1 and np.isfinite(recs[0]["score"]) and np.isfinite(recs[2]["score"])
    assert all(np.isnan(r["score"]) and r["reason"] for r in recs if r["status"] == "failed")
