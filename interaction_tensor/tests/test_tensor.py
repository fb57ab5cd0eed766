"""Oracles of the interaction tensor: rotations of a model's units leave Omega unchanged (up to PC signs),
a duplicated model's components join the same clusters, permuting models only relabels features, permuting the
data permutes Omega's data axis, the greedy rule reassigns only to stronger correlations, bad input is named."""
import pytest
import torch

from interaction_tensor import interaction_tensor
from interaction_tensor.tensor import corr_threshold, correlation_tensor, greedy_cluster, pca_components


def ensemble_acts(M=5, N=300, d=24, shared=6, seed=0):
    """Models whose activations mix a few shared latent factors (learned by some models) with private noise."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(N, shared, generator=g) * torch.linspace(3, 1, shared)
    acts = []
    for _ in range(M):
        keep = torch.rand(shared, generator=g) < 0.7
        mix = torch.randn(shared, d, generator=g) * keep[:, None]
        acts.append(z @ mix + 0.3 * torch.randn(N, d, generator=g))
    return torch.stack(acts)


def profile(it):
    """Sorted (number of points, number of models) per feature: invariant to feature relabelling."""
    pts = it.omega.any(0).sum(0).tolist()
    mods = it.learned.sum(0).tolist()
    return sorted(zip(pts, mods))


def test_pca_and_correlation_basics():
    acts = ensemble_acts()
    psi = pca_components(acts, 4)
    assert psi.shape == (5, 300, 4)
    var = psi.var(1)
    assert torch.all(var[:, :-1] >= var[:, 1:] - 1e-9)  # ordered by explained variance
    lam = correlation_tensor(psi)
    assert torch.allclose(lam[0, 0], torch.eye(4, dtype=lam.dtype), atol=1e-8)  # PCs are uncorrelated
    assert torch.allclose(lam, lam.permute(1, 0, 3, 2))


def test_rotating_a_models_units_leaves_omega_unchanged():
    acts = ensemble_acts()
    q, _ = torch.linalg.qr(torch.randn(24, 24, generator=torch.Generator().manual_seed(1)))
    rotated = acts.clone()
    rotated[2] = acts[2] @ q
    a, b = interaction_tensor(acts, k=6), interaction_tensor(rotated, k=6)
    assert torch.equal(a.assign, b.assign) and torch.equal(a.omega, b.omega)


def test_flipping_pc_signs_is_aligned_away():
    acts = ensemble_acts()
    it = interaction_tensor(acts, k=6)
    # flip the sign of one component of one model: the alignment must undo it
    from interaction_tensor import tensor as T

    real = T.pca_components

    def flipped(x, k):
        out = real(x, k)
        if x.shape[0] == acts.shape[0]:
            out = out.clone()
            out[1, :, 0] *= -1
        return out

    T.pca_components = flipped
    try:
        it2 = interaction_tensor(acts, k=6)
    finally:
        T.pca_components = real
    assert torch.equal(it.omega, it2.omega)


def test_presence_uses_the_anchor_aligned_sign(monkeypatch):
    # model 1's components are model 0's negated: clustered with correlation -1, aligned back, the same Omega rows
    from interaction_tensor import tensor as T

    psi = pca_components(ensemble_acts(M=1), 6)[0]
    monkeypatch.setattr(T, "pca_components", lambda acts, k: torch.stack([psi, -psi]))
    monkeypatch.setattr(T, "canonical_signs", lambda p: p)  # keep the flip
    it = interaction_tensor(torch.zeros(2, 300, 24), k=6, gamma_corr=0.5, corr_kind="absolute", gamma_data=0.4,
                            data_kind="absolute")
    assert torch.equal(it.assign[0], it.assign[1]) and torch.all(it.sign[1] == -1)
    assert torch.equal(it.omega[0], it.omega[1]) and it.omega[0].any()


def test_a_duplicated_model_joins_the_same_clusters():
    acts = ensemble_acts()
    dup = torch.cat([acts, acts[1:2]])
    it = interaction_tensor(dup, k=6, gamma_corr=0.5, corr_kind="absolute")
    assert torch.equal(it.assign[1], it.assign[5])
    assert torch.equal(it.omega[1], it.omega[5])


def test_permuting_models_relabels_features_and_permuting_data_permutes_omega():
    acts = ensemble_acts()
    base = interaction_tensor(acts, k=6, gamma_corr=0.6, corr_kind="absolute", gamma_data=0.5,
                              data_kind="absolute")
    perm = torch.tensor([3, 0, 4, 1, 2])
    # the greedy pass is order-dependent: visit the same components in the same sequence under their new labels
    new_of = torch.argsort(perm)  # model m of the original is model new_of[m] after the permutation
    order = [int(new_of[m]) * 6 + j for m in range(5) for j in range(6)]
    swapped = interaction_tensor(acts[perm], k=6, gamma_corr=0.6, corr_kind="absolute", gamma_data=0.5,
                                 data_kind="absolute", order=order)
    assert base.n_features == swapped.n_features and profile(base) == profile(swapped)
    assert torch.equal(swapped.omega[new_of], base.omega)  # the same features, in the same order
    default = interaction_tensor(acts[perm], k=6, gamma_corr=0.6, corr_kind="absolute", gamma_data=0.5,
                                 data_kind="absolute")
    assert default.omega.shape[:2] == base.omega.shape[:2]  # (the default order may cluster differently)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(2))
    shuffled = interaction_tensor(acts[:, order], k=6, gamma_corr=0.6, corr_kind="absolute", gamma_data=0.5,
                                  data_kind="absolute")
    assert torch.equal(shuffled.omega, base.omega[:, order])


def test_greedy_reassigns_only_to_a_stronger_correlation():
    # 2 models x 2 components; (1, 0) correlates 0.7 with anchor (0, 0) and 0.9 with anchor (0, 1)
    lam = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    lam[0, 0] = lam[1, 1] = torch.eye(2, dtype=torch.float64)
    lam[0, 1] = torch.tensor([[0.7, 0.1], [-0.9, 0.2]], dtype=torch.float64)
    lam[1, 0] = lam[0, 1].T
    assign, sign, best = greedy_cluster(lam, 0.5)
    assert assign[1, 0] == assign[0, 1] != assign[0, 0]  # stolen by the stronger anchor
    assert sign[1, 0] == -1 and best[1, 0] == pytest.approx(0.9)
    assign2, _, _ = greedy_cluster(lam, 0.8)
    assert assign2[1, 0] == assign2[0, 1]
    # the mirror case: the stronger anchor is visited first, so the weaker one visited later must not steal
    assign3, _, best3 = greedy_cluster(lam, 0.5, order=[1, 0, 2, 3])
    assert assign3[1, 0] == assign3[0, 1] != assign3[0, 0] and best3[1, 0] == pytest.approx(0.9)


def test_self_pairs_are_excluded_from_the_percentile():
    acts = ensemble_acts()
    lam = correlation_tensor(pca_components(acts, 6))
    with_self = corr_threshold(lam, 99, exclude_self=False)
    without = corr_threshold(lam, 99)
    assert without < with_self


def test_bad_input_is_named():
    acts = ensemble_acts()
    with pytest.raises(ValueError, match="same evaluation points"):
        interaction_tensor([acts[0], acts[1, :200]], k=4)
    with pytest.raises(ValueError, match="exceeds"):
        interaction_tensor(acts, k=30)
    with pytest.raises(ValueError, match="gamma_corr"):
        interaction_tensor(acts, k=4, gamma_corr=1.5, corr_kind="absolute")
    with pytest.raises(ValueError, match="gamma_data"):
        interaction_tensor(acts, k=4, gamma_data=120)
