"""The Sinkhorn-Flow layer: entropic optimal transport in place of a softmax.

Bhutani & Kolter (arXiv 2303.07675), section "Sinkhorn-Flow" [reconstructed, see README]: a network scores
every pair (community i at t, community j at t+1) with S_ij, and the predicted flow is the entropic
transport plan with the observed (or predicted) marginals,

    P = diag(u) exp(S / eps) diag(v),   P 1 = a,   P^T 1 = b,

i.e. the solution of min_P <-S, P> - eps H(P) over couplings of (a, b) (POT: ``ot.sinkhorn(a, b, M=-S,
reg=eps)``). Computed in the log domain (Cuturi 2013; Peyre & Cuturi 2019, Remark 4.23):

    log v = 0;  repeat n:  log u = log a - LSE_j(S/eps + log v),  log v = log b - LSE_i(S/eps + log u)
    then one last row half-step  log u = log a - LSE_j(S/eps + log v);   log P = log u + S/eps + log v

The last half-step is on the rows, so ``P 1 = a`` holds exactly after any number of iterations and the
column marginal is the one to monitor (``marginal_errors``). With ``n_iters = 0`` only that row half-step
runs and the layer is exactly the softmax-rows baseline ``P_ij = a_i softmax_j(S_ij / eps)``: one function,
one network, and the comparison differs only in the column normalisation.
"""
from __future__ import annotations

import torch

# Finite stand-in for log 0. Using -inf would make LSE over an empty row return -inf and then
# (-inf) - (-inf) = NaN, and torch.where does not stop NaN gradients of the unused branch; a large finite
# value gives exact zeros after exp() (exp(-1e9) == 0 in float32 and float64) and finite gradients.
NEG = -1e9
BACKWARDS = ("unrolled", "implicit")


def _validate(scores: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None, n_iters: int,
              mask: torch.Tensor | None) -> None:
    if scores.dim() < 2:
        raise ValueError(f"scores must be (..., K, L); got shape {tuple(scores.shape)}")
    if a.shape != scores.shape[:-1]:
        raise ValueError(f"row marginal a has shape {tuple(a.shape)} but scores {tuple(scores.shape)} need "
                         f"{tuple(scores.shape[:-1])} (one mass per row community)")
    if b is None:
        if n_iters > 0:
            raise ValueError("column marginal b is required when n_iters > 0 (n_iters=0 is softmax rows)")
    elif b.shape != scores.shape[:-2] + scores.shape[-1:]:
        raise ValueError(f"column marginal b has shape {tuple(b.shape)} but scores {tuple(scores.shape)} need "
                         f"{tuple(scores.shape[:-2] + scores.shape[-1:])} (one mass per column community)")
    if mask is not None and mask.shape != scores.shape:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, scores {tuple(scores.shape)}: they must match")
    if torch.isnan(scores).any() or torch.isposinf(scores).any():
        raise ValueError("scores contain NaN or +inf (use -inf or mask=False to forbid a pair)")
    for name, m in (("a", a), ("b", b)):
        if m is None:
            continue
        if torch.isnan(m).any() or torch.isinf(m).any():
            raise ValueError(f"marginal {name} contains NaN or inf")
        if (m < 0).any():
            raise ValueError(f"marginal {name} has negative entries (min {m.min().item():.3g}); masses must be >= 0")
    if b is not None and n_iters > 0:
        ma, mb = a.sum(-1), b.sum(-1)
        if not torch.allclose(ma, mb, rtol=1e-5, atol=1e-8):
            i = (ma - mb).abs().argmax()
            raise ValueError(f"marginals carry different total mass (sum a = {ma.flatten()[i].item():.6g}, "
                             f"sum b = {mb.flatten()[i].item():.6g}); normalise both, e.g. a / a.sum(-1)")


