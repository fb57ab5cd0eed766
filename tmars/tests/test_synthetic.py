"""The mini's generated pool: categories, captions, true text boxes that the masking really empties."""
import numpy as np

from tmars import OracleDetector, mask_text
from tmars.synthetic import CATEGORIES, CLASSES, make_pool


def test_pool_categories_and_captions():
    pool = make_pool(300, seed=0)
    cats = np.array(pool.categories)
    assert set(cats) == set(CATEGORIES) and abs((cats == "clean").mean() - 0.4) < 0.08
    assert all(c == f"a photo of a {CLASSES[k]}" for c, k in zip(pool.captions, pool.caption_class))
    assert (pool.shape_class[cats == "word_only"] == -1).all()
    assert (pool.shape_class[cats == "clean"] == pool.caption_class[cats == "clean"]).all()
    assert (pool.shape_class[cats == "mislabeled"] != pool.caption_class[cats == "mislabeled"]).all()
    has_text = np.array([len(b) > 0 for b in pool.text_boxes])
    assert (has_text == np.isin(cats, ["word_only", "shape_word", "shape_other_word"])).all()


def test_true_text_boxes_hold_the_text_and_masking_removes_it():
    pool = make_pool(60, seed=1)
    det = OracleDetector(pool.text_boxes)
    for i, (im, tb) in enumerate(zip(pool.images, pool.text_boxes)):
        if len(tb) == 0:
            continue
        arr = np.asarray(im)
        x0, y0, x1, y1 = tb[0].astype(int)
        dark = (arr.sum(-1) < 60)
        assert dark[y0:y1, x0:x1].sum() > 5, "the rendered word lies inside its box"
        if pool.categories[i] == "word_only":  # no shape: every black pixel belongs to the word
            assert dark.sum() == dark[y0:y1, x0:x1].sum()
        out = mask_text(arr, det([im], [i])[0])
        assert (out[y0:y1, x0:x1].sum(-1) >= 60).all(), "no text pixel survives the masking"


def test_unknown_category_is_named():
    import pytest

    with pytest.raises(ValueError, match="unknown categories"):
        make_pool(5, mix={"clean": 1.0, "screenshots": 0.1})


def test_detector_quality_by_hand():
    from tmars.quality import detector_quality

    quads = [OracleDetector([[[0, 0, 10, 10]]])([None])[0], np.zeros((0, 4, 2)),
             OracleDetector([[[0, 0, 4, 4], [20, 20, 30, 30]]])([None])[0]]
    truth = [np.array([[0, 0, 10, 5]]), np.array([[1, 1, 5, 5]]), np.zeros((0, 4))]
    q = detector_quality(quads, truth, [(32, 32)] * 3)
    assert q["recall"] == 0.5 and q["mean_iou"] == 0.25 and q["false_boxes_per_text_free_image"] == 2.0


def test_rapidocr_on_the_generated_pool():
    """Scaled to 224 px as the real pools are; the numbers go to the README via the mini, here only a floor."""
    from tmars import RapidOCRDetector
    from tmars.quality import detector_quality

    pool = make_pool(12, mix={"word_only": 0.5, "clean": 0.5}, seed=3, size=224, font_size=36)
    quads = RapidOCRDetector()(pool.images)
    q = detector_quality(quads, pool.text_boxes, [im.size for im in pool.images])
    assert q["recall"] >= 0.8 and q["false_boxes_per_text_free_image"] <= 0.5, q
