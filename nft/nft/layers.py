"""Permutation-equivariant layers on MLP weight spaces (``WeightSpaceFeatures``, channels first), all batched:
the only Python loops run over layers, never over neurons or networks.

- ``NPLinear``: the NF-Layer of Zhou et al. (NFN) equivariant to neuron permutations S_NP: a per-entry channel mix
  plus row, column and global terms built from means of the neighbouring tensors.
- ``Pointwise``: per-tensor channel mixing (a 1x1 map), ``ChannelLayerNorm``: per-entry normalisation over
  channels (std in the denominator, eps added to it), with an affine per tensor.
- ``GaussianFourier``: x -> [sin 2 pi x B, cos 2 pi x B], B ~ N(0, scale^2) fixed; ``LearnedPosEmbedding``: a
  learned vector per tensor, per input neuron and per output neuron (breaks S_NP down to S_HNP).
- ``NPAttention``: the NFT weight-space self-attention (cross term per neuron set, global term).
- ``NFTBlock``: pre-LN block, x + Dropout(Attn(LN(x))), then x + FF(LN(x)).
- ``NPPool``, ``HNPPool``, ``CrossAttentionPool``: invariant pooling.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from nft.weight_space import WeightSpaceFeatures


def _mix(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Channel mix of a channels-first tensor [B, C, ...] by ``weight`` [O, C]."""
    return torch.einsum("bc...,oc->bo...", x, weight)


class NPLinear(nn.Module):
    """S_NP-equivariant linear map between weight-space features of an MLP with ``n_layers`` layers.

    For W_i (entries j of set i+1, k of set i): A_i W_i[j, k] + R_i(mean_k W_i[j, :], b_i[j], mean_r W_{i+1}[r, j])
    + C_i(mean_j W_i[:, k], mean_r W_{i-1}[k, r], b_{i-1}[k]) + G_i(means of every tensor) (absent neighbours
    dropped). For b_i[j]: B_i b_i[j] + R'_i(mean_k W_i[j, :], mean_r W_{i+1}[r, j]) + G'_i(means). Each term is a
    channel mix; init uniform +-1/sqrt(total fan-in of the output's terms)."""

    def __init__(self, n_layers: int, c_in: int, c_out: int):
        super().__init__()
        self.L, self.ci, self.co = n_layers, c_in, c_out
        g = 2 * n_layers * c_in
        self.w_self, self.w_row, self.w_col, self.w_glob = (nn.ParameterList() for _ in range(4))
        self.b_self, self.b_row, self.b_glob = (nn.ParameterList() for _ in range(3))
        self.w_bias, self.b_bias = nn.ParameterList(), nn.ParameterList()
        for i in range(n_layers):
            nrow = 2 + (i + 1 < n_layers)
            ncol = 1 + 2 * (i > 0)
            fan_w = c_in * (1 + nrow + ncol) + g
            fan_b = c_in * (1 + 1 + (i + 1 < n_layers)) + g
            s_w, s_b = 1 / math.sqrt(fan_w), 1 / math.sqrt(fan_b)
            self.w_self.append(nn.Parameter(torch.empty(c_out, c_in).uniform_(-s_w, s_w)))
            self.w_row.append(nn.Parameter(torch.empty(c_out, nrow * c_in).uniform_(-s_w, s_w)))
            self.w_col.append(nn.Parameter(torch.empty(c_out, ncol * c_in).uniform_(-s_w, s_w)))
            self.w_glob.append(nn.Parameter(torch.empty(c_out, g).uniform_(-s_w, s_w)))
            self.w_bias.append(nn.Parameter(torch.empty(c_out).uniform_(-s_w, s_w)))
            self.b_self.append(nn.Parameter(torch.empty(c_out, c_in).uniform_(-s_b, s_b)))
            self.b_row.append(nn.Parameter(torch.empty(c_out, (1 + (i + 1 < n_layers)) * c_in).uniform_(-s_b, s_b)))
            self.b_glob.append(nn.Parameter(torch.empty(c_out, g).uniform_(-s_b, s_b)))
            self.b_bias.append(nn.Parameter(torch.empty(c_out).uniform_(-s_b, s_b)))

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.n_layers != self.L or x.channels != self.ci:
            raise ValueError(f"NPLinear built for {self.L} layers x {self.ci} channels, got {x.n_layers} x "
                             f"{x.channels}")
        W, b = x.weights, x.biases
        rowm = [w.mean(3) for w in W]  # [B, C, n_{i+1}]: per output neuron of layer i
        colm = [w.mean(2) for w in W]  # [B, C, n_i]: per input neuron of layer i
        glob = torch.cat([w.mean((2, 3)) for w in W] + [t.mean(2) for t in b], dim=1)  # [B, 2 L C]
        ws, bs = [], []
        for i in range(self.L):
            rows = [rowm[i], b[i]] + ([colm[i + 1]] if i + 1 < self.L else [])
            cols = [colm[i]] + ([rowm[i - 1], b[i - 1]] if i > 0 else [])
            g_w = glob @ self.w_glob[i].T + self.w_bias[i]  # [B, O]
            out = (_mix(W[i], self.w_self[i]) + _mix(torch.cat(rows, 1), self.w_row[i])[..., :, None]
                   + _mix(torch.cat(cols, 1), self.w_col[i])[..., None, :] + g_w[:, :, None, None])
            ws.append(out)
            brow = [rowm[i]] + ([colm[i + 1]] if i + 1 < self.L else [])
            g_b = glob @ self.b_glob[i].T + self.b_bias[i]
            bs.append(_mix(b[i], self.b_self[i]) + _mix(torch.cat(brow, 1), self.b_row[i]) + g_b[:, :, None])
        return WeightSpaceFeatures(tuple(ws), tuple(bs))


