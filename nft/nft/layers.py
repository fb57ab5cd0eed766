"""Permutation-equivariant layers on MLP and CNN weight spaces (``WeightSpaceFeatures``, channels first), all
batched: the only Python loops run over layers, never over neurons or networks. Layers built with ``filters`` (the
input's ``filter_shapes``) take CNN weight spaces, folding each conv layer's filter positions into its channels;
without it they take MLPs, and the other kind is a named error.

- ``NPLinear``: the NF-Layer of Zhou et al. (NFN) equivariant to neuron permutations S_NP: a per-entry channel mix
  plus row, column and global terms built from means of the neighbouring tensors. ``HNPLinear``: the NF-Layer
  equivariant to hidden-neuron permutations only (inputs and outputs keep their identity).
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

from nft.weight_space import WeightSpaceFeatures, check_filters, filter_size, fold, unfold


def _mix(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Channel mix of a channels-first tensor [B, C, ...] by ``weight`` [O, C]."""
    return torch.einsum("bc...,oc->bo...", x, weight)


def _filters(n_layers: int, filters) -> tuple:
    """Per-layer filter shapes: None = an MLP (every layer fully connected)."""
    if filters is None:
        return ((),) * n_layers
    fs = tuple(tuple(f) for f in filters)
    if len(fs) != n_layers:
        raise ValueError(f"filters has {len(fs)} entries for {n_layers} layers")
    return fs


def _uniform(shape, fan: int) -> nn.Parameter:
    s = 1 / math.sqrt(fan)
    return nn.Parameter(torch.empty(*shape).uniform_(-s, s))


def _last(t: torch.Tensor, lin) -> torch.Tensor:
    """Apply ``lin`` (a map on the last axis) to the channel axis 1 of ``t``."""
    return lin(t.movedim(1, -1)).movedim(-1, 1)


