"""The issue's oracles: masking, DataComp selection, detector geometry, rapidocr on rendered words, open_clip."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from tmars import OracleDetector, RapidOCRDetector, clip_scores, datacomp_threshold, filter_pool, mask_text, select
from tmars.detect import square_pad_resize, unpad_quads
from tmars.mask import quads_to_boxes
from tmars.select import text_match


def _quad(x0, y0, x1, y1):
    return np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=np.float64)


def test_box_on_uniform_background_is_filled_with_that_colour():
    img = np.zeros((40, 60, 3), dtype=np.uint8)
    img[:] = (30, 120, 200)
    img[10:20, 15:35] = (255, 255, 255)  # "text"
    out = mask_text(img, _quad(15, 10, 35, 20), ring=3)
    assert (out == np.array([30, 120, 200], dtype=np.uint8)).all()
    assert (img[10:20, 15:35] == 255).all(), "the input is not modified"


def test_ring_mean_by_hand_and_pixels_outside_untouched():
    img = np.zeros((10, 10, 1), dtype=np.float64)
    img[:, :5] = 1.0  # left half 1, right half 0
    out = mask_text(img, _quad(4, 4, 6, 6), ring=1)  # ring: 3x... rows 3..6, cols 3..6 minus the box
    ring = np.zeros((10, 10), bool)
    ring[3:7, 3:7] = True
    ring[4:6, 4:6] = False
    assert np.allclose(out[4:6, 4:6, 0], img[ring, 0].mean())
    keep = np.ones((10, 10), bool)
    keep[4:6, 4:6] = False
    assert (out[keep] == img[keep]).all()


def test_masking_is_idempotent_and_order_free_with_overlapping_boxes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    quads = np.concatenate([_quad(5, 5, 30, 20), _quad(20, 10, 50, 40), _quad(40.5, 41.2, 60.7, 63.9)])
    once = mask_text(img, quads)
    assert (mask_text(once, quads) == once).all()
    assert (mask_text(img, quads[::-1]) == once).all()


def test_no_text_is_identity_and_tmars_equals_clip_score(tiny_clip):
    model, pre, tok = tiny_clip
    rng = np.random.default_rng(1)
    ims = [Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)) for _ in range(3)]
    caps = ["a photo of a cat", "a dog", "the word giraffe"]
    assert (mask_text(np.asarray(ims[0]), np.zeros((0, 4, 2))) == np.asarray(ims[0])).all()
    plain = clip_scores(model, pre, tok, ims, caps)
    tm = filter_pool(ims, caps, model, pre, tok, detector=OracleDetector([[], [], []]))
    np.testing.assert_allclose(tm, plain, rtol=0, atol=1e-7)
    masked = filter_pool(ims, caps, model, pre, tok, detector=OracleDetector([[[0, 0, 20, 20]], [], []]))
    assert masked[0] != plain[0] and np.allclose(masked[1:], plain[1:])


def test_clip_scores_are_cosines(tiny_clip):
    model, pre, tok = tiny_clip
    im = Image.fromarray(np.full((32, 32, 3), 128, dtype=np.uint8))
    s = clip_scores(model, pre, tok, [im, im], ["a", "b"])
    with torch.no_grad():
        fi = model.encode_image(pre(im)[None])
        ft = model.encode_text(tok(["a", "b"]))
    np.testing.assert_allclose(s, torch.nn.functional.cosine_similarity(fi, ft).numpy(), atol=1e-6)
    assert tok(["hello world"])[0, 0] == 49406  # open_clip's bundled CLIP BPE: SOT first


def test_datacomp_threshold_hand_example_with_ties():
    scores = np.array([0.1, 0.5, 0.3, 0.5, 0.2, 0.5, 0.05, 0.4])
    # fraction 0.25: n = int(8 * 0.25) = 2; sorted desc = .5 .5 .5 .4 ...; threshold = sorted[2] = 0.5
    assert datacomp_threshold(scores, 0.25) == 0.5
    keep = select(scores, fraction=0.25)
    assert keep.sum() == 3, "ties at the threshold are all kept (3 > 25% of 8)"
    # fraction 0.5: n = 4, threshold = sorted[4] = 0.3: DataComp's index n keeps n + 1 = 5 without ties
    assert select(scores, fraction=0.5).tolist() == [False, True, True, True, False, True, False, True]
    assert select(scores, threshold=0.3).sum() == 5
    assert select(np.array([0.3, np.nan, 0.9]), fraction=0.5).tolist() == [True, False, True]  # NaN: never kept
    with pytest.raises(ValueError, match="exactly one"):
        select(scores)


def test_text_match_rule():
    assert text_match([["GIRAFFE"], ["sale 50%"], []], ["a giraffe in a zoo", "a red car", "a dog"]).tolist() == [
        True, False, False]


def test_pad_resize_geometry_round_trips():
    im = Image.new("RGB", (300, 120), (0, 0, 0))
    out, geom = square_pad_resize(im, 512)
    assert out.size == (512, 512)
    quads = _quad(10, 20, 250, 100)
    padded = quads.copy()
    padded[..., 0] = (padded[..., 0] + geom["left"]) * geom["scale"]
    padded[..., 1] = (padded[..., 1] + geom["top"]) * geom["scale"]
    np.testing.assert_allclose(unpad_quads(padded, geom), quads, atol=1e-9)
    arr = np.asarray(out)
    top = round(geom["top"] * geom["scale"])
    assert (arr[: top - 2] == 255).all() and (arr[top + 2: 512 - top - 2].mean() < 5)  # white pad, black image


def test_quads_to_boxes_cover_fractional_quads():
    assert quads_to_boxes(_quad(1.2, 2.7, 5.1, 6.0), 10, 10).tolist() == [[1, 2, 6, 6]]
    assert quads_to_boxes(_quad(-3, -1, 50, 5), 10, 20).tolist() == [[0, 0, 20, 5]]


def _render(word, size=(224, 224), xy=(30, 90), font_size=36):
    im = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(im)
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # pragma: no cover - old Pillow
        font = ImageFont.load_default()
    d.text(xy, word, fill=(0, 0, 0), font=font)
    bbox = d.textbbox(xy, word, font=font)
    return im, bbox


def test_rapidocr_finds_and_reads_rendered_words():
    det = RapidOCRDetector(recognize=True)
    im, (x0, y0, x1, y1) = _render("GIRAFFE")
    blank = Image.new("RGB", (224, 224), (255, 255, 255))
    quads = det([im, blank])
    assert len(quads[1]) == 0
    boxes = quads_to_boxes(quads[0], 224, 224)
    assert len(boxes) >= 1
    inter = lambda a: max(0, min(a[2], x1) - max(a[0], x0)) * max(0, min(a[3], y1) - max(a[1], y0))  # noqa: E731
    area = lambda a: (a[2] - a[0]) * (a[3] - a[1])  # noqa: E731
    ious = [inter(b) / (area(b) + (x1 - x0) * (y1 - y0) - inter(b)) for b in boxes]
    assert max(ious) > 0.5, (boxes, (x0, y0, x1, y1))
    assert any("GIRAFFE" in t.upper() for t in det.texts[0]), det.texts
