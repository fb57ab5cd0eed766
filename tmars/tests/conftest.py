"""Fixtures: a tiny open_clip model saved as a local checkpoint and loaded back with the real bundled tokenizer."""
import json
import os

import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


@pytest.fixture(scope="session")
def tiny_clip_ckpt(tmp_path_factory) -> str:
    """Path of a local checkpoint of the open_clip model config "tmars-tiny" (registered with open_clip)."""
    import open_clip

    d = tmp_path_factory.mktemp("oc")
    (d / "tmars-tiny.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(d)
    torch.manual_seed(0)
    model = open_clip.create_model("tmars-tiny", pretrained=None)
    torch.save({"state_dict": model.state_dict()}, d / "tiny.pt")
    return str(d / "tiny.pt")


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_ckpt):
    """(model, preprocess, tokenizer) of a tiny open_clip model loaded from a local checkpoint file."""
    from tmars import load_clip

    return load_clip("tmars-tiny", tiny_clip_ckpt)
