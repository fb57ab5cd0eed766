"""GPU smoke: NPAttention / NFT blocks / HNPLinear equivariance on CUDA (and equal to the CPU), one NFT
classification step and one Inr2Array training step on CUDA, and the pipeline with device=cuda."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from nft import NFT, HNPLinear, Inr2Array, NFTBlock, WeightSpaceFeatures
from nft.pipeline import run
from nft.siren import grid, init_sirens, siren_forward
from nft.weight_space import random_hidden_permutations, random_neuron_permutations
from shared.testing import run_config

pytestmark = pytest.mark.gpu
PROJECT = Path(__file__).resolve().parents[1]
WIDTHS = (2, 32, 32, 1)


def _cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")


def _feats(c, b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return WeightSpaceFeatures(tuple(torch.randn(b, c, WIDTHS[i + 1], WIDTHS[i], generator=g) for i in range(3)),
                               tuple(torch.randn(b, c, WIDTHS[i + 1], generator=g) for i in range(3)))


def _close(a, b, atol):
    return all(torch.allclose(x.cpu(), y.cpu(), atol=atol) for x, y in zip(a.weights + a.biases, b.weights + b.biases))


def test_equivariance_on_cuda_matches_cpu():
    _cuda()
    torch.manual_seed(0)
    block, hnp, x = NFTBlock(3, 16, heads=4).eval(), HNPLinear(WIDTHS, 16, 8).eval(), _feats(16, 8)
    perms = random_neuron_permutations(WIDTHS, torch.Generator().manual_seed(1))
    hidden = random_hidden_permutations(WIDTHS, batch=8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        cpu = block(x)
        block, hnp, xg = block.cuda(), hnp.cuda(), x.to("cuda")
        y = block(xg)
        assert _close(y, cpu, 1e-4)  # the fused CUDA attention equals the CPU's matmuls
        assert _close(block(xg.permute(perms)), y.permute(perms), 1e-4)
        assert _close(hnp(xg.permute(hidden)), hnp(xg).permute(hidden), 1e-4)


def test_nft_classification_and_inr2array_steps_on_cuda():
    _cuda()
    torch.manual_seed(0)
    x = init_sirens(64, WIDTHS).to("cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    nft = NFT(WIDTHS, 10, channels=64, depth=2).cuda()
    opt = torch.optim.AdamW(nft.parameters(), 1e-3)
    loss = F.cross_entropy(nft(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    ae = Inr2Array(WIDTHS, (28, 28), channels=64, depth=2, fourier_m=32, n_latents=16, dec_hidden=64).cuda()
    opt = torch.optim.AdamW(ae.parameters(), 1e-4)
    target = siren_forward(x, grid(28, 28).cuda())
    losses = []
    for _ in range(3):
        loss = F.mse_loss(ae(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    ae.eval()
    perms = random_hidden_permutations(WIDTHS, batch=64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(ae.encode(x.permute(perms)), ae.encode(x), atol=1e-4)


def test_pipeline_on_cuda(tmp_path):
    _cuda()
    m = run_config(run, PROJECT / "configs", ["zoo.classes=[0,1]", "zoo.copies=1", "zoo.steps=30", "optim.epochs=2",
                                              "model.channels=16", "device=cuda"], tmp_path / "r",
                   **{"zoo.cache_dir": str(tmp_path / "cache")})
    assert m["test/perm_agreement"] == 1.0 and m["test/perm_max_logit_diff"] < 1e-3