def _log_masses(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log m with NEG for empty communities, without NaN gradients at m = 0 (double-where trick)."""
    pos = m > 0
    return torch.where(pos, torch.log(torch.where(pos, m, torch.ones_like(m))), torch.full_like(m, NEG)), pos


def _row_step(s, log_b_or_v_cols, log_a):
    return log_a - torch.logsumexp(s + log_b_or_v_cols.unsqueeze(-2), dim=-1)


def _col_step(s, log_u, log_b):
    return log_b - torch.logsumexp(s + log_u.unsqueeze(-1), dim=-2)


def _iterate(s, log_a, log_b, n_iters):
    """n full (row, column) iterations and the final row half-step; returns (log u, log v)."""
    log_v = torch.zeros_like(s[..., 0, :])
    for _ in range(n_iters):
        log_u = _row_step(s, log_v, log_a)
        log_v = _col_step(s, log_u, log_b)
    return _row_step(s, log_v, log_a), log_v


class _ImplicitSinkhorn(torch.autograd.Function):
    """Sinkhorn with the backward pass from the implicit function theorem at the fixed point.

    Memory is O(K L) whatever n_iters is (the forward loop keeps no graph). At the fixed point
    P_ij = exp(f_i + s_ij + g_j) with P 1 = a, P^T 1 = b. Differentiating the two constraints gives the
    KKT system H [df; dg] = [a da - (P * ds) 1; b db - (P * ds)^T 1] with H = [[diag(P1), P], [P^T, diag(P^T 1)]].
    For a loss with dL/dP = G and Q = G * P, the adjoint H [x; y] = [Q 1; Q^T 1] yields
        dL/ds = Q - P * (x_i + y_j),   dL/dlog a = a * x,   dL/dlog b = b * y.
    H has the null vector n = (1, -1) (the gauge f + c, g - c); we solve (H + n n^T) z = rhs, which is exact
    because rhs is orthogonal to n. The remaining gauge of (x, y) only moves mass between dlog a and dlog b;
    we fix it as the unrolled iteration's limit does: that limit ignores a common shift of log b
    (it rescales b to the mass of a), so sum_j b_j y_j = 0.

    Limitation: if a mask splits the coupling into independent blocks, H has one null vector per block and
    the gradients wrt log a / log b are then fixed only up to a shift within each block (the gradient wrt
    the scores stays exact). Use backward="unrolled" when log-marginal gradients under such masks matter.
    """

    @staticmethod
    def forward(ctx, s, log_a, log_b, n_iters):
        with torch.no_grad():
            log_u, log_v = _iterate(s, log_a, log_b, n_iters)
            log_p = log_u.unsqueeze(-1) + s + log_v.unsqueeze(-2)
        ctx.save_for_backward(log_p, log_a, log_b)
        return log_p

    @staticmethod
    def backward(ctx, grad_log_p):
        log_p, log_a, log_b = ctx.saved_tensors
        p = log_p.exp()
        q = grad_log_p  # dL/dlog P = G * P already: autograd hands us the gradient wrt log P
        k, l = p.shape[-2], p.shape[-1]
        rows_ok = (log_a > NEG / 2).to(p.dtype)
        cols_ok = (log_b > NEG / 2).to(p.dtype)
        r, c = p.sum(-1), p.sum(-2)
        h = torch.zeros(p.shape[:-2] + (k + l, k + l), dtype=p.dtype, device=p.device)
        # Empty communities have no equation: put 1 on their diagonal so their multiplier is 0.
        h[..., :k, :k] = torch.diag_embed(r + (1 - rows_ok))
        h[..., k:, k:] = torch.diag_embed(c + (1 - cols_ok))
        h[..., :k, k:] = p
        h[..., k:, :k] = p.transpose(-1, -2)
        n = torch.cat([rows_ok, -cols_ok], dim=-1)
        h = h + n.unsqueeze(-1) * n.unsqueeze(-2)
        rhs = torch.cat([q.sum(-1) * rows_ok, q.sum(-2) * cols_ok], dim=-1)
        z = torch.linalg.solve(h, rhs.unsqueeze(-1)).squeeze(-1)
        x, y = z[..., :k], z[..., k:]
        b = log_b.exp() * cols_ok
        shift = (b * y).sum(-1, keepdim=True) / b.sum(-1, keepdim=True).clamp_min(1e-300)
        x, y = (x + shift) * rows_ok, (y - shift) * cols_ok
        grad_s = q - p * (x.unsqueeze(-1) + y.unsqueeze(-2))
        grad_log_a = log_a.exp() * x * rows_ok
        return grad_s, grad_log_a, b * y, None


def sinkhorn(scores: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None = None, n_iters: int = 50,
             eps: float = 1.0, backward: str = "unrolled", mask: torch.Tensor | None = None,
             log: bool = False, validate: bool = True) -> torch.Tensor:
    """Entropic transport plan P = diag(u) exp(scores / eps) diag(v) with P 1 = a and (approx.) P^T 1 = b.

    Args:
      scores: (..., K, L) pair scores S (the negative cost); batched over any leading dimensions.
      a: (..., K) row marginal (masses at t), >= 0. b: (..., L) column marginal (masses at t+1), >= 0,
        same total mass as ``a``; may be None only when ``n_iters == 0``.
      n_iters: full Sinkhorn iterations before the final row half-step. ``0`` is exactly the softmax-rows
        baseline ``a_i softmax_j(S_ij / eps)``.
      eps: entropic regularisation; only ``scores / eps`` matters.
      backward: ``"unrolled"`` (autograd through the iterations) or ``"implicit"`` (implicit function
        theorem at the fixed point: O(K L) memory whatever ``n_iters``; exact only when converged).
      mask: optional (..., K, L) bool, False for forbidden pairs (padding when the number of communities
        varies). Entries with ``scores == -inf`` and rows/columns with zero mass are masked too and get
        exact zeros in P.
      log: return log P (with -inf for the zeros) instead of P.
      validate: check shapes, signs, NaN and equal masses (one device sync); turn off in tight loops.

    Returns: P, or log P, with the shape of ``scores``. Rows sum to ``a`` exactly; see ``marginal_errors``.
    """
    if backward not in BACKWARDS:
        raise ValueError(f"backward={backward!r}; use one of {BACKWARDS}")
    if n_iters < 0:
        raise ValueError(f"n_iters={n_iters} must be >= 0")
    if not eps > 0:
        raise ValueError(f"eps={eps} must be > 0")
    if validate:
        _validate(scores, a, b, n_iters, mask)
    log_a, rows_ok = _log_masses(a)
    if b is None:
        b = torch.ones_like(scores[..., 0, :])
    log_b, cols_ok = _log_masses(b)
    allowed = rows_ok.unsqueeze(-1) & cols_ok.unsqueeze(-2) & ~torch.isneginf(scores)
    if mask is not None:
        allowed = allowed & mask.bool()
    if validate and ((rows_ok & ~allowed.any(-1)).any() or (n_iters > 0 and (cols_ok & ~allowed.any(-2)).any())):
        raise ValueError("a community with positive mass has no allowed partner (check mask / -inf scores): "
                         "no coupling of these marginals exists")
    s = torch.where(allowed, scores / eps, torch.full_like(scores, NEG))
    if backward == "implicit" and n_iters > 0:
        log_p = _ImplicitSinkhorn.apply(s, log_a, log_b, n_iters)
    else:
        log_u, log_v = _iterate(s, log_a, log_b, n_iters)
        log_p = log_u.unsqueeze(-1) + s + log_v.unsqueeze(-2)
    log_p = torch.where(allowed, log_p, torch.full_like(log_p, float("-inf")))
    return log_p if log else log_p.exp()


def softmax_rows(scores: torch.Tensor, a: torch.Tensor, eps: float = 1.0, mask: torch.Tensor | None = None,
                 log: bool = False) -> torch.Tensor:
    """The baseline the paper replaces: a row-stochastic transition model ``a_i softmax_j(S_ij / eps)``."""
    return sinkhorn(scores, a, None, n_iters=0, eps=eps, mask=mask, log=log)


def marginal_errors(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 violations ``(|P 1 - a|_1, |P^T 1 - b|_1)`` per batch element; the column one is Sinkhorn's
    residual (the rows are exact), and for softmax rows it is the error of the implied next marginal."""
    return (p.sum(-1) - a).abs().sum(-1), (p.sum(-2) - b).abs().sum(-1)
