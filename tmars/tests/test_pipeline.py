"""The Hydra entry points end to end on tiny settings: a mini cell (train.py in a subprocess, as users run it),
and the paper-scale stages score -> select on locally written shards with a tiny open_clip checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shared.testing import compose

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TINY_MINI = ["data.n=150", "data.n_test=20", "scorer.train.n=100", "scorer.train.steps=5", "student.steps=3",
             "detector.workers=1", "progress=false"]


def test_train_py_runs_a_mini_cell_and_caches(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", WANDB_MODE="disabled")
    cmd = [sys.executable, "train.py", *TINY_MINI, f"cache_dir={tmp_path / 'cache'}"]
    subprocess.run(cmd + [f"run_dir={tmp_path / 'a'}"], cwd=ROOT, env=env, check=True, capture_output=True)
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())["metrics"]
    assert m["subset/n"] == int(150 * 0.45) + 1  # DataComp: n + 1 kept (float scores: no ties)
    assert 0 <= m["scorer/zs_clean"] <= 1
    assert 0 <= m["test/zs_clean"] <= 1 and m["train/samples_seen"] == 3 * 128
    assert 0 <= m["detector/recall"] <= 1
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [c.split("-")[0] for c in cached] == ["pool", "scorer"]
    subprocess.run(cmd + [f"run_dir={tmp_path / 'b'}", "method=text_match"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    m2 = json.loads((tmp_path / "b" / "metrics.json").read_text())["metrics"]
    assert m2["subset/kept_word_only"] == 0.0 and m2["subset/kept_shape_word"] == 0.0 and m2["subset/kept_clean"] == 1


def test_bad_config_key_is_named(tmp_path):
    r = subprocess.run([sys.executable, "train.py", "student.stepz=3", f"run_dir={tmp_path}"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "stepz" in r.stderr


@pytest.fixture
def shards(tmp_path):
    # tests/ is on sys.path (pytest's rootdir-less import); "tests.test_shards" could resolve to a site-packages
    # "tests" package instead (opensimplex, a Crafter dependency of ede, ships one)
    from test_shards import _samples

    from tmars.shards import write_shard

    d = tmp_path / "pool"
    d.mkdir()
    for k in range(3):
        samples = _samples(5, seed=k) if k < 2 else []
        for i, s in enumerate(samples):
            s["uid"] = f"{100 * k + i + 1:032x}"  # uids are unique across a pool
        write_shard(d / f"{k:08d}.tar", samples)
    for s_ in range(2):  # DataComp's sidecar metadata with precomputed B/32 scores
        pd.DataFrame({"uid": [f"{100 * s_ + i + 1:032x}" for i in range(5)],
                      "clip_b32_similarity_score": [0.2, 0.25, 0.28, 0.3, 0.35]}).to_parquet(d / f"{s_:08d}.parquet")
    return d


def test_score_then_select(shards, tmp_path, tiny_clip_ckpt):
    from tmars.pipeline import run
    from tmars.shards import npy_to_uids

    common = ["data=datacomp_small", f"data.shards='{shards}/{{00000000..00000003}}.tar'",
              f"data.scores_dir={tmp_path / 'scores'}", "scorer=l14", "scorer.model=tmars-tiny",
              f"scorer.pretrained={tiny_clip_ckpt}", "detector.workers=1", "progress=false",
              "scale=paper"]
    cfg = compose(CONFIGS, common + ["stage=score", f"run_dir={tmp_path / 'score'}"])
    run(cfg)
    m = json.loads((tmp_path / "score" / "metrics.json").read_text())["metrics"]
    assert m["score/shards"] == 3 and m["score/missing"] == 1 and m["score/samples"] == 10 and m["score/ok"] == 10
    assert (tmp_path / "score" / "missing_shards.txt").read_text().strip().endswith("00000003.tar")
    df = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "scores").glob("*.parquet")))
    assert df.clip_b32_similarity_score.notna().all() and len(df) == 10
    for meth, expect in [("no_filter", 10), ("laion", 6), ("tmars", int(10 * 0.45) + 1)]:
        cfg = compose(CONFIGS, common + ["stage=select", f"method={meth}", f"run_dir={tmp_path / meth}"])
        run(cfg)
        sel = json.loads((tmp_path / meth / "metrics.json").read_text())["metrics"]
        uids = npy_to_uids(tmp_path / meth / "uids.npy")
        assert sel["select/kept"] == len(uids) and (len(uids) == expect or meth == "tmars" and len(uids) >= expect)
    os.remove(tmp_path / "scores" / "00000001.parquet")
    with pytest.raises(FileNotFoundError, match="00000001.tar"):
        run(compose(CONFIGS, common + ["stage=select", f"run_dir={tmp_path / 'x'}"]))
