"""Detector adapters (PaddleOCR through a stand-in module, the multi-process wrapper, polygons), the missing-weights
error, and the zero-shot ImageNet path of eval.py on a tiny local ImageFolder."""
import json
import sys
import types
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from tmars.detect import PaddleOCRDetector, ParallelDetector, RapidOCRDetector, polys_to_quads


def test_polys_to_quads_take_the_bounding_box():
    q = polys_to_quads([[[1, 2], [5, 1], [7, 4], [3, 9], [0, 5]]])
    assert q.tolist() == [[[0, 1], [7, 1], [7, 9], [0, 9]]] and polys_to_quads([]).shape == (0, 4, 2)


def test_paddleocr_adapter(monkeypatch):
    calls = {}

    out = [{"dt_polys": [np.array([[1, 1], [9, 1], [9, 5], [1, 5]]), np.array([[0, 0], [2, 0], [2, 2], [0, 2]])],
            "rec_polys": [np.zeros((4, 2))], "rec_texts": ["SALE", "x"], "rec_scores": [0.9, 0.1]},
           {"dt_polys": [], "rec_polys": [], "rec_texts": [], "rec_scores": []}]

    class TextDetection:  # PaddleOCR 3.x signatures: the module's predict takes batch_size, the pipeline's does not
        def __init__(self, **kw):
            calls["init"] = kw

        def predict(self, arrs, batch_size):
            calls["n"], calls["bs"], calls["bgr"] = len(arrs), batch_size, arrs[0][0, 0].tolist()
            return out

    class PaddleOCR(TextDetection):
        def predict(self, arrs):
            return out

    monkeypatch.setitem(sys.modules, "paddleocr", types.SimpleNamespace(TextDetection=TextDetection,
                                                                        PaddleOCR=PaddleOCR))
    ims = [Image.new("RGB", (16, 16), (255, 0, 0)), Image.new("RGB", (16, 16))]
    det = PaddleOCRDetector(model_name="PP-OCRv5_mobile_det", batch_size=8)
    q = det(ims)
    assert calls["init"]["model_name"] == "PP-OCRv5_mobile_det" and calls["n"] == 2 and calls["bs"] == 8
    assert calls["bgr"] == [0, 0, 255], "PaddleOCR reads BGR arrays"
    assert q[0].tolist()[0] == [[1, 1], [9, 1], [9, 5], [1, 5]] and len(q[0]) == 2 and q[1].shape == (0, 4, 2)
    rec = PaddleOCRDetector(recognize=True)
    q2 = rec(ims)
    assert rec.texts == [["SALE"], []] and calls["init"]["text_detection_model_name"] == "PP-OCRv5_mobile_det"
    assert len(q2[0]) == 2, "every detected box is masked, read or not"


def test_paddleocr_missing_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "paddleocr", None)
    with pytest.raises(ImportError, match="requirements-full.txt"):
        PaddleOCRDetector()


def _word_images(n):
    font = ImageFont.load_default(size=32)
    out = []
    for i in range(n):
        im = Image.new("RGB", (224, 224), (230, 230, 230))
        if i % 2 == 0:
            ImageDraw.Draw(im).text((20 + 5 * i, 40 + 10 * i), "HELLO", fill=(0, 0, 0), font=font)
        out.append(im)
    return out


def test_reading_does_not_change_the_boxes():
    """Recognition must not drop detected boxes (rapidocr's text_score filter would): T-MARS masks what is detected."""
    ims = _word_images(4)
    det_only, det_rec = RapidOCRDetector(), RapidOCRDetector(recognize=True)
    a, b = det_only(ims), det_rec(ims)
    assert all(np.allclose(x, y) for x, y in zip(a, b)) and det_rec.texts[0] == ["HELLO"]


def test_rapidocr_gets_bgr():
    """rapidocr converts PIL images and files from RGB but takes numpy arrays as BGR: we must hand it BGR."""
    seen = []
    det = RapidOCRDetector()
    det.engine = lambda img, **kw: seen.append(img) or types.SimpleNamespace(boxes=None, txts=None, scores=None)
    q = det([Image.new("RGB", (4, 4), (10, 20, 30)), np.full((4, 4, 3), (1, 2, 3), np.uint8)])
    assert seen[0][0, 0].tolist() == [30, 20, 10] and seen[1][0, 0].tolist() == [3, 2, 1]
    assert [x.shape for x in q] == [(0, 4, 2), (0, 4, 2)] and det.texts == [[], []]


def test_parallel_detector_keeps_order_and_results():
    ims = _word_images(6)
    ref = RapidOCRDetector(recognize=True, threads=1)
    want = ref(ims)
    par = ParallelDetector(partial(RapidOCRDetector, recognize=True, threads=1), workers=2, chunk=2)
    try:
        got = par(ims)
    finally:
        par.close()
    assert len(got) == 6 and all(np.allclose(a, b) for a, b in zip(got, want)) and par.texts == ref.texts
    assert [len(q) > 0 for q in got] == [True, False] * 3


def test_missing_weights_say_how_to_get_them():
    from tmars import load_clip

    with pytest.raises(RuntimeError, match="download the weights"):
        load_clip("ViT-B-32", "/nonexistent/ckpt.pt")


def test_zero_shot_imagenet_on_a_local_folder(tmp_path, tiny_clip_ckpt):
    from shared.testing import compose
    from tmars.pipeline import PROJECT_DIR, evaluate_checkpoint

    for c, colour in (("n01440764", (255, 0, 0)), ("n01443537", (0, 0, 255))):
        (tmp_path / "val" / c).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "val" / c / f"{k}.png")
    cfg = compose(PROJECT_DIR / "configs", [f"checkpoint={tiny_clip_ckpt}", f"imagenet_val={tmp_path / 'val'}",
                                            "model=tmars-tiny", "batch_size=4", "device=cpu"], name="eval")
    out = evaluate_checkpoint(cfg)
    assert 0 <= out["test/imagenet_zero_shot"] <= 1
    assert json.loads((Path(tiny_clip_ckpt).parent / "eval.json").read_text())["model"] == "tmars-tiny"
    with pytest.raises(FileNotFoundError, match="one folder per wnid"):
        evaluate_checkpoint(compose(PROJECT_DIR / "configs", [f"checkpoint={tiny_clip_ckpt}", "model=tmars-tiny",
                                                              f"imagenet_val={tmp_path / 'nope'}"], name="eval"))