class NPLinear(nn.Module):
    """S_NP-equivariant linear map between weight-space features of a network with ``n_layers`` layers (MLP, or a
    CNN given ``filters``: a conv layer's filter positions are folded into its channels).

    For W_i (entries j of set i+1, k of set i): A_i W_i[j, k] + R_i(mean_k W_i[j, :], b_i[j], mean_r W_{i+1}[r, j])
    + C_i(mean_j W_i[:, k], mean_r W_{i-1}[k, r], b_{i-1}[k]) + G_i(means of every tensor) (absent neighbours
    dropped). For b_i[j]: B_i b_i[j] + R'_i(mean_k W_i[j, :], mean_r W_{i+1}[r, j]) + G'_i(means). Each term is a
    channel mix; init uniform +-1/sqrt(total fan-in of the output's terms)."""

    def __init__(self, n_layers: int, c_in: int, c_out: int, filters=None):
        super().__init__()
        self.L, self.ci, self.co = n_layers, c_in, c_out
        self.filters = _filters(n_layers, filters)
        k = [filter_size(f) for f in self.filters]
        L = n_layers
        g = sum(c_in * k[i] + c_in for i in range(L))
        self.w_self, self.w_row, self.w_col, self.w_glob = (nn.ParameterList() for _ in range(4))
        self.b_self, self.b_row, self.b_glob = (nn.ParameterList() for _ in range(3))
        self.w_bias, self.b_bias = nn.ParameterList(), nn.ParameterList()
        for i in range(L):
            row_in = c_in * k[i] + c_in + (c_in * k[i + 1] if i + 1 < L else 0)
            col_in = c_in * k[i] + (c_in * k[i - 1] + c_in if i > 0 else 0)
            fan_w = c_in * k[i] + row_in + col_in + g
            ow = c_out * k[i]
            self.w_self.append(_uniform((ow, c_in * k[i]), fan_w))
            self.w_row.append(_uniform((ow, row_in), fan_w))
            self.w_col.append(_uniform((ow, col_in), fan_w))
            self.w_glob.append(_uniform((ow, g), fan_w))
            self.w_bias.append(_uniform((ow,), fan_w))
            brow_in = c_in * k[i] + (c_in * k[i + 1] if i + 1 < L else 0)
            fan_b = c_in + brow_in + g
            self.b_self.append(_uniform((c_out, c_in), fan_b))
            self.b_row.append(_uniform((c_out, brow_in), fan_b))
            self.b_glob.append(_uniform((c_out, g), fan_b))
            self.b_bias.append(_uniform((c_out,), fan_b))

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.n_layers != self.L or x.channels != self.ci:
            raise ValueError(f"NPLinear built for {self.L} layers x {self.ci} channels, got {x.n_layers} x "
                             f"{x.channels}")
        check_filters(x, self.filters, "NPLinear")
        W, b = [fold(w) for w in x.weights], x.biases
        rowm = [w.mean(3) for w in W]  # [B, C k_i, n_{i+1}]: per output neuron of layer i
        colm = [w.mean(2) for w in W]  # [B, C k_i, n_i]: per input neuron of layer i
        glob = torch.cat([w.mean((2, 3)) for w in W] + [t.mean(2) for t in b], dim=1)  # [B, sum C k_i + L C]
        ws, bs = [], []
        for i in range(self.L):
            rows = [rowm[i], b[i]] + ([colm[i + 1]] if i + 1 < self.L else [])
            cols = [colm[i]] + ([rowm[i - 1], b[i - 1]] if i > 0 else [])
            g_w = glob @ self.w_glob[i].T + self.w_bias[i]  # [B, O k_i]
            out = (_mix(W[i], self.w_self[i]) + _mix(torch.cat(rows, 1), self.w_row[i])[..., :, None]
                   + _mix(torch.cat(cols, 1), self.w_col[i])[..., None, :] + g_w[:, :, None, None])
            ws.append(unfold(out, self.filters[i]))
            brow = [rowm[i]] + ([colm[i + 1]] if i + 1 < self.L else [])
            g_b = glob @ self.b_glob[i].T + self.b_bias[i]
            bs.append(_mix(b[i], self.b_self[i]) + _mix(torch.cat(brow, 1), self.b_row[i]) + g_b[:, :, None])
        return WeightSpaceFeatures(tuple(ws), tuple(bs))


