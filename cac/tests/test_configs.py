"""Every experiment composes (with and without the Slurm launcher); keys are documented; typos fail."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from shared.testing import check_experiment, compose, undocumented_keys

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def _compose(overrides, name="train"):
    return compose(CONFIGS, overrides, name, hydra=True)


def test_the_issue_s_experiments_exist():
    assert {"coco_boxes", "cc500", "cityscapes_seg", "md_ratio_sweep", "mini"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("launcher", [None, "slurm"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    cfg = check_experiment(CONFIGS, experiment, launcher, groups=("model", "method", "row"))
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == 1


@pytest.mark.parametrize("row", sorted(p.stem for p in (CONFIGS / "row").glob("*.yaml")))
def test_table_rows_pick_model_and_method(row):
    cfg = _compose(["+experiment=coco_boxes", f"row={row}"])
    model, _, method = row.partition("_")
    if model in ("md",):
        assert cfg.model.name == "sd21" and cfg.method.runner == "md"
    else:
        assert cfg.model.name == model and cfg.method.name == (method or "sd")
    assert cfg.data.name == "coco_boxes" and cfg.sampling.steps == 50


def test_table1_rows():
    params = _compose(["+experiment=coco_boxes"]).hydra.sweeper.params
    assert params.row.split(",") == ["sd21", "sd21_cac", "md", "md_cac", "gligen", "gligen_cac"]


def test_md_ratio_sweep_grid():
    params = _compose(["+experiment=md_ratio_sweep"]).hydra.sweeper.params
    assert [float(r) for r in str(params["method.md_ratio"]).split(",")] == [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]


def test_default_is_the_mini():
    cfg = _compose([])
    assert cfg.scale == "mini" and cfg.model.kind == "toy"
    assert cfg.method.name == "cac" and cfg.method.normalize == "none"


def test_every_key_is_documented():
    assert undocumented_keys(CONFIGS) == []


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigCompositionException):
        _compose(["method.normalise=renorm"])
