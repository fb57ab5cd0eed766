"""Location inputs -> masks -> per-layer masks."""
import pytest
import torch

from cac.masks import layer_hw, masks_from_boxes, masks_from_segmentation, resize_masks


def test_box_masks_pixel_and_normalized_agree():
    a = masks_from_boxes([[16, 8, 48, 40]], 64, 64, units="pixel")
    b = masks_from_boxes([[0.25, 0.125, 0.75, 0.625]], 64, 64)
    assert torch.equal(a, b)
    assert a.sum() == 32 * 32 and a[0, 8:40, 16:48].all() and a[0, :8].sum() == 0


@pytest.mark.parametrize("res", [64, 32, 16, 8])
def test_grid_aligned_boxes_resize_exactly(res):
    """A box on the 8-px grid of a 512 image is exact at every SD layer resolution (64/32/16/8)."""
    box = [64, 128, 320, 448]  # pixels of 512x512, multiples of 64
    m = masks_from_boxes([box], 512, 512, units="pixel")
    r = resize_masks(m, res, res)
    f = 512 // res
    expected = torch.zeros(1, res, res)
    expected[0, box[1] // f:box[3] // f, box[0] // f:box[2] // f] = 1
    assert torch.equal(r, expected)


def test_small_box_snaps_instead_of_vanishing():
    m = masks_from_boxes([[100, 100, 130, 130]], 512, 512, units="pixel")  # 30 px: under half of a 64-px cell
    r = resize_masks(m, 8, 8)
    assert r.sum() >= 1 and r[0, 1, 1] == 1  # the cell holding most of the box
    assert resize_masks(m, 8, 8, snap=False).sum() == 0


def test_non_square_layer_grid():
    assert layer_hw(96 * 64, (96, 64)) == (96, 64)
    assert layer_hw(48 * 32, (96, 64)) == (48, 32)
    assert layer_hw(13 * 9, (25, 17)) == (13, 9)  # ceil halving as in stride-2 convs
    with pytest.raises(ValueError, match="no downsampled grid"):
        layer_hw(7, (96, 64))


def test_segmentation_masks():
    seg = torch.tensor([[0, 0, 1], [2, 2, 1]])
    m = masks_from_segmentation(seg, [2, 1])
    assert m.tolist() == [[[0, 0, 0], [1, 1, 0]], [[0, 0, 1], [0, 0, 1]]]
    with pytest.raises(ValueError, match="resize the map"):
        masks_from_segmentation(seg, [1], height=4, width=3)
    with pytest.raises(ValueError, match="do not occur"):
        masks_from_segmentation(seg, [7])
    assert masks_from_segmentation(seg, [7], allow_empty=True).sum() == 0


def test_bad_boxes_are_named():
    with pytest.raises(ValueError, match="outside"):
        masks_from_boxes([[-5, 0, 10, 10]], 32, 32, units="pixel")
    assert masks_from_boxes([[-5, 0, 10, 10]], 32, 32, units="pixel", clip=True)[0, :10, :10].all()
    with pytest.raises(ValueError, match="empty"):
        masks_from_boxes([[10, 10, 5, 20]], 32, 32, units="pixel")
    with pytest.raises(ValueError, match="units='pixel'"):
        masks_from_boxes([[10, 10, 20, 20]], 32, 32)


def test_clip_tokenizer_built_offline_matches_open_clip(tmp_path):
    import open_clip

    from cac.tokenizer import clip_tokenizer

    tok = clip_tokenizer(tmp_path / "tok")
    text = "A red apple and a green bowl, on a beach at 5pm!"
    ours = tok(text, padding="max_length", max_length=77).input_ids
    ref = open_clip.tokenize([text])[0].tolist()
    n = sum(1 for i in ref if i)
    assert ours[:n] == ref[:n] and ours[0] == 49406 and ours[n - 1] == 49407
    assert set(ours[n:]) == {49407}  # SD pads with EOT (open_clip with 0)
    assert len(tok) == 49408
