"""Every experiment composes (with and without the Slurm launcher); keys are documented; typos fail."""
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def _compose(overrides, name="train"):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=True)


@pytest.mark.parametrize("launcher", [None, "slurm"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    cfg = _compose([f"+experiment={experiment}"] + ([f"+launcher={launcher}"] if launcher else []))
    assert cfg.scale in ("mini", "paper") and cfg.paper_ref
    OmegaConf.to_container(OmegaConf.create({k: v for k, v in cfg.items() if k != "hydra"}), resolve=True)
    params = cfg.hydra.sweeper.params
    assert params, "an experiment is a table: its grid sits in hydra.sweeper.params"
    for group in ("model", "method", "setting"):
        for choice in str(params.get(group, "")).split(","):
            assert not choice or (CONFIGS / group / f"{choice}.yaml").exists(), (group, choice)
    if launcher == "slurm":
        assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")


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
    for path in CONFIGS.rglob("*.yaml"):
        in_hydra = False
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith(("#", "-")):
                continue
            if not line.startswith(" "):
                in_hydra = line.startswith(("hydra:", "defaults:"))
            if in_hydra or not re.match(r"^\s*[A-Za-z_][\w.]*:\s*\S", line):
                continue
            assert "#" in line, f"{path.relative_to(CONFIGS)}: undocumented key: {line.strip()}"
