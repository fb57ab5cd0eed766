"""Fixtures: tiny SD / GLIGEN / SDXL pipelines saved with save_pretrained and loaded back (the users' path)."""
import os

import pytest
import torch

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
