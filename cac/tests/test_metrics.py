"""Evaluation metrics on tiny inputs, against closed forms, torchmetrics and hand-computed cases."""
import numpy as np
import pytest
import torch
from PIL import Image

from cac import metrics as M


def test_box_iou_and_hits_by_hand():
    iou = M.box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(iou, [[1 / 7, 1.0, 0.0]])
    hit, best = M.box_hits(np.array([[0, 0, 0.5, 0.5], [0.5, 0.5, 1, 1]]), ["cat", "dog"],
                           np.array([[0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]]), ["dog", "cat"])
    assert hit.tolist() == [False, True] and best[0] == 0.0  # the dog box is right but labelled cat
    hit, best = M.box_hits(np.zeros((0, 4)), [], np.array([[0, 0, 1, 1]]), ["dog"])
    assert hit.tolist() == [False]
    # one detection cannot credit two requested boxes of its class: matching is one-to-one
    hit, best = M.box_hits(np.array([[0, 0, 0.5, 0.5]]), ["person"], np.array([[0, 0, 0.5, 0.5], [0, 0, 0.45, 0.5]]),
                           ["person", "person"])
    assert hit.tolist() == [True, False] and best[1] == 0.0


def test_position_uses_best_detection_centre():
    present, placed = M.position_correct(np.array([[0.6, 0, 1, 1], [0, 0, 0.4, 1]]), ["apple", "apple"],
                                         np.array([[0, 0, 0.5, 1], [0.5, 0, 1, 1]]), ["apple", "bowl"])
    assert present.tolist() == [True, False] and placed.tolist() == [False, False]


def test_miou_by_hand():
    target = np.array([[0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 0]])
    conf = M.confusion_matrix(pred, target, n_classes=2)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0]]
    miou, per = M.mean_iou(conf)
    np.testing.assert_allclose(per, [0.5, 0.5])
    assert miou == 0.5
    # a prediction outside the label set (class 7) is a miss for its target class, not dropped
    conf = M.confusion_matrix(np.array([[0, 7]]), np.array([[0, 0]]), n_classes=2)
    assert conf.tolist() == [[1, 0, 1], [0, 0, 0]]
    assert M.mean_iou(conf)[1][0] == 0.5


def test_frechet_distance_closed_form_for_gaussians():
    """Commuting covariances: FD = |mu1 - mu2|^2 + sum (sqrt(a) - sqrt(b))^2."""
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    fd = M.frechet_distance(np.zeros(3), np.diag(a), np.ones(3), np.diag(b))
    assert fd == pytest.approx(3 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum(), rel=1e-9)


class _Flatten(torch.nn.Module):
    """A stand-in feature network for torchmetrics: uint8 images -> 8 features."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3 * 4 * 4, 8)
        self.num_features = 8

    def forward(self, x):
        return self.proj(x.float().flatten(1) / 255)


def test_fid_and_kid_match_torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (40, 3, 4, 4), generator=g, dtype=torch.uint8)
    fake = torch.randint(0, 200, (40, 3, 4, 4), generator=g, dtype=torch.uint8)
    net = _Flatten()
    with torch.no_grad():
        fr, ff = net(real).double().numpy(), net(fake).double().numpy()
    fid = FrechetInceptionDistance(feature=net)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    assert M.fid_from_features(fr, ff) == pytest.approx(float(fid.compute()), rel=1e-4)
    kid = KernelInceptionDistance(feature=net, subsets=1, subset_size=40)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    ours, _ = M.kid_from_features(fr, ff, subsets=1, subset_size=40)
    assert ours == pytest.approx(float(kid.compute()[0]), rel=1e-4, abs=1e-7)


def test_clip_score_is_clamped_scaled_cosine(clip_scorer):
    ims = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8)) for i in range(3)]
    texts = ["a dog", "a cat", "a bowl"]
    s = clip_scorer.scores(ims, texts)
    with torch.no_grad():
        fi = clip_scorer.model.encode_image(torch.stack([clip_scorer.preprocess(i) for i in ims]))
        ft = clip_scorer.model.encode_text(clip_scorer.tokenizer(texts))
    ref = (100 * torch.nn.functional.cosine_similarity(fi, ft)).clamp_min(0).numpy()
    np.testing.assert_allclose(s, ref, rtol=1e-4, atol=1e-4)


def test_local_clip_scores_the_crop(clip_scorer):
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    local = clip_scorer.local_scores([im], [[[0.5, 0.0, 1.0, 0.5]]], [["a dog"]])
    direct = clip_scorer.scores([im.crop((30, 0, 60, 20))], ["a dog"])
    np.testing.assert_allclose(local, direct, rtol=1e-5)


def test_owlvit_detector_on_a_tiny_model(tiny_owlvit):
    det = tiny_owlvit
    im = Image.fromarray(np.zeros((48, 64, 3), dtype=np.uint8))
    out = det([im], [["a dog", "a cat", "a dog"]])[0]
    assert len(out["boxes"]) == 16 and set(out["labels"]) <= {"a dog", "a cat"}  # one box per patch
    assert (out["boxes"] >= 0).all() and (out["boxes"] <= 1).all()
    assert (np.diff(out["scores"]) <= 0).all()


def test_segmenter_on_a_tiny_segformer():
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    cfg = SegformerConfig(num_labels=19, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                          num_attention_heads=[1, 2], decoder_hidden_size=16, patch_sizes=[7, 3], strides=[4, 2])
    torch.manual_seed(0)
    seg = M.Segmenter(processor=SegformerImageProcessor(size={"height": 32, "width": 64}),
                      segmenter=SegformerForSemanticSegmentation(cfg))
    ims = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 32, 3), dtype=np.uint8)) for i in range(2)]
    maps = seg(ims, (16, 32))
    assert maps.shape == (2, 16, 32) and maps.min() >= 0 and maps.max() < 19


def test_yolo_without_ultralytics_names_the_install():
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="requirements-full.txt"):
            M.YoloDetector()
    else:
        pytest.skip("ultralytics is installed")


def test_missing_recognition_models_name_the_download(tmp_path):
    with pytest.raises(RuntimeError, match="huggingface-cli download"):
        M.OwlViTDetector(str(tmp_path / "no-detector"))
    with pytest.raises(RuntimeError, match="huggingface-cli download"):
        M.Segmenter(str(tmp_path / "no-segmenter"))
