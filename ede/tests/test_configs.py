"""Every experiment composes (with and without the Slurm launcher); keys are documented; typos fail."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from shared.testing import check_experiment, compose, undocumented_keys

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("launcher", [None, "slurm"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    cfg = check_experiment(CONFIGS, experiment, launcher, groups=("method", "env"))
    if launcher == "slurm":  # the tabular study and the CPU checks are CPU-only; deep paper runs get one GPU each
        assert cfg.hydra.launcher.gpus_per_node == (1 if experiment in ("procgen", "fig4_ablation", "crafter") else 0)


@pytest.mark.parametrize("method", sorted(p.stem for p in (CONFIGS / "method").glob("*.yaml")))
def test_every_method_composes_with_its_family(method):
    cfg = compose(CONFIGS, [f"method={method}"] + ([] if method in ("epsilon", "ucb", "pg") else ["env=procgen"]))
    assert cfg.method.name == method and cfg.method.family in ("tabular", "value", "ppo")
    if cfg.method.family == "value":
        assert (cfg.method.loss == "huber") == (cfg.method.quantiles == 1)


def test_ablation_variants_differ_from_ede_only_where_the_paper_says():
    ede = compose(CONFIGS, ["method=ede"]).method
    diff = {}
    for m in ("qrdqn_ucb", "dqn_ucb", "uadqn"):
        other = compose(CONFIGS, [f"method={m}"]).method
        diff[m] = {k for k in ede if other[k] != ede[k]} - {"name"}
    assert diff == {"qrdqn_ucb": {"tee"}, "dqn_ucb": {"loss", "quantiles"}, "uadqn": {"target", "tee"}}
    crafter = compose(CONFIGS, ["+experiment=crafter"])
    assert crafter.method.explore == "thompson" and crafter.method.phi == 0.5 and crafter.env.frame_stack == 4


def test_default_is_the_mini_ucb_arm():
    cfg = compose(CONFIGS, [])
    assert cfg.method.name == "ucb" and cfg.runs == 100 and cfg.episodes == 1000
    assert compose(CONFIGS, ["+experiment=mini"], hydra=True).hydra.sweeper.params.method == "epsilon,ucb,pg"


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["method.c=3"])


def test_every_key_has_a_comment():
    assert undocumented_keys(CONFIGS) == []
