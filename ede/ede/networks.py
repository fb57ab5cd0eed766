"""EDE's network (spec section 2.2): a shared trunk (IMPALA-CNN for Procgen, Nature-CNN for Crafter, an MLP for
vector observations) and M quantile heads, each Linear(feat -> 512) -> ReLU -> Linear(512 -> N * A), evaluated as
one batched einsum over heads. Output: quantiles ``[batch, heads, N, actions]``."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(F.relu(x))))


class ImpalaCNN(nn.Module):
    """IMPALA-CNN (Espeholt et al.): per stage conv3x3 -> maxpool 3/2 -> 2 residual blocks; channels 16-32-32; ReLU
    on the flattened output (2048-d for 64x64 inputs). Input uint8 or float ``[B, C, H, W]``, scaled by 1/255."""

    def __init__(self, in_ch: int = 3, channels=(16, 32, 32), size: int = 64):
        super().__init__()
        layers, c = [], in_ch
        for out in channels:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.MaxPool2d(3, 2, padding=1), _Residual(out), _Residual(out)]
            c = out
            size = math.ceil(size / 2)
        self.body = nn.Sequential(*layers)
        self.out_dim = c * size * size

    def forward(self, x):
        return F.relu(self.body(x.float() / 255.0).flatten(1))


class NatureCNN(nn.Module):
    """DQN's Nature-CNN: 32x8/4, 64x4/2, 64x3/1 -> 3136 features for 84x84 inputs (Crafter: 4 stacked grey frames)."""

    def __init__(self, in_ch: int = 4, size: int = 84):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_ch, 32, 8, 4), nn.ReLU(), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
                                  nn.Conv2d(64, 64, 3, 1), nn.ReLU())
        s = ((size - 8) // 4 + 1 - 4) // 2 + 1 - 2
        self.out_dim = 64 * s * s

    def forward(self, x):
        return self.body(x.float() / 255.0).flatten(1)


class MLPTrunk(nn.Module):
    """Two ReLU layers for vector observations (tests, small control tasks)."""

    def __init__(self, in_dim: int, hidden: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out_dim = hidden

    def forward(self, x):
        return self.body(x.float())


class EnsembleQuantileHeads(nn.Module):
    """M independent heads on shared features; ``forward(feat)`` with ``feat [B, F]`` (same features to every
    head) or ``[M, B, F]`` (one feature batch per head: each head's own minibatch) -> ``[B, M, N, A]``.
    ``noisy=True``: NoisyNet heads (Fortunato et al.; factorised Gaussian noise, sigma0 = 0.5), noise redrawn at
    every forward call (the ablation of the paper's Fig. 4)."""

    def __init__(self, in_dim: int, n_actions: int, heads: int = 5, quantiles: int = 200, hidden: int = 512,
                 noisy: bool = False, sigma0: float = 0.5):
        super().__init__()
        self.heads, self.quantiles, self.n_actions, self.noisy = heads, quantiles, n_actions, noisy
        self.w1 = nn.Parameter(torch.empty(heads, in_dim, hidden))
        self.b1 = nn.Parameter(torch.zeros(heads, hidden))
        self.w2 = nn.Parameter(torch.empty(heads, hidden, quantiles * n_actions))
        self.b2 = nn.Parameter(torch.zeros(heads, quantiles * n_actions))
        for w in (self.w1, self.w2):  # nn.Linear's default init, per head (independent draws: ensemble diversity)
            bound = 1 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
        for b, fan in ((self.b1, in_dim), (self.b2, hidden)):
            nn.init.uniform_(b, -1 / math.sqrt(fan), 1 / math.sqrt(fan))
        if noisy:  # NoisyNet's init: mu ~ U(+-1/sqrt(fan_in)) (as above), sigma = sigma0 / sqrt(fan_in)
            for name, fan in (("w1", in_dim), ("b1", in_dim), ("w2", hidden), ("b2", hidden)):
                p = getattr(self, name)
                setattr(self, "s" + name, nn.Parameter(torch.full_like(p, sigma0 / math.sqrt(fan))))

    @staticmethod
    def _f(x):
        return x.sign() * x.abs().sqrt()

    def _params(self):
        if not self.noisy:
            return self.w1, self.b1, self.w2, self.b2
        out = []
        for w, b, sw, sb in ((self.w1, self.b1, self.sw1, self.sb1), (self.w2, self.b2, self.sw2, self.sb2)):
            e_in = self._f(torch.randn(w.shape[0], w.shape[1], device=w.device, dtype=w.dtype))
            e_out = self._f(torch.randn(w.shape[0], w.shape[2], device=w.device, dtype=w.dtype))
            out += [w + sw * e_in[:, :, None] * e_out[:, None, :], b + sb * e_out]
        return out

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = self._params()
        if feat.dim() == 2:
            h = F.relu(torch.einsum("bf,mfh->mbh", feat, w1) + b1[:, None])
        else:
            h = F.relu(torch.einsum("mbf,mfh->mbh", feat, w1) + b1[:, None])
        out = torch.einsum("mbh,mho->mbo", h, w2) + b2[:, None]
        m, b = out.shape[:2]
        return out.view(m, b, self.quantiles, self.n_actions).transpose(0, 1)


class EDENetwork(nn.Module):
    """Trunk + ensemble of quantile heads."""

    def __init__(self, trunk: nn.Module, n_actions: int, heads: int = 5, quantiles: int = 200, hidden: int = 512,
                 noisy: bool = False):
        super().__init__()
        self.trunk = trunk
        self.heads = EnsembleQuantileHeads(trunk.out_dim, n_actions, heads, quantiles, hidden, noisy)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Quantiles ``[B, M, N, A]`` of every head for one observation batch."""
        return self.heads(self.trunk(obs))
