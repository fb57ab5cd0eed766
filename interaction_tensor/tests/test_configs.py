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
    check_experiment(CONFIGS, experiment, launcher, groups=("data", "setting"))


def test_default_and_unknown_key():
    cfg = compose(CONFIGS, [])
    assert cfg.study == "ensemble" and cfg.variant == "random_half" and cfg.ensemble.subsample == 0.5
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["ensemble.width=3"])


def test_every_key_has_a_comment():
    assert undocumented_keys(CONFIGS) == []
