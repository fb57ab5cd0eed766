"""Pruning scores and masks for one weight matrix (Sun, Liu, Bair & Kolter, arXiv 2306.11695, Section 3).

All functions take W as (C_out, C_in) and return a bool mask of the weights to PRUNE (True = set to zero).

* Wanda score (Eq. 1):      S_ij = |W_ij| * ||X_j||_2, X_j = input feature j over all calibration tokens.
* Comparison group (Sec. 3): each output row: in every row the int(C_in * s) lowest scores are pruned,
  with a stable sort so ties break by column index, as in the reference implementation.
* Magnitude baseline:       S_ij = |W_ij| with one threshold for the whole matrix (per layer), computed as
  the reference code does: thresh = sort(S)[int(numel * s)], prune S <= thresh (one weight more than
  int(numel * s), plus ties; reported as the achieved sparsity).
* N:M (Sec. 4.2):            in every row and every block of M consecutive INPUT columns, prune the N lowest.
* Variant (Appendix):        per row, prune the lowest-score prefix whose cumulative score is <= alpha * row
  sum, alpha found by bisection so that the matrix sparsity is within 0.001 of the target.
"""
from __future__ import annotations

import torch

GROUPS = ("row", "layer")


def wanda_score(weight: torch.Tensor, act_sq_sum: torch.Tensor) -> torch.Tensor:
    """|W| * ||X_j||_2 (float32). ``act_sq_sum`` is sum over all calibration tokens of x_j^2, shape (C_in,).

    Any positive scaling of ``act_sq_sum`` (e.g. the reference code's division by the number of sequences)
    leaves every ranking, hence every mask, unchanged.
    """
    return weight.detach().abs().float() * torch.sqrt(act_sq_sum.float()).unsqueeze(0)


def magnitude_score(weight: torch.Tensor) -> torch.Tensor:
    """|W| (float32)."""
    return weight.detach().abs().float()


def parse_pattern(pattern: str, sparsity: float) -> tuple[int, int]:
    """(n, m) for "n:m", (0, 0) for "unstructured"; clear errors for bad patterns and ratio mismatches."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity} must be in [0, 1)")
    if pattern == "unstructured":
        return 0, 0
    try:
        n, m = (int(x) for x in pattern.split(":"))
    except ValueError:
        raise ValueError(f"pattern={pattern!r}: use 'unstructured' or 'N:M' such as '2:4' or '4:8'") from None
    if not 0 < n < m:
        raise ValueError(f"pattern={pattern!r}: N:M needs 0 < N < M (prune N of every M input weights)")
    if abs(sparsity - n / m) > 1e-9:
        raise ValueError(f"pattern={pattern!r} prunes exactly {n}/{m} = {n / m:g} of the weights, but "
                         f"sparsity={sparsity}: set sparsity={n / m:g}")
    return n, m


def mask_per_row(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune exactly int(C_in * s) weights in every row: the lowest scores, stable-sorted (ties by column).

    Same mask as the reference's ``torch.sort(stable=True)[:, :k]`` but about twice as fast: the k-th
    smallest value per row (kthvalue) splits each row into "below" (all pruned) and "tied" (the first ones
    by column index pruned until k, which is exactly where a stable sort puts them).
    """
    k = int(score.shape[1] * sparsity)
    if k == 0:
        return torch.zeros_like(score, dtype=torch.bool)
    kth = torch.kthvalue(score, k, dim=1, keepdim=True).values
    below = score < kth
    tied = score == kth
    need = k - below.sum(1, keepdim=True)
    return below | (tied & (torch.cumsum(tied, dim=1) <= need))


def mask_per_layer(score: torch.Tensor, sparsity: float) -> torch.Tensor:
    """One threshold for the whole matrix, as the reference magnitude baseline: prune score <= sort[int(n*s)]."""
    k = int(score.numel() * sparsity)
    if k == 0:
        return torch.zeros_like(score, dtype=torch.bool)
    thresh = torch.sort(score.flatten())[0][k]
    return score <= thresh


