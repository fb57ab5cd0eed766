"""2:4 semi-structured export: the only pattern here that current GPUs can turn into a speedup.

Unstructured sparsity (any ratio) and 4:8 give no speedup with dense kernels and no smaller files with
save_pretrained: the zeros are stored and multiplied like any other number. 2:4 sparsity maps onto
NVIDIA's sparse tensor cores (Ampere and later) through ``torch.sparse.to_sparse_semi_structured``.
"""
from __future__ import annotations

import time

import torch
from torch import nn

from wanda.prune import find_blocks, find_linears


def is_24(weight: torch.Tensor) -> bool:
    """True when every aligned group of 4 input weights of every row holds at least 2 zeros."""
    rows, cols = weight.shape
    return cols % 4 == 0 and bool(((weight.reshape(rows, cols // 4, 4) == 0).sum(-1) >= 2).all())


def to_semi_structured(model: nn.Module) -> int:
    """Swap the weights of every 2:4-sparse linear of the decoder blocks for semi-structured sparse tensors
    (CUDA, fp16/bf16). Returns how many linears were converted."""
    from torch.sparse import to_sparse_semi_structured

    n = 0
    for block in find_blocks(model)[1]:
        for lin in find_linears(block).values():
            if lin.weight.is_cuda and is_24(lin.weight):
                lin.weight = nn.Parameter(to_sparse_semi_structured(lin.weight.detach()), requires_grad=False)
                n += 1
    return n


@torch.no_grad()
def linear_speedup(weight: torch.Tensor, tokens: int = 4096, repeats: int = 50) -> dict:
    """Time x @ W^T for a 2:4-sparse CUDA weight, dense kernel vs semi-structured kernel; returns both in ms
    and their ratio, and the largest output difference."""
    from torch.sparse import to_sparse_semi_structured

    if not weight.is_cuda:
        raise ValueError("semi-structured kernels need a CUDA weight (fp16 or bf16)")
    x = torch.randn(tokens, weight.shape[1], device=weight.device, dtype=weight.dtype)
    sparse = to_sparse_semi_structured(weight)

    def bench(w):
        for _ in range(5):
            nn.functional.linear(x, w)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(repeats):
            nn.functional.linear(x, w)
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / repeats * 1e3

    dense_ms, sparse_ms = bench(weight), bench(sparse)
    err = (nn.functional.linear(x, weight) - nn.functional.linear(x, sparse)).abs().max().item()
    return {"dense_ms": dense_ms, "sparse_ms": sparse_ms, "speedup": dense_ms / sparse_ms, "max_abs_diff": err}