class Pointwise(nn.Module):
    """Per-tensor channel mixing (its own c_out x c_in map and bias for every W_i and b_i)."""

    def __init__(self, n_layers: int, c_in: int, c_out: int):
        super().__init__()
        self.w = nn.ModuleList([nn.Linear(c_in, c_out) for _ in range(n_layers)])
        self.b = nn.ModuleList([nn.Linear(c_in, c_out) for _ in range(n_layers)])

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        return WeightSpaceFeatures(tuple(self.w[i](w.movedim(1, -1)).movedim(-1, 1) for i, w in enumerate(x.weights)),
                                   tuple(self.b[i](t.movedim(1, -1)).movedim(-1, 1) for i, t in enumerate(x.biases)))


class ChannelLayerNorm(nn.Module):
    """Each entry normalised over its C channels: (x - mean) / (std + eps), then a per-tensor affine."""

    def __init__(self, n_layers: int, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gw = nn.Parameter(torch.ones(n_layers, channels))
        self.bw = nn.Parameter(torch.zeros(n_layers, channels))
        self.gb = nn.Parameter(torch.ones(n_layers, channels))
        self.bb = nn.Parameter(torch.zeros(n_layers, channels))

    def _norm(self, t, g, b):
        mean, std = t.mean(1, keepdim=True), t.std(1, unbiased=False, keepdim=True)
        shape = (1, -1) + (1,) * (t.dim() - 2)
        return (t - mean) / (std + self.eps) * g.view(shape) + b.view(shape)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        return WeightSpaceFeatures(tuple(self._norm(w, self.gw[i], self.bw[i]) for i, w in enumerate(x.weights)),
                                   tuple(self._norm(t, self.gb[i], self.bb[i]) for i, t in enumerate(x.biases)))


class GaussianFourier(nn.Module):
    """Scalar entries (C = 1) to 2m channels [sin 2 pi x B, cos 2 pi x B], B ~ N(0, scale^2) fixed at init."""

    def __init__(self, m: int = 128, scale: float = 3.0, generator=None):
        super().__init__()
        self.register_buffer("B", torch.randn(m, generator=generator) * scale)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.channels != 1:
            raise ValueError(f"GaussianFourier encodes scalar entries (C = 1), got C = {x.channels}")

        def enc(t):
            z = 2 * math.pi * t * self.B.view((1, -1) + (1,) * (t.dim() - 2))
            return torch.cat([z.sin(), z.cos()], 1)

        return x.map(enc)


class LearnedPosEmbedding(nn.Module):
    """Adds a learned C-vector per tensor (all its entries), per input neuron (columns of W_1) and per output neuron
    (rows of W_L and entries of b_L): the input and output neurons get identities (S_NP -> S_HNP)."""

    def __init__(self, widths, channels: int):
        super().__init__()
        L = len(widths) - 1
        self.widths = tuple(widths)
        self.layer_w = nn.Parameter(torch.randn(L, channels) * 0.02)
        self.layer_b = nn.Parameter(torch.randn(L, channels) * 0.02)
        self.inp = nn.Parameter(torch.randn(channels, widths[0]) * 0.02)
        self.out_w = nn.Parameter(torch.randn(channels, widths[-1]) * 0.02)
        self.out_b = nn.Parameter(torch.randn(channels, widths[-1]) * 0.02)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.widths[0] != self.widths[0] or x.widths[-1] != self.widths[-1] or x.n_layers != len(self.widths) - 1:
            raise ValueError(f"position embedding built for widths {self.widths}, got {x.widths}")
        ws = [w + self.layer_w[i].view(1, -1, 1, 1) for i, w in enumerate(x.weights)]
        bs = [t + self.layer_b[i].view(1, -1, 1) for i, t in enumerate(x.biases)]
        ws[0] = ws[0] + self.inp[None, :, None, :]
        ws[-1] = ws[-1] + self.out_w[None, :, :, None]
        bs[-1] = bs[-1] + self.out_b[None]
        return WeightSpaceFeatures(tuple(ws), tuple(bs))


class NPAttention(nn.Module):
    """Weight-space self-attention of the NFT paper.

    q, k, v = a per-entry Linear(C, 3C) shared by every tensor; H heads of c_h = C / H channels.
    1. Cross term, one attention per neuron set l = 0..L: its tokens are the columns of W_l (one per neuron of set
       l-1), b_l (one token) and the rows of W_{l+1} (one per neuron of set l+1), whichever exist; each token is a
       c_h x n_l matrix indexed by the neurons of set l. Scores are Frobenius inner products scaled by
       1/sqrt(c_h n_l), softmax over tokens; each output token goes back to its column / bias / row, so every W
       entry sums two contributions (as a column of set l, as a row of set l-1) and every bias entry one.
    2. Global term: per head, the means of q, k, v over each W_i and each b_i (2L tokens) attend among themselves;
       the result is added to every entry of that tensor.
    Dropout acts on the attention weights. Equivariant to S_NP (not invariant to uncoupled permutations)."""

    def __init__(self, channels: int, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.C, self.H, self.ch = channels, heads, channels // heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.dropout = dropout

    def _split(self, t):  # [B, C, ...] -> q, k, v each [B, H, c_h, ...]
        z = self.qkv(t.movedim(1, -1)).movedim(-1, 1)
        B = z.shape[0]
        z = z.reshape(B, self.H, 3, self.ch, *z.shape[2:])
        return z[:, :, 0], z[:, :, 1], z[:, :, 2]

    def _attend(self, q, k, v):  # [B, H, T, D] -> [B, H, T, D], scores / sqrt(D)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.channels != self.C:
            raise ValueError(f"NPAttention built for {self.C} channels, got {x.channels}")
        L, B = x.n_layers, x.batch
        Wq = [self._split(w) for w in x.weights]  # each (q, k, v) of [B, H, c_h, n_out, n_in]
        bq = [self._split(t) for t in x.biases]  # [B, H, c_h, n_out]
        out_w = [torch.zeros(B, self.H, self.ch, *w.shape[2:], device=w.device, dtype=w.dtype) for w in x.weights]
        out_b = [torch.zeros(B, self.H, self.ch, t.shape[2], device=t.device, dtype=t.dtype) for t in x.biases]
        for s in range(L + 1):  # neuron set s: W_s = weights[s-1] (rows in set s), W_{s+1} = weights[s]
            parts, sizes = [], []
            if s >= 1:  # columns of weights[s-1]: [B, H, c_h, n_s, n_{s-1}] -> tokens over n_{s-1}
                parts.append([t.permute(0, 1, 4, 2, 3) for t in Wq[s - 1]])
                sizes.append(x.weights[s - 1].shape[3])
                parts.append([t[:, :, None] for t in bq[s - 1]])  # the bias of layer s: one token
                sizes.append(1)
            if s < L:  # rows of weights[s]: [B, H, c_h, n_{s+1}, n_s] -> tokens over n_{s+1}
                parts.append([t.permute(0, 1, 3, 2, 4) for t in Wq[s]])
                sizes.append(x.weights[s].shape[2])
            q, k, v = (torch.cat([p[j] for p in parts], 2).flatten(3) for j in range(3))  # [B, H, T, c_h n_s]
            o = self._attend(q, k, v)
            o = o.view(*o.shape[:3], self.ch, -1)  # [B, H, T, c_h, n_s]
            chunks = torch.split(o, sizes, dim=2)
            c = 0
            if s >= 1:
                out_w[s - 1] = out_w[s - 1] + chunks[c].permute(0, 1, 3, 4, 2)
                out_b[s - 1] = out_b[s - 1] + chunks[c + 1][:, :, 0]
                c += 2
            if s < L:
                out_w[s] = out_w[s] + chunks[c].permute(0, 1, 3, 2, 4)
        # global term: 2L tokens (means over each tensor's entries), per head
        gq, gk, gv = (torch.stack([t[j].mean((3, 4)) for t in Wq] + [t[j].mean(3) for t in bq], 2)
                      for j in range(3))  # [B, H, 2L, c_h]
        g = self._attend(gq, gk, gv)
        for i in range(L):
            out_w[i] = out_w[i] + g[:, :, i, :, None, None]
            out_b[i] = out_b[i] + g[:, :, L + i, :, None]
        return WeightSpaceFeatures(tuple(t.flatten(1, 2) for t in out_w), tuple(t.flatten(1, 2) for t in out_b))


class NFTBlock(nn.Module):
    """Pre-LN transformer block on weight space: x + Dropout(NPAttention(LN(x))), then x + FF(LN(x)) with
    FF = Pointwise(C, f C) -> GELU -> Pointwise(f C, C) -> Dropout."""

    def __init__(self, n_layers: int, channels: int, heads: int = 4, ff_factor: int = 2, dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2 = ChannelLayerNorm(n_layers, channels), ChannelLayerNorm(n_layers, channels)
        self.attn = NPAttention(channels, heads, dropout)
        self.ff1 = Pointwise(n_layers, channels, ff_factor * channels)
        self.ff2 = Pointwise(n_layers, ff_factor * channels, channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        x = x + self.attn(self.ln1(x)).map(self.drop)
        return x + self.ff2(self.ff1(self.ln2(x)).map(F.gelu)).map(self.drop)


class NPPool(nn.Module):
    """Invariant to S_NP: the mean of every W_i and b_i -> [B, 2 L C]."""

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return torch.cat([w.mean((2, 3)) for w in x.weights] + [t.mean(2) for t in x.biases], 1)


class HNPPool(nn.Module):
    """Invariant to S_HNP: the means of every tensor, plus the per-input-neuron column means of W_1, the
    per-output-neuron row means of W_L and the whole last bias -> [B, C (2L + n_0 + 2 n_L)]."""

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return torch.cat([NPPool()(x), x.weights[0].mean(2).flatten(1), x.weights[-1].mean(3).flatten(1),
                          x.biases[-1].flatten(1)], 1)


class CrossAttentionPool(nn.Module):
    """M learned queries attend over every weight-space entry as a set of C-dim tokens -> [B, M, C] (invariant
    to any permutation of the entries, so to S_NP)."""

    def __init__(self, channels: int, n_latents: int = 16):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n_latents, channels) * 0.02)
        self.kv = nn.Linear(channels, 2 * channels)
        self.out = nn.Linear(channels, channels)

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        tokens = torch.cat([w.flatten(2) for w in x.weights] + list(x.biases), 2).transpose(1, 2)  # [B, N, C]
        k, v = self.kv(tokens).chunk(2, dim=-1)
        q = self.queries.expand(tokens.shape[0], -1, -1)
        return self.out(F.scaled_dot_product_attention(q, k, v))
