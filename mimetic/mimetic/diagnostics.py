"""What the paper's Fig. 1 shows, for any supported attention layer: W_q^h W_k^h^T per head and W_v W_proj per
layer, in paper orientation, with their diagonal mean and off-diagonal std; and the mean attention distance of
the initial attention maps over a grid of position embeddings."""
from __future__ import annotations

import torch
from torch import nn

from mimetic.init import _view


@torch.no_grad()
def products(m: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(``[heads, d, d]`` W_q^h W_k^h^T, ``[d, d]`` W_v W_proj) of one attention module, paper orientation
    (x W acting on token rows), float64. With grouped KV heads a query head uses its group's key/value head."""
    v = _view(m)
    if v is None:
        raise TypeError(f"{type(m).__name__} is not a supported attention module")
    d, hd, h, kv = v.d, v.head_dim, v.heads, v.kv_heads
    if v.kind in ("timm", "mha"):
        w = (m.qkv.weight if v.kind == "timm" else m.in_proj_weight).double()
        q_t, k_t, v_t = w[:h * hd], w[h * hd:h * hd + kv * hd], w[h * hd + kv * hd:]
        o = (m.proj.weight if v.kind == "timm" else m.out_proj.weight).double().T
    elif v.kind == "gpt2":
        w = m.c_attn.weight.double().T
        q_t, k_t, v_t = w[:d], w[d:2 * d], w[2 * d:]
        o = m.c_proj.weight.double()
    else:
        q_t, k_t, v_t = (p.weight.double() for p in (m.q_proj, m.k_proj, m.v_proj))
        o = m.o_proj.weight.double().T
    g = h // kv
    wq = q_t.view(h, hd, d).transpose(1, 2)  # [h, d, hd]
    wk = k_t.view(kv, hd, d).transpose(1, 2).repeat_interleave(g, 0)
    wv = v_t.view(kv, hd, d).transpose(1, 2).repeat_interleave(g, 0)  # [h, d, hd]
    qk = wq @ wk.transpose(1, 2)
    vo = (wv @ o.view(h, hd, d)).sum(0)
    return qk, vo


def _stats(mats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    d = mats.shape[-1]
    diag = torch.diagonal(mats, dim1=-2, dim2=-1)
    off = mats.masked_select(~torch.eye(d, dtype=torch.bool).expand_as(mats)).view(*mats.shape[:-2], -1)
    return diag.mean(-1), off.std(-1)


@torch.no_grad()
def attention_diagnostics(module: nn.Module) -> list[dict]:
    """Per supported attention layer (module order): name, per-head diagonal mean / off-diagonal std of
    W_q^h W_k^h^T, and the same two numbers for W_v W_proj."""
    out = []
    for name, m in module.named_modules():
        if _view(m) is None:
            continue
        qk, vo = products(m)
        qd, qs = _stats(qk)
        vd, vs = _stats(vo)
        out.append({"layer": name, "qk_diag_mean": qd.tolist(), "qk_offdiag_std": qs.tolist(),
                    "vo_diag_mean": float(vd), "vo_offdiag_std": float(vs)})
    return out


def sincos_2d(grid: int, d: int) -> torch.Tensor:
    """2-D sine-cosine position embeddings ``[grid*grid, d]`` (the ViT / MAE construction; d divisible by 4)."""
    if d % 4:
        raise ValueError(f"sin-cos 2-D embeddings need d divisible by 4, got {d}")
    omega = 1.0 / 10000 ** (torch.arange(d // 4, dtype=torch.float64) / (d // 4))
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")
    parts = [f(c.reshape(-1, 1) * omega) for c in (xs, ys) for f in (torch.sin, torch.cos)]
    return torch.cat(parts, 1)


@torch.no_grad()
def attention_maps(m: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """``[heads, n, n]`` softmax(x W_q^h W_k^h^T x^T / sqrt(k)) for token rows ``tokens`` (no bias: mimetic zeroes
    them, and the default init's are zero too)."""
    qk, _ = products(m)
    hd = _view(m).head_dim
    x = tokens.double()
    return torch.softmax(x @ qk @ x.T / hd ** 0.5, -1)


def mean_attention_distance(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """Per head, the attention-weighted distance (in patches) between query and key positions on a grid."""
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                            indexing="ij")
    pos = torch.stack([ys.reshape(-1), xs.reshape(-1)], 1)
    dist = torch.cdist(pos, pos)
    return (maps * dist).sum(-1).mean(-1)
