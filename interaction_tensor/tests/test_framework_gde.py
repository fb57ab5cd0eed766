"""The framework's closed forms equal its Monte-Carlo simulation (tolerance from the sample size); GDE's
quantities: identical models disagree nowhere, |iid E[dis] - E[err]| <= CACE on random ensembles, the
disagreement of distinct pairs is M / (M - 1) times the iid one, dis(h, h') <= err(h) + err(h')."""
import numpy as np
import pytest

from interaction_tensor import cace, disagreement, framework_accuracy, framework_agreement
from interaction_tensor.framework import none_known, replicate_spread, simulate
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
    # the simulation's uncertainty is measured across independent replicates (models share the sampled points, so
    # a per-model standard error would understate it)
    *p, classes = params
    names = ("p_d", "t_d", "n_d", "k_d", "t_r", "n_r", "k_r")
    sim = replicate_spread(dict(zip(names, p)), classes, 60, 1500, range(8))
    acc, agr = framework_accuracy(*p, classes=classes), framework_agreement(*p, classes=classes)
    assert abs(sim["acc"] - acc) < 4 * sim["acc_sd"] / np.sqrt(8) + 1e-4
    assert abs(sim["agr"] - agr) < 4 * sim["agr_sd"] / np.sqrt(8) + 1e-4


def test_a_pluggable_rule_that_learns_everything_is_always_right():
    def everything(rng, n_models, t, k):
        return np.ones((n_models, t), dtype=bool)

    sim = simulate(0.5, 10, 1, 5, 10, 1, 5, classes=3, n_models=5, n_points=200, seed=3, rule=everything)
    assert sim["acc"] == 1.0 and sim["agr"] == 1.0


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


def test_cace_by_hand():
    # 2 models, 2 classes, 4 points; vote fractions 1/0, .5/.5, .5/.5, 1/0 with labels 0, 0, 1, 1:
    # level 1: hits 1/4, mass 2/4; level .5: hits 2/4, mass 4/4; level 0: hits 1/4, mass 2/4 -> 1/4 + 0 + 1/4
    preds = np.array([[0, 0, 0, 0], [0, 1, 1, 0]])
    assert cace(preds, np.array([0, 0, 1, 1]), 2) == pytest.approx(0.5)
    assert cace(preds, np.array([0, 0, 1, 0]), 2) == pytest.approx(0.0)  # calibrated: every level is right
    assert disagreement(preds) == pytest.approx(0.5)
