"""GPU smoke (pytest -m gpu): tiny pipelines at 64x64 in fp16 on CUDA with CAC and GLIGEN+CAC."""
import numpy as np
import pytest
import torch

from cac import apply_cac, multidiffusion

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@needs_cuda
@pytest.mark.parametrize("kind", ["sd", "gligen"])
def test_cac_fp16_cuda(tmp_path, kind):
    from cac.tiny import build_tiny_pipeline, load_tiny_pipeline

    pipe = load_tiny_pipeline(build_tiny_pipeline(tmp_path / kind, kind), kind, "cuda", torch.float16)
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]
    out, state = apply_cac(pipe, "a dog and a cat", ["a dog", "a cat"], boxes, height=64, width=64, record=True,
                           return_state=True, num_inference_steps=4, output_type="np",
                           generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (1, 64, 64, 3) and np.isfinite(out.images).all()
    assert state.recorded and all(p.dtype == torch.float16 and p.is_cuda for _, p in state.recorded)
    for _, p in state.recorded:
        h = int(p.shape[1] ** 0.5)
        heads = p.shape[0] // 2
        cond = p[heads:].view(heads, h, h, 3, 77)
        assert cond[:, h // 2:, :, 0].abs().max() == 0 and cond[:, :h // 2, :, 1].abs().max() == 0
        assert torch.isfinite(p).all()


@needs_cuda
@pytest.mark.parametrize("normalize", ["none", "renorm", "per_prompt"])
def test_fused_cuda_path_matches_materialised_and_md_runs_in_fp16(tmp_path, normalize):
    """The default CUDA path (fused SDPA, no attention map) against the materialised one, and MD(+CAC) in fp16."""
    from cac.tiny import build_tiny_pipeline, load_tiny_pipeline

    pipe = load_tiny_pipeline(build_tiny_pipeline(tmp_path / "sd", "sd"), "sd", "cuda", torch.float16)
    boxes = [[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]]
    kw = dict(height=64, width=64, num_inference_steps=4, output_type="np", normalize=normalize)
    outs = [apply_cac(pipe, "a dog and a cat", ["a dog", "a cat"], boxes, fused=f,
                      generator=torch.Generator().manual_seed(0), **kw).images for f in (True, False)]
    assert np.isfinite(outs[0]).all() and np.abs(outs[0] - outs[1]).max() < 2e-2  # fp16 kernels differ slightly
    md = multidiffusion(pipe, "a dog and a cat", ["a dog", "a cat"], boxes, md_ratio=0.5, progress=False,
                        generator=torch.Generator().manual_seed(0), **kw).images
    assert md.shape == (1, 64, 64, 3) and np.isfinite(md).all()
