"""The framework's closed forms equal its Monte-Carlo simulation (tolerance from the sample size); GDE's
quantities: identical models disagree nowhere, |iid E[dis] - E[err]| <= CACE on random ensembles, the
disagreement of distinct pairs is M / (M - 1) times the iid one, dis(h, h') <= err(h) + err(h')."""
import numpy as np
import pytest

from interaction_tensor import cace, disagreement, framework_accuracy, framework_agreement
from interaction_tensor.framework import none_known, simulate
from interaction_tensor.gde import ensemble_probs, iid_gap, test_error

SETTINGS = [  # p_d, t_d, n_d, k_d, t_r, n_r, k_r, classes
    (0.8, 20, 3, 10, 500, 1, 50, 2),
    (0.5, 20, 2, 5, 40, 1, 20, 2),
    (0.9, 10, 1, 3, 100, 3, 30, 10),
]


def test_none_known_is_hypergeometric():
    from math import comb

    for t, n, k in ((10, 2, 3), (40, 1, 20), (5, 5, 1), (6, 2, 5)):
        assert none_known(t, n, k) == pytest.approx(comb(t - n, k) / comb(t, k) if t - n >= k else 0.0)


@pytest.mark.parametrize("params", SETTINGS)
def test_closed_form_equals_monte_carlo(params):
    *p, classes = params
    sim = simulate(*p, classes=classes, n_models=60, n_points=3000, seed=1)
    acc, agr = framework_accuracy(*p, classes=classes), framework_agreement(*p, classes=classes)
    # 5 standard errors of the simulation's means (pairs share models: the pair SE is inflated by sqrt(models))
    assert abs(sim["acc"] - acc) < 5 * sim["acc_se"] + 2e-3
    assert abs(sim["agr"] - agr) < 5 * sim["agr_se"] * np.sqrt(60) + 2e-3


def test_framework_broadcasts_and_gap_is_nonnegative():
    p_d = np.linspace(0.1, 0.9, 5)[:, None]
    t_r = np.array([10, 40, 400])[None]
    acc = framework_accuracy(p_d, 20, 2, 5, t_r, 1, 5)
    agr = framework_agreement(p_d, 20, 2, 5, t_r, 1, 5)
    assert acc.shape == agr.shape == (5, 3)
    assert np.all((1 - agr) - (1 - acc) >= -1e-12)  # disagreement >= error in this model
    with pytest.raises(ValueError, match="p_d"):
        framework_accuracy(1.5, 20, 2, 5, 40, 1, 5)


def test_gde_quantities():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    same = np.repeat(rng.integers(0, 4, (1, 500)), 5, 0)
    assert disagreement(same) == 0.0
    for _ in range(20):
        M = int(rng.integers(2, 9))
        noise = rng.random()
        preds = np.where(rng.random((M, 500)) < noise, rng.integers(0, 4, (M, 500)), y[None])
        assert abs(iid_gap(preds, y, 4)) <= cace(preds, y, 4) + 1e-12
        h = ensemble_probs(preds, 4)
        assert disagreement(preds) == pytest.approx((1 - (h ** 2).sum(1).mean()) * M / (M - 1))
        a, b = preds[0], preds[1]
        assert (a != b).mean() <= (a != y).mean() + (b != y).mean() + 1e-12
        assert test_error(preds, y) == pytest.approx((preds != y).mean())
    with pytest.raises(ValueError, match="labels"):
        cace(preds, y[:10], 4)
