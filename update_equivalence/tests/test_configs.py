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
    cfg = check_experiment(CONFIGS, experiment, launcher, groups=("method",))
    if launcher == "slurm":  # every study here is CPU-only
        assert cfg.hydra.launcher.gpus_per_node == 0


def test_default_is_exact_mmd_search_in_kuhn():
    cfg = compose(CONFIGS, [])
    assert cfg.study == "exact" and cfg.game == "kuhn_poker" and cfg.method.name == "mmds"
    params = compose(CONFIGS, ["+experiment=mini"], hydra=True).hydra.sweeper.params
    assert params["method.eta"] == "0.1,0.5,1.0,2.0,5.0,inf"


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["method.c=3"])


def test_every_key_has_a_comment():
    assert undocumented_keys(CONFIGS) == []
