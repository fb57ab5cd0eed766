"""Aggregates of Fig. 3 and the Crafter score against closed forms; the return normaliser; env install errors."""
import numpy as np
import pytest

from ede.envs import make_crafter, make_procgen
from ede.metrics import ReturnNormalizer, aggregate_with_ci, crafter_score, iqm, normalize, optimality_gap


def test_normalisation_and_aggregates_by_hand():
    assert normalize([1.0, 40.0], "bigfish").tolist() == [0.0, 1.0]
    x = np.arange(1, 9, dtype=float)  # 8 scores: the IQM is the mean of the middle 4 = 4.5
    assert iqm(x) == pytest.approx(4.5)
    assert optimality_gap([0.2, 1.5, 0.9]) == pytest.approx((0.8 + 0 + 0.1) / 3)
    scores = np.tile(np.array([[0.1, 0.5, 0.9]]), (5, 1))  # identical runs: the CI collapses to the point
    agg = aggregate_with_ci(scores, reps=200)
    assert agg["median"] == (0.5, 0.5, 0.5) and agg["mean"][0] == pytest.approx(0.5)
    noisy = np.random.default_rng(0).normal(0.5, 0.1, size=(5, 16))
    lo, hi = aggregate_with_ci(noisy, reps=500)["iqm"][1:]
    assert lo < iqm(noisy) < hi
    with pytest.raises(ValueError, match="unknown Procgen game"):
        normalize([1.0], "pong")


def test_crafter_score_of_a_constant_vector_is_itself():
    assert crafter_score(np.full(22, 12.5)) == pytest.approx(12.5)
    assert crafter_score(np.zeros(22)) == 0.0


def test_return_normaliser_scales_by_the_return_std_and_resets_at_episode_ends():
    norm = ReturnNormalizer(n_envs=4, gamma=0.9)
    rng = np.random.default_rng(0)
    outs = [norm(rng.normal(0, 5, 4), np.zeros(4, dtype=bool)) for _ in range(2000)]
    assert 0.1 < np.std(outs) < 1.0  # raw std 5, return std ~11.5 -> ~0.43
    norm.ret[:] = 3.0
    norm(np.zeros(4), np.array([True, False, False, False]))
    assert norm.ret[0] == 0.0 and norm.ret[1] != 0.0


def test_missing_simulators_name_the_install():
    try:
        import procgen  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="procgen-mirror"):
            make_procgen("bigfish", 2)
    with pytest.raises(ValueError, match="the 16 games"):
        make_procgen("pong", 2)
    try:
        import crafter  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install crafter"):
            make_crafter()


def test_fig3_and_table1_aggregation_from_run_records():
    from ede.aggregate import procgen_scores, render

    def rec(method, game, seed, val, kind="procgen"):
        key = "test/normalized" if kind == "procgen" else "crafter/score"
        return {"config": {"env": {"kind": kind, "game": game}, "method": {"name": method}, "seed": seed},
                "metrics": {key: val}}

    runs = [rec("ede", g, s, 0.5) for g in ("bigfish", "coinrun") for s in range(3)]
    runs += [rec("qrdqn", "bigfish", s, 0.1 * s) for s in range(3)] + [rec("qrdqn", "coinrun", 0, 0.3)]
    runs += [rec("ede", None, s, v, kind="crafter") for s, v in enumerate((10.0, 12.0))]
    scores = procgen_scores(runs)
    assert scores["ede"][1].shape == (3, 2) and scores["qrdqn"][1].shape == (1, 2)  # only seed 0 covers both games
    text = render(runs)
    assert "| ede | 2 x 3 (not all 16 games) | 0.500 [0.500, 0.500] | 0.500 [0.500, 0.500]" in text
    assert "| ede | 2 | 11.00 +- 1.41 | 11.7 +- 1.0 |" in text


def test_median_is_rliables_median_of_per_game_means():
    scores = np.array([[0, 0, 1], [0.2, 0.9, 1], [0.2, 0.9, 0]])  # [runs, games]
    assert aggregate_with_ci(scores, reps=10)["median"][0] == pytest.approx(0.6)  # per-game means .13/.6/.67
