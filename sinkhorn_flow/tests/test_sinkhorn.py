"""The Sinkhorn layer against its oracles: POT, invariances, softmax identity, EMD limit, gradients."""
import numpy as np
import ot
import pytest
import torch
from conftest import random_problem

from sinkhorn_flow import marginal_errors, sinkhorn, softmax_rows


@pytest.mark.parametrize("eps, n_iters", [(1.0, 2000), (0.1, 5000), (0.01, 50000)])
def test_forward_equals_pot(problem, eps, n_iters):
    s, a, b = problem
    p = sinkhorn(s, a, b, n_iters=n_iters, eps=eps)  # small eps converges slowly: iterations to 1e-14
    # POT's plain-domain solver to its tolerance (its log-domain one needs minutes at eps=0.01 here).
    ref = ot.sinkhorn(a.numpy(), b.numpy(), -s.numpy(), reg=eps, numItermax=200000, stopThr=1e-16)
    assert np.abs(p.numpy() - ref).max() < 1e-10


def test_invariant_to_row_and_column_constants(problem):
    s, a, b = problem
    shifted = s + torch.randn(6, 1, dtype=s.dtype) + torch.randn(1, 5, dtype=s.dtype)
    assert torch.allclose(sinkhorn(s, a, b, 300), sinkhorn(shifted, a, b, 300), atol=1e-13, rtol=0)


def test_zero_iterations_is_softmax_rows(problem):
    s, a, b = problem
    expected = a[:, None] * torch.softmax(s / 0.5, dim=-1)
    assert torch.allclose(sinkhorn(s, a, b, n_iters=0, eps=0.5), expected, atol=1e-15, rtol=0)
    assert torch.allclose(softmax_rows(s, a, eps=0.5), expected, atol=1e-15, rtol=0)
    # softmax rows is invariant to row constants only; a column constant changes it (Sinkhorn absorbs it)
    col = torch.linspace(0, 1, 5, dtype=s.dtype)
    assert torch.allclose(softmax_rows(s + torch.randn(6, 1, dtype=s.dtype), a), softmax_rows(s, a), atol=1e-14)
    assert not torch.allclose(softmax_rows(s + col, a), softmax_rows(s, a), atol=1e-3)


def test_small_eps_approaches_emd():
    s, a, b = random_problem(5, 5, seed=3)
    ref = ot.emd(a.numpy(), b.numpy(), -s.numpy())
    dists = [0.5 * np.abs(sinkhorn(s, a, b, n_iters=n, eps=eps).numpy() - ref).sum()
             for eps, n in ((0.3, 2000), (0.1, 5000), (0.01, 20000))]
    # the entropic bias shrinks with eps: TV to the EMD plan falls monotonically, by > 50x over the range
    assert dists[0] > dists[1] > dists[2] and dists[2] < dists[0] / 50 and dists[2] < 5e-3


def test_rows_exact_columns_converge(problem):
    s, a, b = problem
    errs = [marginal_errors(sinkhorn(s, a, b, n), a, b) for n in (1, 10, 100)]
    assert all(r.item() < 1e-14 for r, _ in errs)
    cols = [c.item() for _, c in errs]
    assert cols[0] > cols[1] > cols[2] and cols[2] < 1e-10


def test_gradcheck_scores_and_log_marginals():
    s, a, b = random_problem(4, 3, seed=1)
    s.requires_grad_()
    la, lb = a.log().requires_grad_(), b.log().requires_grad_()
    f = lambda s_, la_, lb_: sinkhorn(s_, la_.exp(), lb_.exp(), n_iters=30, eps=0.5)  # noqa: E731
    assert torch.autograd.gradcheck(f, (s, la, lb), eps=1e-6, atol=1e-6)


