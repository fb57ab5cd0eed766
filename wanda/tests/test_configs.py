"""Every experiment composes (with and without the Slurm launcher); keys are documented; typos fail."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from shared.testing import check_experiment, compose, undocumented_keys

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def _compose(overrides, name="train"):
    return compose(CONFIGS, overrides, name, hydra=True)


@pytest.mark.parametrize("launcher", [None, "slurm"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    check_experiment(CONFIGS, experiment, launcher, groups=("model", "method", "setting"))


def test_slurm_gpu_requests():
    # one-shot sweep over all models: one request for the array, sized for the largest model
    assert _compose(["+experiment=table3", "+launcher=slurm"]).hydra.launcher.gpus_per_node == 4
    # per-model submission (make paper): the model's own count
    cfg = _compose(["+experiment=table3", "model=llama2_7b", "resources.gpus_per_node=1", "+launcher=slurm"])
    assert cfg.hydra.launcher.gpus_per_node == 1
    assert _compose(["+experiment=table3_llama2_7b", "+launcher=slurm"]).hydra.launcher.gpus_per_node == 1
    assert _compose(["model=llama_65b", "+launcher=slurm"]).hydra.launcher.gpus_per_node == 4


def test_llama2_uses_4096_and_llama1_2048():
    assert _compose(["model=llama2_7b"]).model.seqlen == 4096
    assert _compose(["model=llama_7b"]).model.seqlen == 2048


def test_default_is_the_mini():
    cfg = _compose([])
    assert cfg.scale == "mini" and cfg.model.kind == "tiny" and cfg.method.name == "wanda"


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        _compose(["method.grouping=row"])


def test_every_key_has_a_comment():
    """CONVENTIONS section 3: every key carries a one-line comment (Hydra's own hydra: block excepted)."""
    assert undocumented_keys(CONFIGS) == []
