"""Every experiment composes (with and without the Slurm launcher); keys are documented; typos fail."""
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException

from shared.testing import check_experiment, compose, undocumented_keys

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))


def test_the_issue_s_experiments_exist():
    assert {"datacomp_small", "datacomp_medium", "laion_scaling", "mini"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("launcher", [None, "slurm"])
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_compose(experiment, launcher):
    cfg = check_experiment(CONFIGS, experiment, launcher, groups=("method",))
    if launcher == "slurm":
        assert cfg.hydra.launcher.gpus_per_node == cfg.resources.gpus_per_node


def test_table_rows():
    rows = lambda e: compose(CONFIGS, [f"+experiment={e}"], hydra=True).hydra.sweeper.params.method.split(",")  # noqa
    assert rows("datacomp_small") == ["no_filter", "clip_score", "tmars", "text_match"]
    assert set(rows("datacomp_medium")) == {"no_filter", "laion", "clip_score", "text_match", "tmars"}
    assert set(rows("mini")) == {"no_filter", "clip_score", "tmars", "tmars_rapidocr", "text_match"}
    med = compose(CONFIGS, ["+experiment=datacomp_medium"])
    assert med.scorer.model == "ViT-L-14" and med.scorer.pretrained == "openai" and med.method.fraction == 0.3
    assert med.train.model == "ViT-B-32" and med.train.lr == 5e-4 and med.train.warmup == 500


def test_the_scoring_step_composes_with_one_method_and_a_shard_range():
    """The scoring step of a table is `-m +experiment=... stage=score method=tmars 'shard.index=range(0,64)'`
    (that a command-line value replaces the experiment's grid is exercised by the slow test's `seed=0,1`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = compose(CONFIGS, ["+experiment=datacomp_small", "stage=score", "method=tmars"])
    assert cfg.stage == "score" and cfg.method.name == "tmars"
    parsed = OverridesParser.create().parse_overrides(["shard.index=range(0,64)"])
    assert len(list(parsed[0].sweep_iterator())) == 64


def test_method_rows_share_one_schema():
    names = {}
    for p in (CONFIGS / "method").glob("*.yaml"):
        overrides = [f"method={p.stem}"] + (["method.uids_file=x.npy"] if p.stem == "tmars_intersect" else [])
        m = compose(CONFIGS, overrides).method
        names[p.stem] = m.name
        assert set(m) == {"name", "kind", "score", "fraction", "threshold", "boxes", "intersect", "uids_file"} | (
            {"language_column"} if p.stem == "laion" else set())
    assert all(k == v for k, v in names.items())


def test_default_is_the_mini():
    cfg = compose(CONFIGS)
    assert cfg.stage == "mini" and cfg.scale == "mini" and cfg.method.name == "tmars" and cfg.data.name == "synthetic"


def test_every_key_is_documented():
    assert undocumented_keys(CONFIGS) == []


def test_typos_fail():
    with pytest.raises(ConfigCompositionException):
        compose(CONFIGS, ["method.fracton=0.3"])