def mask_nm(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """In each row, prune the n lowest scores of every block of m consecutive input columns."""
    rows, cols = score.shape
    if cols % m:
        raise ValueError(f"N:M pruning needs the input dimension ({cols}) to be a multiple of M={m}")
    blocks = score.reshape(rows, cols // m, m)
    idx = torch.topk(blocks, n, dim=-1, largest=False)[1]
    mask = torch.zeros_like(blocks, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(rows, cols)


def mask_variant(score: torch.Tensor, sparsity: float, tol: float = 1e-3) -> tuple[torch.Tensor, float]:
    """The appendix variant: per row, prune the prefix (ascending scores) with cumulative score <= alpha * row
    sum; bisect alpha (start 0.4 in [0, 0.8]) until the sparsity is within ``tol``. Returns (mask, alpha)."""
    sorted_s, idx = torch.sort(score, dim=1, stable=True)
    cum = torch.cumsum(sorted_s, dim=1)
    total = score.sum(dim=1, keepdim=True)

    def build(alpha: float) -> torch.Tensor:
        return torch.zeros_like(score, dtype=torch.bool).scatter_(1, idx, cum <= alpha * total)

    lo, hi, alpha = 0.0, 0.8, 0.4
    mask = build(alpha)
    cur = mask.float().mean().item()
    while abs(cur - sparsity) > tol and hi - lo >= 1e-3:
        if cur > sparsity:
            hi, alpha = alpha, (alpha + lo) / 2
        else:
            lo, alpha = alpha, (alpha + hi) / 2
        mask = build(alpha)
        cur = mask.float().mean().item()
    return mask, alpha


def select_mask(score: torch.Tensor, sparsity: float, pattern: str = "unstructured", group: str = "row",
                variant: bool = False) -> torch.Tensor:
    """The mask of ``score`` for a sparsity pattern and comparison group (N:M groups are per row by nature)."""
    n, m = parse_pattern(pattern, sparsity)
    if n:
        return mask_nm(score, n, m)
    if sparsity == 0:
        return torch.zeros_like(score, dtype=torch.bool)
    if variant:
        return mask_variant(score, sparsity)[0]
    if group not in GROUPS:
        raise ValueError(f"group={group!r}: use one of {GROUPS}")
    return mask_per_row(score, sparsity) if group == "row" else mask_per_layer(score, sparsity)


def sparsegpt_prune(weight: torch.Tensor, hessian: torch.Tensor, sparsity: float, pattern: str = "unstructured",
                    blocksize: int = 128, percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT (Frantar & Alistarh 2023, Algorithm 1): OBS pruning with weight reconstruction.

    H = (2/N) sum x x^T over calibration tokens; dead inputs get H_jj = 1 and zero weight; dampening
    ``percdamp`` x mean(diag H); U = chol(H^-1) (upper). Columns are processed left to right in blocks of
    ``blocksize``: unstructured masks are chosen once per block by w^2 / U_jj^2 (the reference's
    ``<= sort[int(n*s)]`` threshold), N:M masks every M columns; each pruned weight's error is spread
    over the remaining columns through U. Returns (new weight float32, prune mask).
    """
    n, m = parse_pattern(pattern, sparsity)
    w = weight.detach().float().clone()
    h = hessian.float().clone()
    cols = w.shape[1]
    dead = torch.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += percdamp * torch.mean(torch.diag(h)) * torch.eye(cols, dtype=h.dtype, device=h.device)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    mask = torch.zeros_like(w, dtype=torch.bool)
    for i1 in range(0, cols, blocksize):  # the algorithm is sequential over column blocks
        i2 = min(i1 + blocksize, cols)
        w1, h1 = w[:, i1:i2].clone(), hinv[i1:i2, i1:i2]
        q1, err1 = torch.zeros_like(w1), torch.zeros_like(w1)
        d = torch.diag(h1)
        if n == 0:
            m1 = mask_per_layer(w1**2 / d.unsqueeze(0) ** 2, sparsity) if sparsity > 0 else torch.zeros_like(
                w1, dtype=torch.bool)
        else:
            m1 = torch.zeros_like(w1, dtype=torch.bool)
        for i in range(i2 - i1):  # and over the columns of a block (each update depends on the last)
            col = w1[:, i]
            if n and i % m == 0:
                tmp = w1[:, i:i + m] ** 2 / d[i:i + m].unsqueeze(0) ** 2
                m1.scatter_(1, i + torch.topk(tmp, n, dim=1, largest=False)[1], True)
            q = torch.where(m1[:, i], torch.zeros_like(col), col)
            q1[:, i] = q
            e = (col - q) / h1[i, i]
            w1[:, i:] -= e.unsqueeze(1) * h1[i, i:].unsqueeze(0)
            err1[:, i] = e
        w[:, i1:i2] = q1
        mask[:, i1:i2] = m1
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return w, mask
