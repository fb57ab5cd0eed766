"""GPU smoke (pytest -m gpu): open_clip scoring of masked images on CUDA in fp16 (same scores as fp32 on the CPU
to fp16 precision) and batched detection + masking + scoring of a pool; counts and scores finite."""
import numpy as np
import pytest
import torch

from tmars import OracleDetector, clip_and_tmars_scores, mask_text
from tmars.synthetic import make_pool

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
def test_fp16_cuda_scores_match_cpu(tiny_clip):
    model, pre, tok = tiny_clip
    pool = make_pool(96, seed=0, size=64)
    quads = OracleDetector(pool.text_boxes)(pool.images)
    masked = [mask_text(np.asarray(im), q, 2) for im, q in zip(pool.images, quads)]
    changed = [len(q) > 0 for q in quads]
    cpu = clip_and_tmars_scores(model, pre, tok, pool.images, masked, pool.captions, changed, device="cpu")
    model.cuda()
    try:
        gpu = clip_and_tmars_scores(model, pre, tok, pool.images, masked, pool.captions, changed, device="cuda")
    finally:
        model.cpu()
    for a, b in zip(cpu, gpu):
        assert np.isfinite(b).all() and np.abs(a - b).max() < 2e-2
    assert not np.allclose(gpu[0][changed], gpu[1][changed]) and np.allclose(gpu[0][~np.array(changed)],
                                                                             gpu[1][~np.array(changed)])


@needs_cuda
def test_batched_detection_then_cuda_scoring(tiny_clip):
    pytest.importorskip("rapidocr", reason="rapidocr (requirements.txt) is not installed on this GPU machine")
    from tmars import RapidOCRDetector

    model, pre, tok = tiny_clip
    pool = make_pool(32, mix={"word_only": 0.5, "clean": 0.5}, seed=3, size=224, font_size=36)
    det = RapidOCRDetector(recognize=True)
    quads = det(pool.images)
    assert len(quads) == len(pool.images) == len(det.texts)
    masked = [mask_text(np.asarray(im), q, 5) for im, q in zip(pool.images, quads)]
    model.cuda()
    try:
        s_clip, s_tmars = clip_and_tmars_scores(model, pre, tok, pool.images, masked, pool.captions,
                                                [len(q) > 0 for q in quads], device="cuda")
    finally:
        model.cpu()
    assert len(s_clip) == len(s_tmars) == 32 and np.isfinite(s_clip).all() and np.isfinite(s_tmars).all()
    found = np.array([len(q) > 0 for q in quads])
    has_text = np.array([len(b) > 0 for b in pool.text_boxes])
    assert found[has_text].mean() >= 0.8
