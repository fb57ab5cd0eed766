"""GPU smoke: the batched layer forward+backward on CUDA (batch 1024, 50x50) matches the CPU result."""
import pytest
import torch

from sinkhorn_flow import sinkhorn


@pytest.mark.gpu
@pytest.mark.parametrize("backward", ["unrolled", "implicit"])
def test_cuda_matches_cpu(backward):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    g = torch.Generator().manual_seed(0)
    s = torch.randn(1024, 50, 50, generator=g, dtype=torch.float64)
    a = torch.softmax(torch.randn(1024, 50, generator=g, dtype=torch.float64), -1)
    b = torch.softmax(torch.randn(1024, 50, generator=g, dtype=torch.float64), -1)
    w = torch.rand(1024, 50, 50, generator=g, dtype=torch.float64)

    def run(device):
        s_ = s.detach().to(device, copy=True).requires_grad_()
        p = sinkhorn(s_, a.to(device), b.to(device), n_iters=50, backward=backward)
        (w.to(device) * p.log().clamp_min(-1e4)).sum().backward()
        return p.detach().cpu(), s_.grad.cpu()

    p_cpu, g_cpu = run("cpu")
    p_gpu, g_gpu = run("cuda")
    assert torch.isfinite(p_gpu).all() and torch.isfinite(g_gpu).all()
    assert torch.allclose(p_gpu, p_cpu, atol=1e-10) and torch.allclose(g_gpu, g_cpu, atol=1e-8)
    # float32 on the GPU stays close to the float64 reference
    p32 = sinkhorn(s.float().cuda(), a.float().cuda(), b.float().cuda(), n_iters=50).cpu().double()
    assert (p32 - p_cpu).abs().max() < 1e-4
