"""The interaction tensor Omega in {0,1}^{M x N x T} (models x data x features), built from each model's
penultimate activations on the same N evaluation points:

1. per model, PCA of the centred activations: the top-K components Psi_m [N, K] are the model's "features";
2. the cross-model correlation tensor Lambda [M, M, K, K]: Pearson correlation over the N points of every pair of
   components (one einsum over z-scored columns);
3. greedy clustering with a fixed visiting order (m = 0..M-1, j = 0..K-1): an unassigned (m, j) opens feature t;
   then every (p, q) with |Lambda[m, p, j, q]| > gamma_corr is (re)assigned to t *only if* that correlation is
   stronger than the one that assigned it before ("reassign only if stronger");
4. data-feature presence: PC signs are arbitrary, so each component is first oriented to a positive third moment
   (ours), scaled by its largest absolute value over the points and its sign aligned to its cluster's anchor;
   point n has feature t under model m iff a component of m in cluster t exceeds gamma_data;
5. Omega[m, n, t] = model m learned feature t (one of its components is in cluster t) and point n has it under m.

gamma_corr is absolute or a percentile of |Lambda| (self-pairs m = p excluded by default: they hold the K
self-correlations of 1 and within-model zeros, which would set the percentile); gamma_data is absolute or a
per-model percentile of the aligned, scaled values. Spec: ../shared/papers/interaction_tensor.md section 2.2.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class InteractionTensor:
    """``omega`` [M, N, T] bool; ``assign`` [M, K] feature id of every component; ``sign`` [M, K] +-1 alignment to
    the cluster anchor; ``strength`` [M, K] the correlation that assigned it; ``learned`` [M, T] bool; the
    thresholds actually used; ``components`` [M, N, K] the PCA projections."""

    omega: torch.Tensor
    assign: torch.Tensor
    sign: torch.Tensor
    strength: torch.Tensor
    learned: torch.Tensor
    gamma_corr: float
    gamma_data: torch.Tensor
    components: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.omega.shape[2]


def pca_components(acts: torch.Tensor, k: int) -> torch.Tensor:
    """[M, N, d] activations -> [M, N, K] projections of the centred activations on each model's top-K principal
    directions (eigenvectors of the d x d covariance, in float64; the sign of each is arbitrary)."""
    out = []
    for a in acts:  # one model at a time: float64 copies of [N, d], not of [M, N, d]
        x = a.double() - a.double().mean(0, keepdim=True)
        _, vecs = torch.linalg.eigh(x.T @ x / x.shape[0])  # ascending
        out.append(x @ vecs.flip(-1)[:, :k])
    return torch.stack(out)


def canonical_signs(psi: torch.Tensor) -> torch.Tensor:
    """Orient every component [M, N, K] to a positive third moment over the points (its heavy tail positive): a
    choice that depends on the data only, so a rotation of a model's units, which can flip PC signs, cannot change
    it (ours: the spec leaves the sign handling open)."""
    skew = psi.pow(3).sum(1, keepdim=True)
    return psi * torch.where(skew < 0, -1.0, 1.0).to(psi.dtype)


def correlation_tensor(psi: torch.Tensor) -> torch.Tensor:
    """[M, N, K] -> Lambda [M, M, K, K]: Pearson correlation over the N points of component j of model m and
    component q of model p (a zero-variance component correlates 0 with everything)."""
    z = psi - psi.mean(1, keepdim=True)
    sd = z.pow(2).mean(1, keepdim=True).sqrt()
    z = torch.where(sd > 0, z / sd.clamp_min(1e-300), torch.zeros_like(z))
    return torch.einsum("mnj,pnq->mpjq", z, z) / psi.shape[1]


def corr_threshold(lam: torch.Tensor, value: float, kind: str = "percentile", exclude_self: bool = True) -> float:
    """gamma_corr: ``value`` itself (kind=absolute, in (0, 1)) or the ``value``-th percentile (0..100) of |Lambda|
    over model pairs m != p (or over every entry with exclude_self=False)."""
    if kind == "absolute":
        if not 0 < value < 1:
            raise ValueError(f"gamma_corr={value}: an absolute correlation threshold lies in (0, 1)")
        return float(value)
    if kind != "percentile":
        raise ValueError(f"gamma_corr kind={kind!r}: absolute | percentile")
    if not 0 <= value <= 100:
        raise ValueError(f"gamma_corr={value}: a percentile lies in [0, 100]")
    a = lam.abs()
    M = a.shape[0]
    if exclude_self:
        if M < 2:
            raise ValueError("a percentile over model pairs m != p needs at least 2 models")
        a = a[~torch.eye(M, dtype=torch.bool)]
    return float(torch.quantile(a.flatten().float(), value / 100))


def greedy_cluster(lam: torch.Tensor, gamma: float, order=None):
    """Cluster components: returns (assign [M, K] ids 0..T-1, sign [M, K], strength [M, K]). ``order``: the
    visiting order of (m, j) pairs as flat indices m * K + j (default 0..MK-1). Vectorised per visited pair: one
    comparison over all M K components."""
    M, _, K, _ = lam.shape
    flat = lam.permute(0, 2, 1, 3).reshape(M * K, M * K)  # row (m, j), column (p, q)
    assign = torch.full((M * K,), -1, dtype=torch.long)
    best = torch.zeros(M * K, dtype=lam.dtype)
    sign = torch.ones(M * K, dtype=lam.dtype)
    t = 0
    for i in (range(M * K) if order is None else order):
        if assign[i] >= 0:
            continue
        row = flat[i]
        take = (row.abs() > gamma) & (row.abs() > best)
        take[i] = True  # the anchor itself (|Lambda| = 1)
        assign[take] = t
        best[take] = row.abs()[take]
        sign[take] = torch.where(row[take] < 0, -1.0, 1.0).to(lam.dtype)
        t += 1
    # ids in order of first appearance among the surviving assignments (a stolen cluster may end up empty)
    _, inv = torch.unique(assign, return_inverse=True)
    return inv.view(M, K), sign.view(M, K), best.view(M, K)


def interaction_tensor(acts, k: int = 50, gamma_corr: float = 99.0, corr_kind: str = "percentile",
                       exclude_self: bool = True, gamma_data: float = 90.0, data_kind: str = "percentile",
                       sign_mode: str = "align", order=None) -> InteractionTensor:
    """Omega from activations ``acts``: [M, N, d] tensor, or a list of M [N, d_m] arrays (widths may differ, the
    number of points may not). ``sign_mode``: align (flip each component to its cluster anchor's sign) | abs
    (threshold |value|)."""
    if k < 1:
        raise ValueError(f"K={k}: need at least one component")
    if isinstance(acts, (list, tuple)):
        ns = {int(a.shape[0]) for a in acts}
        if len(ns) != 1:
            raise ValueError(f"every model needs the same evaluation points: got point counts {sorted(ns)}")
        ds = [int(a.shape[1]) for a in acts]
        if k > min(ds):
            raise ValueError(f"K={k} exceeds the narrowest activation width {min(ds)}: lower k")
        psi = torch.stack([pca_components(torch.as_tensor(a)[None], k)[0] for a in acts])
    else:
        acts = torch.as_tensor(acts)
        if acts.dim() != 3:
            raise ValueError(f"activations must be [M models, N points, d units], got shape {tuple(acts.shape)}")
        if k > acts.shape[2]:
            raise ValueError(f"K={k} exceeds the activation width {acts.shape[2]}: lower k")
        psi = pca_components(acts, k)
    if sign_mode not in ("align", "abs"):
        raise ValueError(f"sign_mode={sign_mode!r}: align | abs")
    psi = canonical_signs(psi)
    lam = correlation_tensor(psi)
    g_corr = corr_threshold(lam, gamma_corr, corr_kind, exclude_self)
    assign, sign, strength = greedy_cluster(lam, g_corr, order)
    M, N, K = psi.shape
    T = int(assign.max()) + 1
    scaled = psi / psi.abs().amax(1, keepdim=True).clamp_min(1e-300)  # L-inf per component, in [-1, 1]
    vals = scaled * sign[:, None, :] if sign_mode == "align" else scaled.abs()
    if data_kind == "absolute":
        if not -1 <= gamma_data < 1:
            raise ValueError(f"gamma_data={gamma_data}: an absolute threshold on scaled values lies in [-1, 1)")
        g_data = torch.full((M,), float(gamma_data), dtype=vals.dtype)
    elif data_kind == "percentile":
        if not 0 <= gamma_data <= 100:
            raise ValueError(f"gamma_data={gamma_data}: a percentile lies in [0, 100]")
        g_data = torch.quantile(vals.reshape(M, -1).float(), gamma_data / 100, dim=1).to(vals.dtype)
    else:
        raise ValueError(f"gamma_data kind={data_kind!r}: absolute | percentile")
    above = (vals > g_data[:, None, None]).to(torch.float32)  # [M, N, K]
    onehot = torch.nn.functional.one_hot(assign, T).to(torch.float32)  # [M, K, T]
    omega = torch.stack([(above[m] @ onehot[m]) > 0 for m in range(M)])  # [M, N, T], one matmul per model
    learned = onehot.sum(1) > 0
    return InteractionTensor(omega, assign, sign, strength, learned, g_corr, g_data, psi)