class HNPLinear(nn.Module):
    """S_HNP-equivariant linear map (hidden-neuron permutations only; inputs and outputs keep their identity, so no
    position encoding is needed). The input index of W_1 and the output index of W_L and b_L are not permuted, so
    they are folded into channels: W_1's rows and W_L's columns become vectors on hidden sets 1 and L-1, b_L a
    global vector. The hidden sets then carry vectors (those and the hidden biases) and the matrices W_2..W_{L-1}
    between them, and the map is every equivariant linear term by parameter sharing:
    - matrix W_i: self + row term (its row mean, the vectors on its row set, the next matrix's column mean) + column
      term (its column mean, the vectors on its column set, the previous matrix's row mean) + global;
    - vectors on set s: self (all vectors on s mixed) + the row/column means of the matrices touching s + global;
    - b_L: global. Global = the means of every matrix and vector set, and b_L whole.
    With one layer there is no hidden set and the map is a dense linear map. Init uniform +-1/sqrt(fan-in)."""

    def __init__(self, widths, c_in: int, c_out: int, filters=None):
        super().__init__()
        self.widths = tuple(widths)
        L = self.L = len(widths) - 1
        self.ci, self.co = c_in, c_out
        self.filters = _filters(L, filters)
        k = self.k = [filter_size(f) for f in self.filters]
        n0, nL = widths[0], widths[-1]
        if L == 1:
            d_in = c_in * k[0] * nL * n0 + c_in * nL
            self.dense = nn.Linear(d_in, c_out * k[0] * nL * n0 + c_out * nL)
            return
        # vector features on hidden set s = 1..L-1: [b_{s}] (+ W_1's rows if s == 1) (+ W_L's columns if s == L-1)
        def vdim(s, c):
            return c + (c * k[0] * n0 if s == 1 else 0) + (c * k[L - 1] * nL if s == L - 1 else 0)

        self.vin = {s: vdim(s, c_in) for s in range(1, L)}
        self.vout = {s: vdim(s, c_out) for s in range(1, L)}
        mids = range(1, L - 1)  # 0-based layers whose both index sets are hidden
        g = sum(c_in * k[i] for i in mids) + sum(self.vin.values()) + c_in * nL
        self.m_self, self.m_row, self.m_col, self.m_glob, self.m_bias = (nn.ParameterList() for _ in range(5))
        for i in mids:  # weights[i]: rows on set i+1, columns on set i
            ci = c_in * k[i]
            row_in = ci + self.vin[i + 1] + (c_in * k[i + 1] if i + 1 in mids else 0)
            col_in = ci + self.vin[i] + (c_in * k[i - 1] if i - 1 in mids else 0)
            fan = ci + row_in + col_in + g
            o = c_out * k[i]
            for lst, shape in ((self.m_self, (o, ci)), (self.m_row, (o, row_in)), (self.m_col, (o, col_in)),
                               (self.m_glob, (o, g)), (self.m_bias, (o,))):
                lst.append(_uniform(shape, fan))
        self.v_self, self.v_glob, self.v_bias = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        for s in range(1, L):
            d = self.vin[s] + (c_in * k[s] if s in mids else 0) + (c_in * k[s - 1] if s - 1 in mids else 0)
            fan = d + g
            self.v_self.append(_uniform((self.vout[s], d), fan))
            self.v_glob.append(_uniform((self.vout[s], g), fan))
            self.v_bias.append(_uniform((self.vout[s],), fan))
        self.g_out = nn.Linear(g, c_out * nL)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.n_layers != self.L or x.channels != self.ci or x.widths[0] != self.widths[0] or \
                x.widths[-1] != self.widths[-1]:
            raise ValueError(f"HNPLinear built for widths {self.widths} x {self.ci} channels, got {x.widths} x "
                             f"{x.channels}")
        check_filters(x, self.filters, "HNPLinear")
        L, B, co, k = self.L, x.batch, self.co, self.k
        W, b = [fold(w) for w in x.weights], list(x.biases)
        n = x.widths
        if L == 1:
            out = self.dense(torch.cat([W[0].flatten(1), b[0].flatten(1)], 1))
            w0, b0 = out.split([co * k[0] * n[1] * n[0], co * n[1]], 1)
            return WeightSpaceFeatures((unfold(w0.view(B, co * k[0], n[1], n[0]), self.filters[0]),),
                                       (b0.view(B, co, n[1]),))
        mids = range(1, L - 1)
        V = {}
        for s in range(1, L):
            parts = [b[s - 1]]
            if s == 1:  # W_1's rows: [B, C k, n_1, n_0] -> [B, C k n_0, n_1]
                parts.append(W[0].transpose(2, 3).reshape(B, -1, n[1]))
            if s == L - 1:  # W_L's columns: [B, C k, n_L, n_{L-1}] -> [B, C k n_L, n_{L-1}]
                parts.append(W[L - 1].reshape(B, -1, n[L - 1]))
            V[s] = torch.cat(parts, 1)
        rowm = {i: W[i].mean(3) for i in mids}  # on set i+1
        colm = {i: W[i].mean(2) for i in mids}  # on set i
        glob = torch.cat([W[i].mean((2, 3)) for i in mids] + [V[s].mean(2) for s in range(1, L)]
                         + [b[L - 1].flatten(1)], 1)
        ws, bs = [None] * L, [None] * L
        for j, i in enumerate(mids):
            rows = [rowm[i], V[i + 1]] + ([colm[i + 1]] if i + 1 in mids else [])
            cols = [colm[i], V[i]] + ([rowm[i - 1]] if i - 1 in mids else [])
            g = glob @ self.m_glob[j].T + self.m_bias[j]
            out = (_mix(W[i], self.m_self[j]) + _mix(torch.cat(rows, 1), self.m_row[j])[..., :, None]
                   + _mix(torch.cat(cols, 1), self.m_col[j])[..., None, :] + g[:, :, None, None])
            ws[i] = unfold(out, self.filters[i])
        for j, s in enumerate(range(1, L)):
            inp = [V[s]] + ([colm[s]] if s in mids else []) + ([rowm[s - 1]] if s - 1 in mids else [])
            v = _mix(torch.cat(inp, 1), self.v_self[j]) + (glob @ self.v_glob[j].T + self.v_bias[j])[:, :, None]
            sizes = [co] + ([co * k[0] * n[0]] if s == 1 else []) + ([co * k[L - 1] * n[L]] if s == L - 1 else [])
            chunks = list(v.split(sizes, 1))
            bs[s - 1] = chunks.pop(0)
            if s == 1:
                ws[0] = unfold(chunks.pop(0).view(B, co * k[0], n[0], n[1]).transpose(2, 3), self.filters[0])
            if s == L - 1:
                ws[L - 1] = unfold(chunks.pop(0).view(B, co * k[L - 1], n[L], n[L - 1]), self.filters[L - 1])
        bs[L - 1] = self.g_out(glob).view(B, co, n[L])
        return WeightSpaceFeatures(tuple(ws), tuple(bs))


