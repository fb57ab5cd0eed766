"""Paper-scale loaders on tiny fabricated COCO / CC-500 / Cityscapes folders."""
import numpy as np
import pytest

from cac import data


def test_coco_boxes(tmp_path, make_coco):
    lays = data.load_coco_boxes(make_coco(tmp_path / "coco"), min_area=0.01)
    assert len(lays) == 3
    lay = lays[0]
    assert lay.prompt == "caption 0 of image 1" and lay.local_prompts == ["dog", "person"]  # largest first
    np.testing.assert_allclose(lay.boxes, [[0, 0, 0.5, 0.5], [40 / 64, 0.25, 56 / 64, 0.75]])  # tiny + crowd dropped
    assert lay.reference.endswith("000000000001.jpg")
    assert len(data.load_coco_boxes(tmp_path / "coco", caption_index=1, max_images=2)) == 2
    with pytest.raises(FileNotFoundError, match="annotations_trainval2017.zip"):
        data.load_coco_boxes(tmp_path / "missing")


def test_cc500(tmp_path):
    f = tmp_path / "cc500.txt"
    f.write_text("a red apple and a green bowl\n\na blue car and a yellow bench\n")
    lays = data.load_cc500(f)
    assert [lay.local_prompts for lay in lays] == [["a red apple", "a green bowl"], ["a blue car", "a yellow bench"]]
    assert lays[0].boxes == [[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]]
    f.write_text("a red apple\n")
    with pytest.raises(ValueError, match="expected"):
        data.load_cc500(f)
    with pytest.raises(FileNotFoundError, match="CC-500"):
        data.load_cc500(tmp_path / "none.txt")


def test_cityscapes(tmp_path, make_cityscapes):
    lays = data.load_cityscapes(make_cityscapes(tmp_path / "cs"), min_area=0.01)
    assert len(lays) == 1
    lay = lays[0]
    assert lay.prompt == "a street photo in Munster" and lay.local_prompts == ["road", "sky", "car"]
    assert lay.class_ids == [0, 10, 13] and lay.seg.shape == (16, 32) and lay.seg[0, 0] == 11
    assert lay.reference.endswith("leftImg8bit/val/munster/munster_000000_000019_leftImg8bit.png")
    with pytest.raises(FileNotFoundError, match="cityscapes-dataset.com"):
        data.load_cityscapes(tmp_path / "none")


def test_shards_partition():
    items = list(range(10))
    parts = [data.shard(items, i, 3) for i in range(3)]
    assert sorted(sum(parts, [])) == items
    with pytest.raises(ValueError):
        data.shard(items, 3, 3)
