"""Mask oracles: exact counts, N:M groups, invariances, the variant, SparseGPT without pruning."""
import pytest
import torch

from wanda.masks import (
    mask_nm,
    mask_per_layer,
    mask_per_row,
    mask_variant,
    parse_pattern,
    select_mask,
    sparsegpt_prune,
    wanda_score,
)


def rand(rows=32, cols=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=g), torch.rand(cols, generator=g) * 10


@pytest.mark.parametrize("s", [0.1, 0.5, 0.7])
def test_per_row_prunes_exactly_int_cin_s_in_every_row(s):
    w, act = rand()
    mask = mask_per_row(wanda_score(w, act), s)
    assert (mask.sum(1) == int(64 * s)).all()


def test_per_row_prunes_the_lowest_scores_with_stable_ties():
    score = torch.tensor([[3.0, 1.0, 1.0, 2.0], [0.0, 0.0, 0.0, 5.0]])
    mask = mask_per_row(score, 0.5)
    assert mask.tolist() == [[False, True, True, False], [True, True, False, False]]  # ties: lower index first


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4)])
def test_every_aligned_group_has_exactly_n_zeros(n, m):
    w, act = rand()
    mask = mask_nm(wanda_score(w, act), n, m)
    assert (mask.view(32, 64 // m, m).sum(-1) == n).all()


def test_nm_groups_run_along_the_input_dimension():
    score = torch.arange(8.0).repeat(2, 1)  # columns 0..7 in each row
    assert mask_nm(score, 2, 4).tolist()[0] == [True, True, False, False, True, True, False, False]


def test_equal_input_norms_make_wanda_per_row_magnitude():
    w, _ = rand()
    ones = torch.full((64,), 3.0)
    assert torch.equal(mask_per_row(wanda_score(w, ones), 0.5), mask_per_row(w.abs(), 0.5))


def test_scaling_an_input_channel_scales_its_score():
    w, act = rand()
    act2 = act.clone()
    act2[5] *= 4.0  # act holds sums of squares: the norm, hence the score, scales by |c| = 2
    assert torch.allclose(wanda_score(w, act2)[:, 5], 2 * wanda_score(w, act)[:, 5])
    assert torch.equal(wanda_score(w, act2)[:, 6], wanda_score(w, act)[:, 6])


def test_per_layer_threshold_is_the_reference_rule():
    w, _ = rand(64, 64)
    mask = mask_per_layer(w.abs(), 0.5)
    assert mask.sum() == 2049  # sort(|W|)[int(n*s)] with <=: one more than int(4096 * 0.5), as the reference


def test_variant_hits_the_target_within_tolerance():
    w, act = rand(64, 128)
    mask, alpha = mask_variant(wanda_score(w, act), 0.5)
    assert abs(mask.float().mean().item() - 0.5) <= 1e-3 and 0 < alpha < 0.8
    assert mask.sum(1).float().std() > 0  # per-row sparsity is no longer uniform


def test_sparsity_zero_prunes_nothing():
    w, act = rand()
    assert not select_mask(wanda_score(w, act), 0.0).any()


@pytest.mark.parametrize("pattern,s,match", [
    ("unstructured", 1.0, r"\[0, 1\)"),
    ("unstructured", -0.1, r"\[0, 1\)"),
    ("4:2", 0.5, "0 < N < M"),
    ("2:4", 0.6, "set sparsity=0.5"),
    ("two:four", 0.5, "N:M"),
])
def test_bad_patterns(pattern, s, match):
    with pytest.raises(ValueError, match=match):
        parse_pattern(pattern, s)


def test_nm_needs_divisible_input_dim():
    with pytest.raises(ValueError, match="multiple of M"):
        mask_nm(torch.rand(4, 6), 2, 4)


def test_sparsegpt_without_pruning_reproduces_the_weights():
    w, _ = rand(16, 48)
    x = torch.randn(500, 48)
    new_w, mask = sparsegpt_prune(w, 2 * x.T @ x / 500, 0.0, blocksize=16)
    assert not mask.any() and torch.allclose(new_w, w, atol=1e-5)


@pytest.mark.parametrize("pattern,s", [("unstructured", 0.5), ("2:4", 0.5), ("4:8", 0.5)])
def test_sparsegpt_reconstructs_better_than_its_mask_alone(pattern, s):
    w, _ = rand(16, 64, seed=1)
    g = torch.Generator().manual_seed(2)
    # correlated inputs (rank ~16 + noise): what the OBS update exploits; with independent inputs it cannot help
    x = torch.randn(800, 16, generator=g) @ torch.randn(16, 64, generator=g) + 0.1 * torch.randn(800, 64, generator=g)
    h = 2 * x.T @ x / 800
    new_w, mask = sparsegpt_prune(w, h, s, pattern, blocksize=32)
    assert (new_w[mask] == 0).all()
    if pattern != "unstructured":
        n, m = parse_pattern(pattern, s)
        assert (mask.view(16, -1, m).sum(-1) == n).all()
    masked_only = torch.where(mask, torch.zeros_like(w), w)
    err = lambda v: ((x @ (v - w).T) ** 2).sum()  # noqa: E731
    assert err(new_w) < 0.5 * err(masked_only)  # the OBS update repairs the layer output


def test_is_24():
    from wanda.export import is_24

    w = torch.tensor([[0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 1.0]])
    assert is_24(w) and not is_24(torch.ones(1, 8)) and not is_24(torch.zeros(1, 6))


def test_per_row_equals_the_reference_stable_sort_on_tie_heavy_scores():
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        s = torch.randint(0, 5, (7, 33), generator=g).float()  # many ties
        for sp in (0.1, 0.5, 0.77):
            k = int(33 * sp)
            ref = torch.zeros_like(s, dtype=torch.bool).scatter_(1, torch.sort(s, dim=1, stable=True)[1][:, :k], True)
            assert torch.equal(mask_per_row(s, sp), ref)
