"""The mini's world: scenes, the colour detector, the toy pipeline's save/load and resumable training."""
import numpy as np
import pytest
import torch

from cac.mini import random_scenes, sample_layouts
from cac.toy import ToyConfig, ToyPipeline, placement, sample_scenes, train_toy

TINY = ToyConfig(size=8, obj=3, hidden=16, layers=1, heads=2, text_dim=16, max_tokens=12)


def test_scenes_hold_the_captioned_squares():
    img, caps, colours, pos = sample_scenes(64, TINY, torch.Generator().manual_seed(0))
    assert img.shape == (64, 3, 8, 8) and img.min() >= -1 and img.max() <= 1
    for i in range(64):
        assert caps[i] == " and ".join(f"a {c} square" for c in colours[i])
        assert not any(w in caps[i] for w in ("left", "right", "top", "bottom"))
        for j, c in enumerate(colours[i]):
            y, x = pos[i, j].tolist()
            res = placement((img[i:i + 1] + 1) / 2, [c], torch.tensor([[x, y, x + 3, y + 3]]))
            assert res["present"][0] and res["in_box"][0]
            if len(colours[i]) == 1:  # alone, the square is exactly its box (catches an x/y swap)
                assert res["mass_in_box"][0] == 1.0 and res["iou"][0] == 1.0
    assert {len(c) for c in colours} == {1, 2}


def test_placement_by_hand():
    img = torch.full((2, 3, 6, 6), 0.5)
    img[0, :, 0:2, 0:2] = torch.tensor([1.0, 0.0, 0.0])[:, None, None]  # red 2x2 top-left
    img[1, :, 4:6, 4:6] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # blue bottom-right
    res = placement(img, ["red", "red"], torch.tensor([[0, 0, 3, 3], [0, 0, 3, 3]]))
    assert res["present"].tolist() == [True, False] and res["in_box"].tolist() == [True, False]
    np.testing.assert_allclose(res["iou"], [4 / 9, 0.0])
    np.testing.assert_allclose(res["mass_in_box"], [1.0, 0.0])


def test_layouts_are_disjoint_and_chance_scenes_are_true_scenes():
    colours, boxes = sample_layouts(50, 10, 5, 2, torch.Generator().manual_seed(0))
    a, b = boxes[:, 0], boxes[:, 1]
    overlap = (a[:, 0] < b[:, 2]) & (b[:, 0] < a[:, 2]) & (a[:, 1] < b[:, 3]) & (b[:, 1] < a[:, 3])
    assert not overlap.any() and ((boxes[..., 2:] - boxes[..., :2]) == 5).all()
    img = random_scenes(colours, ToyConfig(), torch.Generator().manual_seed(1))
    for j in range(2):
        assert placement(img, [c[j] for c in colours], boxes[:, j])["present"].all()


def test_training_resumes_to_the_same_weights(tmp_path):
    """Kill at step 4 of 6 (checkpoint every 2 steps), resume: identical to an uninterrupted run."""
    kw = dict(arch=TINY, steps=6, batch_size=4, ckpt_every=2, progress=False)
    full = train_toy(tmp_path / "full", **kw)

    def kill(step, _):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_toy(tmp_path / "resumed", log=kill, **kw)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed = train_toy(tmp_path / "resumed", **kw)
    for (n, a), b in zip(full.unet.state_dict().items(), resumed.unet.state_dict().values()):
        torch.testing.assert_close(a, b, msg=n)
    loaded = ToyPipeline.load(tmp_path / "resumed")
    out = loaded(prompt=["a red square"], num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (1, 3, 8, 8) and torch.isfinite(out.images).all()


def test_missing_toy_model_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="make -C cac toy"):
        ToyPipeline.load(tmp_path / "nothing")