def test_gradcheck_implicit():
    s, a, b = random_problem(4, 3, seed=2)
    s.requires_grad_()
    la, lb = a.log().requires_grad_(), b.log().requires_grad_()
    # gradcheck perturbs log a and log b separately (unequal masses): the converged map rescales b to the
    # mass of a, which the implicit gradient's gauge reproduces
    f = lambda s_, la_, lb_: sinkhorn(s_, la_.exp(), lb_.exp(), n_iters=400, eps=0.5, backward="implicit",  # noqa: E731
                                      validate=False)
    assert torch.autograd.gradcheck(f, (s, la, lb), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("eps", [1.0, 0.3])
def test_unrolled_and_implicit_gradients_agree(eps):
    s, a, b = random_problem(6, 5, seed=4)
    target = torch.distributions.Dirichlet(torch.ones(30, dtype=s.dtype)).sample().view(6, 5)

    def grads(mode):
        s_ = s.clone().requires_grad_()
        la, lb = a.log().requires_grad_(), b.log().requires_grad_()
        p = sinkhorn(s_, la.exp(), lb.exp(), n_iters=2000, eps=eps, backward=mode)
        (-(target * p.log()).sum()).backward()
        return s_.grad, la.grad, lb.grad

    for u, i in zip(grads("unrolled"), grads("implicit")):
        assert torch.allclose(u, i, atol=1e-9, rtol=0), (u - i).abs().max()


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")  # a fixed iteration count on purpose
def test_unrolled_gradient_matches_pot_autograd(problem):
    s, a, b = problem
    target = torch.rand(6, 5, dtype=s.dtype)
    s1 = s.clone().requires_grad_()
    (-(target * sinkhorn(s1, a, b, n_iters=500).log()).sum()).backward()
    s2 = s.clone().requires_grad_()
    # POT's torch backend differentiates through its own log-domain loop (ending on the columns):
    p = ot.sinkhorn(a, b, -s2, reg=1.0, method="sinkhorn_log", numItermax=500, stopThr=0.0)
    (-(target * p.log()).sum()).backward()
    assert torch.allclose(s1.grad, s2.grad, atol=1e-10)


def test_empty_communities_and_masks_exact_zeros_no_nan():
    s, a, b = random_problem(4, 4, seed=5)
    a = torch.tensor([0.5, 0.0, 0.3, 0.2], dtype=s.dtype)
    b = torch.tensor([0.0, 0.6, 0.4, 0.0], dtype=s.dtype)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[2, 1] = False  # row 2 must then send all its 0.3 to column 2 (capacity 0.4): still feasible
    for mode in ("unrolled", "implicit"):
        s_ = s.clone().requires_grad_()
        p = sinkhorn(s_, a, b, n_iters=500, backward=mode, mask=mask)
        assert torch.isfinite(p).all()
        assert (p[1] == 0).all() and (p[:, 0] == 0).all() and (p[:, 3] == 0).all() and p[2, 1] == 0
        r, c = marginal_errors(p, a, b)
        assert r < 1e-12 and c < 1e-9
        (p * torch.randn(4, 4, dtype=s.dtype)).sum().backward()
        assert torch.isfinite(s_.grad).all() and s_.grad[2, 1] == 0 and (s_.grad[1] == 0).all()


def test_padding_equals_the_unpadded_problem():
    s, a, b = random_problem(3, 4, seed=6)
    sp = torch.zeros(5, 6, dtype=s.dtype)
    sp[:3, :4] = s
    ap, bp = torch.zeros(5, dtype=s.dtype), torch.zeros(6, dtype=s.dtype)
    ap[:3], bp[:4] = a, b
    mask = torch.zeros(5, 6, dtype=torch.bool)
    mask[:3, :4] = True
    p = sinkhorn(sp, ap, bp, 200, mask=mask)
    assert torch.allclose(p[:3, :4], sinkhorn(s, a, b, 200), atol=1e-15)
    assert p[3:].abs().sum() == 0 and p[:, 4:].abs().sum() == 0


def test_batched_float32_stays_finite():
    s, a, b = random_problem(20, 20, batch=(64,), seed=7, dtype=torch.float32)
    hard = (10 * s).requires_grad_()  # scores / eps up to ~4000: saturated plans, still no inf/NaN
    p = sinkhorn(hard, a, b, n_iters=100, eps=0.01)
    assert torch.isfinite(p).all()
    (p * torch.rand_like(p)).sum().backward()
    assert torch.isfinite(hard.grad).all()
    batched = sinkhorn(s, a, b, n_iters=100)
    single = torch.stack([sinkhorn(s[i], a[i], b[i], n_iters=100) for i in range(3)])
    assert torch.allclose(batched[:3], single, atol=1e-6)
    assert marginal_errors(batched, a, b)[1].max() < 1e-5


@pytest.mark.parametrize("kwargs, match", [
    (dict(b=torch.full((5,), 0.3, dtype=torch.float64)), "different total mass"),
    (dict(a=torch.tensor([0.5, 0.6, -0.1, 0, 0, 0], dtype=torch.float64)), "negative entries"),
    (dict(s=torch.full((6, 5), float("nan"), dtype=torch.float64)), "NaN"),
    (dict(b=torch.full((4,), 0.25, dtype=torch.float64)), "column marginal b has shape"),
    (dict(a=torch.full((5,), 0.2, dtype=torch.float64)), "row marginal a has shape"),
    (dict(mask=torch.zeros(6, 5, dtype=torch.bool)), "no allowed partner"),
    (dict(backward="magic"), "backward="),
    (dict(n_iters=-1), "n_iters"),
    (dict(eps=0.0), "eps"),
])
def test_bad_input_gives_clear_errors(problem, kwargs, match):
    s, a, b = problem
    args = dict(s=s, a=a, b=b, n_iters=10)
    args.update(kwargs)
    s_ = args.pop("s")
    with pytest.raises(ValueError, match=match):
        sinkhorn(s_, **args)


def test_b_required_with_iterations(problem):
    s, a, _ = problem
    with pytest.raises(ValueError, match="required when n_iters > 0"):
        sinkhorn(s, a, None, n_iters=5)
