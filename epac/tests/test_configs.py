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
    if launcher == "slurm":  # small MLPs: CPU jobs
        assert cfg.hydra.launcher.gpus_per_node == 0


def test_default_and_the_mini_grid():
    cfg = compose(CONFIGS, [])
    assert cfg.study == "learn" and cfg.method.name == "augmented_lagrangian" and cfg.data.k == 500
    params = compose(CONFIGS, ["+experiment=mini"], hydra=True).hydra.sweeper.params
    assert params["method"] == "supervised,penalty_labeled,penalty,augmented_lagrangian,variational"
    assert params["data.n_labeled"] == "8,32,128" and params["seed"] == "0,1,2"


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["method.lam=3"])  # the augmented Lagrangian has no lam


def test_every_key_has_a_comment():
    assert undocumented_keys(CONFIGS) == []
