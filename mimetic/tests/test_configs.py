"""Every experiment composes (with and without the Slurm launcher); keys are documented; typos fail."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from shared.testing import check_experiment, compose, undocumented_keys

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def test_the_issue_s_experiments_exist():
    assert {"cifar10", "cifar100", "svhn", "tiny_imagenet", "imagenet", "lm_wikitext103", "ablation_alpha_beta",
            "mini"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("launcher", [None, "slurm"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    cfg = check_experiment(CONFIGS, experiment, launcher, groups=("model", "data", "init"))
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == cfg.resources.gpus_per_node == 1  # one GPU per run


def test_tables_compare_default_and_mimetic_over_seeds():
    for e in ("cifar10", "cifar100", "svhn", "tiny_imagenet"):
        p = compose(CONFIGS, [f"+experiment={e}"], hydra=True).hydra.sweeper.params
        assert p.init == "default,mimetic" and p.seed == "0,1,2", e
    mini = compose(CONFIGS, ["+experiment=mini"], hydra=True)
    assert mini.hydra.sweeper.params.seed == "0,1,2,3,4" and mini.train.epochs == 150
    assert compose(CONFIGS, ["+experiment=mini_torch_init"], hydra=True).hydra.sweeper.params.init == \
        "torch,torch_mimetic"


def test_recipe_for_32x32():
    cfg = compose(CONFIGS, ["+experiment=cifar10"])
    assert (cfg.model.patch_size, cfg.model.embed_dim, cfg.model.depth, cfg.model.num_heads) == (2, 192, 12, 3)
    assert cfg.model.pos_embed == "sincos" and not cfg.model.class_token and cfg.model.global_pool == "avg"
    assert (cfg.train.lr, cfg.train.weight_decay, cfg.train.epochs, cfg.train.warmup_epochs) == (1e-3, 0.01, 200, 10)
    assert cfg.data.auto_augment == "rand-m9-mstd0.5-inc1" and cfg.data.batch_size == 512
    assert (cfg.init.alpha1, cfg.init.beta1) == (0.7, 0.7)


def test_default_is_the_mini_and_short():
    cfg = compose(CONFIGS, [])
    assert cfg.scale == "mini" and cfg.data.name == "digits" and cfg.init.name == "mimetic"
    assert cfg.train.epochs <= 30


def test_unknown_key_fails():
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["train.learning_rate=0.1"])


def test_every_key_has_a_comment():
    """CONVENTIONS section 3: every key carries a one-line comment (Hydra's own hydra: block excepted)."""
    assert undocumented_keys(CONFIGS) == []
