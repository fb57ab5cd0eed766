"""Every config composes (with and without the Slurm launcher); every key is documented; typos fail."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from shared.testing import compose, undocumented_keys

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
METHODS = sorted(p.stem for p in (CONFIGS / "method").glob("*.yaml"))


def _compose(overrides, name="train"):
    return compose(CONFIGS, overrides, name, hydra=True)


@pytest.mark.parametrize("launcher", [None, "slurm", "local"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    overrides = [f"+experiment={experiment}"] + ([f"+launcher={launcher}"] if launcher else [])
    cfg = _compose(overrides)
    assert cfg.scale in ("mini", "paper") and cfg.paper_ref
    job = {k: v for k, v in cfg.items() if k != "hydra"}
    OmegaConf.to_container(OmegaConf.create(job), resolve=True)
    assert cfg.hydra.sweeper.params, "an experiment is a table: its grid sits in hydra.sweeper.params"
    for choice in str(cfg.hydra.sweeper.params.get("method", "")).split(","):
        assert not choice or choice in METHODS
    if launcher == "slurm":
        assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")


@pytest.mark.parametrize("method", METHODS)
def test_methods_compose(method):
    cfg = _compose([f"method={method}"])
    assert cfg.method.name == method and cfg.method.kind in ("learned", "fixed")


def test_mini_is_the_default_scale():
    cfg = _compose([])
    assert cfg.scale == "mini" and cfg.data.name == "synthetic" and cfg.method.name == "sinkhorn"


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        _compose(["method.n_iter=5"])


def test_eval_config_composes():
    cfg = _compose(["run_dir=/tmp/x"], name="eval")
    assert cfg.split == "test"


def test_every_key_has_a_comment():
    """CONVENTIONS section 3: every key carries a one-line comment (Hydra's own hydra: block excepted)."""
    assert undocumented_keys(CONFIGS) == []