class Pointwise(nn.Module):
    """Per-tensor channel mixing (its own map and bias for every W_i and b_i; a conv layer's filter positions are
    folded into its channels, so its map is (C_in h w) -> (C_out h w))."""

    def __init__(self, n_layers: int, c_in: int, c_out: int, filters=None):
        super().__init__()
        self.filters = _filters(n_layers, filters)
        k = [filter_size(f) for f in self.filters]
        self.w = nn.ModuleList([nn.Linear(c_in * k[i], c_out * k[i]) for i in range(n_layers)])
        self.b = nn.ModuleList([nn.Linear(c_in, c_out) for _ in range(n_layers)])

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        check_filters(x, self.filters, "Pointwise")
        return WeightSpaceFeatures(
            tuple(unfold(_last(fold(w), self.w[i]), self.filters[i]) for i, w in enumerate(x.weights)),
            tuple(_last(t, self.b[i]) for i, t in enumerate(x.biases)))


class ChannelLayerNorm(nn.Module):
    """Each entry normalised over its channels (a conv entry: channels x filter positions): (x - mean) / (std +
    eps), then a per-tensor affine."""

    def __init__(self, n_layers: int, channels: int, eps: float = 1e-5, filters=None):
        super().__init__()
        self.eps = eps
        self.filters = _filters(n_layers, filters)
        k = [filter_size(f) for f in self.filters]
        self.gw = nn.ParameterList([nn.Parameter(torch.ones(channels * k[i])) for i in range(n_layers)])
        self.bw = nn.ParameterList([nn.Parameter(torch.zeros(channels * k[i])) for i in range(n_layers)])
        self.gb = nn.Parameter(torch.ones(n_layers, channels))
        self.bb = nn.Parameter(torch.zeros(n_layers, channels))

    def _norm(self, t, g, b):
        c = t - t.mean(1, keepdim=True)  # two passes: faster than var_mean over a strided axis on CPU
        shape = (1, -1) + (1,) * (t.dim() - 2)
        return c / (c.square().mean(1, keepdim=True).sqrt() + self.eps) * g.view(shape) + b.view(shape)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        check_filters(x, self.filters, "ChannelLayerNorm")
        return WeightSpaceFeatures(
            tuple(unfold(self._norm(fold(w), self.gw[i], self.bw[i]), self.filters[i])
                  for i, w in enumerate(x.weights)),
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


def _along(vec: torch.Tensor, t: torch.Tensor, dim: int) -> torch.Tensor:
    """Broadcast ``vec`` [C, n] over ``t``'s channel axis 1 and axis ``dim`` (the other axes are 1)."""
    shape = [1] * t.dim()
    shape[1], shape[dim] = vec.shape
    return vec.view(shape)


class LearnedPosEmbedding(nn.Module):
    """Adds a learned C-vector per tensor (all its entries), per input neuron (columns of W_1) and per output neuron
    (rows of W_L and entries of b_L): the input and output neurons get identities (S_NP -> S_HNP). Conv filters
    get the same vector at every filter position."""

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
        ws = [w + _along(self.layer_w[i][:, None], w, 2) for i, w in enumerate(x.weights)]
        bs = [t + self.layer_b[i].view(1, -1, 1) for i, t in enumerate(x.biases)]
        ws[0] = ws[0] + _along(self.inp, ws[0], 3)
        ws[-1] = ws[-1] + _along(self.out_w, ws[-1], 2)
        bs[-1] = bs[-1] + self.out_b[None]
        return WeightSpaceFeatures(tuple(ws), tuple(bs))


class NPAttention(nn.Module):
    """Weight-space self-attention of the NFT paper.

    q, k, v = a per-entry Linear(C, 3C) shared by every tensor; H heads of c_h = C / H channels. For a CNN
    (``filters`` with a conv layer) every tensor gets its own projection that absorbs the filter positions
    ((C h w) -> 3C, the paper's unshared projections) and its own output map C -> (C h w).
    1. Cross term, one attention per neuron set l = 0..L: its tokens are the columns of W_l (one per neuron of set
       l-1), b_l (one token) and the rows of W_{l+1} (one per neuron of set l+1), whichever exist; each token is a
       c_h x n_l matrix indexed by the neurons of set l. Scores are Frobenius inner products scaled by
       1/sqrt(c_h n_l), softmax over tokens; each output token goes back to its column / bias / row, so every W
       entry sums two contributions (as a column of set l, as a row of set l-1) and every bias entry one.
    2. Global term: per head, the means of q, k, v over each W_i and each b_i (2L tokens) attend among themselves;
       the result is added to every entry of that tensor.
    Dropout acts on the attention weights. Equivariant to S_NP (not invariant to uncoupled permutations)."""

    def __init__(self, channels: int, heads: int = 4, dropout: float = 0.0, filters=None):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels={channels} must be divisible by heads={heads}")
        self.C, self.H, self.ch = channels, heads, channels // heads
        self.dropout = dropout
        self.filters = None if filters is None else _filters(len(filters), filters)
        if self.filters is None or not any(self.filters):
            self.qkv = nn.Linear(channels, 3 * channels)
        else:
            k = [filter_size(f) for f in self.filters]
            self.qkv_w = nn.ModuleList([nn.Linear(channels * ki, 3 * channels) for ki in k])
            self.qkv_b = nn.ModuleList([nn.Linear(channels, 3 * channels) for _ in k])
            self.out_w = nn.ModuleList([nn.Linear(channels, channels * ki) if ki > 1 else nn.Identity() for ki in k])

    def _split(self, t, lin):  # [B, C', ...] -> q, k, v each [B, H, c_h, ...]
        z = _last(t, lin)
        B = z.shape[0]
        z = z.reshape(B, self.H, 3, self.ch, *z.shape[2:])
        return z.unbind(2)  # one backward op (a stack), where three selects would zero-fill three full copies

    def _attend(self, q, k, v):  # [B, H, T, D] -> [B, H, T, D], scores / sqrt(D)
        p = self.dropout if self.training else 0.0
        if q.is_cuda:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        # on the CPU, for these few-token shapes, plain matmuls are 1.6x faster than the fused kernel
        a = ((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5).softmax(-1)
        return F.dropout(a, p) @ v

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        if x.channels != self.C:
            raise ValueError(f"NPAttention built for {self.C} channels, got {x.channels}")
        shared = hasattr(self, "qkv")
        if self.filters is not None:
            check_filters(x, self.filters, "NPAttention")
        elif any(x.filter_shapes):
            raise ValueError("NPAttention(filters=None) takes MLP weight spaces: build it with "
                             f"filters={x.filter_shapes} for this CNN")
        L = x.n_layers
        Wq = [self._split(fold(w), self.qkv if shared else self.qkv_w[i]) for i, w in enumerate(x.weights)]
        bq = [self._split(t, self.qkv if shared else self.qkv_b[i]) for i, t in enumerate(x.biases)]
        dims = [(w.shape[2], w.shape[3]) for w in x.weights]
        out_w, out_b = [0] * L, [0] * L  # contributions are summed into these
        for s in range(L + 1):  # neuron set s: W_s = weights[s-1] (rows in set s), W_{s+1} = weights[s]
            parts, sizes = [], []
            if s >= 1:  # columns of weights[s-1]: [B, H, c_h, n_s, n_{s-1}] -> tokens over n_{s-1}
                parts.append([t.permute(0, 1, 4, 2, 3) for t in Wq[s - 1]])
                sizes.append(dims[s - 1][1])
                parts.append([t[:, :, None] for t in bq[s - 1]])  # the bias of layer s: one token
                sizes.append(1)
            if s < L:  # rows of weights[s]: [B, H, c_h, n_{s+1}, n_s] -> tokens over n_{s+1}
                parts.append([t.permute(0, 1, 3, 2, 4) for t in Wq[s]])
                sizes.append(dims[s][0])
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
        ws = [t.flatten(1, 2) for t in out_w]
        if not shared:
            ws = [unfold(_last(w, self.out_w[i]), self.filters[i]) for i, w in enumerate(ws)]
        return WeightSpaceFeatures(tuple(ws), tuple(t.flatten(1, 2) for t in out_b))


class NFTBlock(nn.Module):
    """Pre-LN transformer block on weight space: x + Dropout(NPAttention(LN(x))), then x + FF(LN(x)) with
    FF = Pointwise(C, f C) -> GELU -> Pointwise(f C, C) -> Dropout."""

    def __init__(self, n_layers: int, channels: int, heads: int = 4, ff_factor: int = 2, dropout: float = 0.0,
                 filters=None):
        super().__init__()
        fs = _filters(n_layers, filters)
        self.ln1 = ChannelLayerNorm(n_layers, channels, filters=fs)
        self.ln2 = ChannelLayerNorm(n_layers, channels, filters=fs)
        self.attn = NPAttention(channels, heads, dropout, filters=fs)
        self.ff1 = Pointwise(n_layers, channels, ff_factor * channels, fs)
        self.ff2 = Pointwise(n_layers, ff_factor * channels, channels, fs)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
        x = x + self.attn(self.ln1(x)).map(self.drop)
        return x + self.ff2(self.ff1(self.ln2(x)).map(F.gelu)).map(self.drop)


class NPPool(nn.Module):
    """Invariant to S_NP: the mean of every W_i (per channel and filter position) and b_i -> [B, sum C k_i + L C]."""

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return torch.cat([fold(w).mean((2, 3)) for w in x.weights] + [t.mean(2) for t in x.biases], 1)


class HNPPool(nn.Module):
    """Invariant to S_HNP: the means of every tensor, plus the per-input-neuron column means of W_1, the
    per-output-neuron row means of W_L and the whole last bias."""

    def forward(self, x: WeightSpaceFeatures) -> torch.Tensor:
        return torch.cat([NPPool()(x), fold(x.weights[0]).mean(2).flatten(1), fold(x.weights[-1]).mean(3).flatten(1),
                          x.biases[-1].flatten(1)], 1)

    @staticmethod
    def out_size(widths, channels: int, filters=None) -> int:
        L = len(widths) - 1
        k = [filter_size(f) for f in _filters(L, filters)]
        return channels * (sum(k) + L + k[0] * widths[0] + k[-1] * widths[-1] + widths[-1])


class CrossAttentionPool(nn.Module):
    """M learned queries attend over every weight-space entry as a set of C-dim tokens -> [B, M, C] (invariant
    to any permutation of the entries, so to S_NP; a conv entry gives one token per filter position)."""

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
