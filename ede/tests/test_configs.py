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
    if launcher == "slurm":  # the tabular study and the CPU checks are CPU-only; Procgen runs get one GPU each
        assert cfg.hydra.launcher.gpus_per_node == (1 if experiment == "procgen" else 0)


def test_default_is_the_mini_ucb_arm():
    cfg = compose(CONFIGS, [])
    assert cfg.method.name == "ucb" and cfg.runs == 100 and cfg.episodes == 1000
    assert compose(CONFIGS, ["+experiment=mini"], hydra=True).hydra.sweeper.params.method == "epsilon,ucb,pg"


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["method.c=3"])


def test_every_key_has_a_comment():
    assert undocumented_keys(CONFIGS) == []
