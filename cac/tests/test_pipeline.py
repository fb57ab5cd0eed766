"""The entry points: the mini on a toy model trained for a few steps, and the paper-scale path on tiny pipelines
loaded with from_pretrained from local folders (COCO boxes, GLIGEN, MD, non-square Cityscapes maps, resume)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cac import pipeline
from shared.testing import compose

PROJECT = Path(__file__).resolve().parents[1]


def toy(cache, *extra):
    return [f"model.path={cache}/toy", "model.arch.size=8", "model.arch.hidden=16", "model.arch.layers=1",
            "model.arch.heads=2", "model.arch.text_dim=16", "model.train.steps=4", "model.train.batch_size=4",
            "model.train.threads=1", "data.n_layouts=8", "data.box=3", "sampling.steps=2", "progress=false", *extra]


def metrics(run_dir):
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def test_default_train_py_writes_metrics_json(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    out = subprocess.run([sys.executable, "train.py", f"run_dir={tmp_path}/run", *toy(tmp_path)], cwd=PROJECT,
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    rec = metrics(tmp_path / "run")
    m = rec["metrics"]
    assert rec["status"] == "completed" and rec["scale"] == "mini"
    assert 0 <= m["test/mass_in_box"] <= 1 and 0 <= m["chance/mass_in_box"] <= 1
    assert m["cost/denoiser_calls_per_step"] == 1 and m["cost/denoiser_samples_per_image"] == 4  # 2 steps x CFG
    assert (tmp_path / "run" / "samples.png").exists() and (tmp_path / "toy" / "denoiser.safetensors").exists()


@pytest.mark.parametrize("method", ["sd", "md_cac", "cac_per_prompt"])
def test_mini_methods(tmp_path, method):
    cfg = compose(PROJECT / "configs", [f"method={method}", "data.n_objects=2", f"run_dir={tmp_path}/run",
                                         "save_images=false", *toy(tmp_path)])
    pipeline.run(cfg)
    m = metrics(tmp_path / "run")["metrics"]
    steps_x_cfg = 2 * 2
    # md_cac: round(0.3 * 2) = 1 MD step (1 shared unconditional + 3 regions), then 1 CAC step under CFG
    expected = {"sd": steps_x_cfg, "cac_per_prompt": steps_x_cfg, "md_cac": (1 + 3) + 2}[method]
    assert m["cost/denoiser_samples_per_image"] == expected


@pytest.fixture(scope="module")
def local_pipes(tmp_path_factory):
    from cac.tiny import build_tiny_pipeline

    d = tmp_path_factory.mktemp("hub")
    return {k: build_tiny_pipeline(d / k, k) for k in ("sd", "gligen")}


def paper(tmp_path, local_pipes, row, make_coco, *extra):
    model = "gligen" if row.startswith("gligen") else "sd"
    return compose(PROJECT / "configs", [
        "+experiment=coco_boxes", f"row={row}", f"model.id={local_pipes[model]}", "model.height=32",
        "model.width=32", f"data.root={make_coco(tmp_path / 'coco', n=2)}", "sampling.steps=2", "eval.detector=none",
        "eval.clip_model=", "eval.fid=false", f"run_dir={tmp_path}/run", f"image_dir={tmp_path}/images",
        "device=cpu"] + list(extra))


@pytest.mark.parametrize("row", ["sd21", "sd21_cac", "md_cac", "gligen", "gligen_cac"])
def test_paper_path_generates_every_layout(tmp_path, local_pipes, row, make_coco):
    pipeline.run(paper(tmp_path, local_pipes, row, make_coco))
    rec = metrics(tmp_path / "run")
    assert rec["status"] == "completed" and rec["scale"] == "paper" and rec["metrics"]["gen/images"] == 2
    assert sorted(p.name for p in (tmp_path / "images").glob("*.png")) == ["1.png", "2.png"]


def test_paper_path_resumes_and_evaluates_without_regenerating(tmp_path, local_pipes, monkeypatch, make_coco):
    pipeline.run(paper(tmp_path, local_pipes, "sd21_cac", make_coco))
    first = (tmp_path / "images" / "1.png").read_bytes()

    def no_load(*_):
        raise AssertionError("finished images must not be generated again")

    monkeypatch.setattr(pipeline, "load_pipeline", no_load)
    pipeline.run(paper(tmp_path, local_pipes, "sd21_cac", make_coco))
    assert (tmp_path / "images" / "1.png").read_bytes() == first


def test_cityscapes_maps_non_square(tmp_path, local_pipes, make_cityscapes):
    from PIL import Image

    cfg = compose(PROJECT / "configs", [
        "+experiment=cityscapes_seg", "row=sd21_cac", f"model.id={local_pipes['sd']}", "model.height=32",
        "model.width=64", f"data.root={make_cityscapes(tmp_path / 'cs')}", "sampling.steps=2", "eval.segmenter=",
        "eval.clip_model=", "eval.fid=false", f"run_dir={tmp_path}/run", f"image_dir={tmp_path}/images",
        "device=cpu"])
    pipeline.run(cfg)
    (img,) = (tmp_path / "images").glob("*.png")
    assert Image.open(img).size == (64, 32)


def test_missing_weights_name_the_download(tmp_path, make_coco):
    cfg = compose(PROJECT / "configs", ["+experiment=coco_boxes", f"model.id={tmp_path}/nothing",
                                        f"data.root={make_coco(tmp_path / 'coco', n=1)}", f"run_dir={tmp_path}/r",
                                        f"image_dir={tmp_path}/images"])
    with pytest.raises(RuntimeError, match="huggingface-cli download"):
        pipeline.run(cfg)
    assert metrics(tmp_path / "r")["status"] == "failed"


def test_image_seeds_differ_for_ids_sharing_their_last_digits():
    ids = ["lindau_000000_000019", "munster_000000_000019", "lindau_000001_000019"]
    seeds = {pipeline.image_seed(0, u) for u in ids}
    assert len(seeds) == 3 and pipeline.image_seed(0, ids[0]) == pipeline.image_seed(0, ids[0])
    assert pipeline.image_seed(1, ids[0]) != pipeline.image_seed(0, ids[0])


def test_paper_rows_share_one_image_folder_across_shards():
    a = compose(PROJECT / "configs", ["+experiment=coco_boxes", "row=md_cac", "shard.index=0", "shard.count=8"])
    b = compose(PROJECT / "configs", ["+experiment=coco_boxes", "row=md_cac", "shard.index=5", "shard.count=8"])
    c = compose(PROJECT / "configs", ["+experiment=coco_boxes", "row=sd21_cac"])
    assert a.image_dir == b.image_dir != c.image_dir and not a.eval.fid


def test_evaluate_images_with_every_metric_on(tmp_path, monkeypatch, make_coco, clip_scorer, tiny_owlvit):
    """The evaluation branch end to end (detector, CLIP, local CLIP, FID/KID) with tiny models in place of the
    hub ones; FID's Inception is replaced by a fixed random projection."""
    import numpy as np
    import torch
    from PIL import Image

    from cac import data
    from cac import metrics as M

    lays = data.load_coco_boxes(make_coco(tmp_path / "coco", n=3))
    d = tmp_path / "images"
    d.mkdir()
    for i, lay in enumerate(lays):
        Image.fromarray(np.full((32, 32, 3), 60 * i, dtype=np.uint8)).save(d / f"{lay.uid}.png")
    monkeypatch.setattr(M, "OwlViTDetector", lambda *a, **k: tiny_owlvit)
    monkeypatch.setattr(M, "ClipScorer", lambda *a, **k: clip_scorer)
    proj = torch.randn(3 * 299 * 299, 4, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(M, "inception_features", lambda x, device: (x.flatten(1).float() @ proj).double().numpy())
    cfg = compose(PROJECT / "configs", ["+experiment=coco_boxes", "eval.fid=true", "eval.kid_subset_size=3"])
    out = pipeline.evaluate_images(cfg, lays, d, "cpu")
    assert out["eval/images"] == 3
    for k in ("eval/box_acc", "eval/box_iou", "eval/present", "eval/position", "eval/local_clip"):
        assert 0 <= out[k] <= 100, k
    assert out["eval/clip"] >= 0 and np.isfinite(out["eval/fid"]) and np.isfinite(out["eval/kid"])
    # a hit or a placement needs a same-label detection
    assert out["eval/box_acc"] <= out["eval/present"] and out["eval/position"] <= out["eval/present"]
