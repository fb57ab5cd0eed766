"""Fixtures: tiny SD / GLIGEN / SDXL pipelines saved with save_pretrained and loaded back (the users' path)."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """Folder of saved tiny pipelines, built once per session."""
    return tmp_path_factory.mktemp("tiny")


def _pipe(tiny_dir, kind):
    from cac.tiny import build_tiny_pipeline, load_tiny_pipeline

    path = tiny_dir / kind
    if not (path / "model_index.json").exists():
        build_tiny_pipeline(path, kind)
    return load_tiny_pipeline(path, kind)


@pytest.fixture(scope="session")
def sd_pipe(tiny_dir):
    """Tiny StableDiffusionPipeline (DDIM, 32x32 images, 16x16 latents, cross-attention at 16x16 and 8x8)."""
    return _pipe(tiny_dir, "sd")


@pytest.fixture(scope="session")
def gligen_pipe(tiny_dir):
    """Tiny StableDiffusionGLIGENPipeline (gated self-attention + the same cross-attention layers)."""
    return _pipe(tiny_dir, "gligen")


@pytest.fixture(scope="session")
def sdxl_pipe(tiny_dir):
    """Tiny StableDiffusionXLPipeline (two text encoders, text_time added conditions)."""
    return _pipe(tiny_dir, "sdxl")


def _make_coco(root, n=3):
    """A COCO-format folder with ``n`` images, 2 captions each, boxes of every kind the loader filters."""
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "val2017").mkdir(exist_ok=True)
    images, caps, inst = [], [], []
    for i in range(1, n + 1):
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 32})
        Image.fromarray(np.full((32, 64, 3), 40 * i, dtype=np.uint8)).save(root / "val2017" / f"{i:012d}.jpg")
        caps += [{"id": 10 * i + k, "image_id": i, "caption": f"caption {k} of image {i} "} for k in range(2)]
        inst += [{"id": 100 * i, "image_id": i, "category_id": 18, "bbox": [0, 0, 32, 16], "iscrowd": 0},
                 {"id": 100 * i + 1, "image_id": i, "category_id": 1, "bbox": [40, 8, 16, 16], "iscrowd": 0},
                 {"id": 100 * i + 2, "image_id": i, "category_id": 1, "bbox": [0, 0, 2, 2], "iscrowd": 0},
                 {"id": 100 * i + 3, "image_id": i, "category_id": 1, "bbox": [0, 0, 60, 30], "iscrowd": 1}]
    cats = [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps({"images": images, "annotations": caps}))
    (root / "annotations" / "instances_val2017.json").write_text(
        json.dumps({"images": images, "annotations": inst, "categories": cats}))
    return root


def _make_cityscapes(root):
    """A Cityscapes-format folder with one labelIds map (sky, road, car, one person pixel, unlabeled)."""
    d = root / "gtFine" / "val" / "munster"
    d.mkdir(parents=True, exist_ok=True)
    lab = np.zeros((16, 32), dtype=np.uint8)  # labelId 0 = unlabeled -> 255
    lab[:8] = 23  # sky -> trainId 10
    lab[8:, :16] = 7  # road -> 0
    lab[8:, 16:] = 26  # car -> 13
    lab[0, 0] = 24  # one person pixel: under min_area
    Image.fromarray(lab).save(d / "munster_000000_000019_gtFine_labelIds.png")
    return root


@pytest.fixture
def make_coco():
    """Factory: make_coco(root, n=3) -> root."""
    return _make_coco


@pytest.fixture
def make_cityscapes():
    """Factory: make_cityscapes(root) -> root."""
    return _make_cityscapes


@pytest.fixture(scope="session")
def clip_scorer(tmp_path_factory):
    """A ClipScorer around a tiny random open_clip model (the real bundled CLIP tokenizer)."""
    import open_clip

    from cac.metrics import ClipScorer

    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}
    d = tmp_path_factory.mktemp("oc")
    (d / "tiny-clip.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d)
    torch.manual_seed(0)
    model, _, pre = open_clip.create_model_and_transforms("tiny-clip", pretrained=None)
    return ClipScorer.from_parts(model, pre, open_clip.get_tokenizer("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_owlvit(tmp_path_factory):
    """An OwlViTDetector around a tiny random OWL-ViT (threshold 0: every patch's box comes back)."""
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor

    from cac.metrics import OwlViTDetector
    from cac.tokenizer import clip_tokenizer

    cfg = OwlViTConfig(
        text_config={"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=32)
    torch.manual_seed(0)
    proc = OwlViTProcessor(image_processor=OwlViTImageProcessor(size={"height": 32, "width": 32},
                                                                crop_size={"height": 32, "width": 32}),
                           tokenizer=clip_tokenizer(tmp_path_factory.mktemp("tok"), model_max_length=16))
    return OwlViTDetector(threshold=0.0, processor=proc, detector=OwlViTForObjectDetection(cfg))
