"""Streaming over webdataset shards: per-shard parquet with failures recorded, resume, selection, resharding,
open_clip's trainer flags."""
import io
import tarfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tmars.score import clip_and_tmars_scores
from tmars.shards import iter_shard, process_shard, write_shard


class BoxOnTextDetector:
    """Stub detector: one box on images whose top-left pixel is black (the test draws text there), none else."""

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        dark = [int(np.asarray(im)[:4, :4].astype(int).sum()) < 16 * 3 * 30 for im in images]  # JPEG: not exactly 0
        return [np.array([[[0, 0], [12, 0], [12, 8], [0, 8]]], float) if d else np.zeros((0, 4, 2)) for d in dark]


def _samples(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        arr = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
        if i % 2 == 0:
            arr[:8, :12] = 0
        out.append({"key": f"{i:09d}", "uid": f"{i + 1:032x}", "image": Image.fromarray(arr),
                    "caption": f"a photo number {i}"})
    return out


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def shard_dir(tmp_path):
    d = tmp_path / "shards"
    d.mkdir()
    write_shard(d / "00000000.tar", _samples(6))
    with tarfile.open(d / "00000001.tar", "w") as tar:  # bad samples, each must become a failure record
        write = lambda s: [_add(tar, f"{s['key']}.{e}", v) for e, v in s["files"]]  # noqa: E731
        good = io.BytesIO()
        Image.new("L", (30, 20), 128).save(good, format="PNG")  # grayscale: converted, not failed
        write({"key": "a", "files": [("png", good.getvalue()), ("txt", b"grey"), ("json", b'{"uid": "' + b"a" * 32
                                                                                     + b'"}')]})
        write({"key": "b", "files": [("jpg", b"not a jpeg"), ("txt", b"corrupt"), ("json", b'{"uid": "' + b"b" * 32
                                                                                          + b'"}')]})
        write({"key": "c", "files": [("txt", b"no image"), ("json", b'{"uid": "' + b"c" * 32 + b'"}')]})
        write({"key": "d", "files": [("png", good.getvalue()), ("txt", b"   "), ("json", b'{"uid": "' + b"d" * 32
                                                                                  + b'"}')]})
    raw = (d / "00000000.tar").read_bytes()
    (d / "00000002.tar").write_bytes(raw[: len(raw) // 2 + 700])  # truncated mid-way
    return d


def test_iter_shard_groups_members_and_reports_damage(shard_dir):
    ok = list(iter_shard(shard_dir / "00000000.tar"))
    assert [s["uid"] for s in ok] == [f"{i + 1:032x}" for i in range(6)] and all(s["image"] for s in ok)
    assert ok[0]["caption"] == "a photo number 0"
    cut = list(iter_shard(shard_dir / "00000002.tar"))
    assert cut[-1]["key"] is None and "unreadable" in cut[-1]["reason"] and 0 < len(cut) - 1 < 6


def test_process_shard_records_everything_and_resumes(shard_dir, tmp_path, tiny_clip):
    model, pre, tok = tiny_clip
    scorer = lambda ims, masked, caps, changed: clip_and_tmars_scores(model, pre, tok, ims, masked, caps, changed)  # noqa
    det = BoxOnTextDetector()
    out = tmp_path / "scores"
    r = process_shard(shard_dir / "00000000.tar", out, scorer, det, ring=2, batch_size=4, progress=False)
    assert r["n"] == 6 and r["ok"] == 6 and r["images_per_s"] > 0 and det.calls == 2  # batches of 4 + 2
    df = pd.read_parquet(out / "00000000.parquet")
    with_text = df.n_boxes > 0
    assert with_text.tolist() == [True, False] * 3
    assert np.allclose(df.tmars_score[~with_text], df.clip_score[~with_text]), "no boxes: T-MARS == CLIP score"
    assert not np.allclose(df.tmars_score[with_text], df.clip_score[with_text])
    assert df.boxes[0].tolist() == [0, 0, 12, 8]
    # the same scores as scoring the masked images directly
    from tmars.mask import mask_text
    ims = [s["image"].convert("RGB") for s in _samples(6)]
    ims = [Image.open(io.BytesIO(_jpeg(im))).convert("RGB") for im in ims]
    masked = [mask_text(np.asarray(im), q, 2) for im, q in zip(ims, det(ims))]
    caps = [f"a photo number {int(k)}" for k in df.key]
    _, direct = clip_and_tmars_scores(model, pre, tok, ims, masked, caps, [True] * 6)
    assert np.allclose(direct, df.tmars_score, atol=1e-5)

    bad = process_shard(shard_dir / "00000001.tar", out, scorer, det, progress=False)
    dfb = pd.read_parquet(out / "00000001.parquet").set_index("key")
    assert bad["n"] == 4 and bad["ok"] == 1 and bad["failed"] == 3
    assert dfb.loc["a", "status"] == "ok"
    assert "unreadable image" in dfb.loc["b", "reason"] and "no image" in dfb.loc["c", "reason"]
    assert dfb.loc["d", "reason"] == "empty caption" and np.isnan(dfb.loc["d", "tmars_score"])

    cut = process_shard(shard_dir / "00000002.tar", out, scorer, det, progress=False)
    dfc = pd.read_parquet(out / "00000002.parquet")
    assert cut["n"] == len(dfc) and dfc.status.iloc[-1] == "failed" and "unreadable" in dfc.reason.iloc[-1]

    calls = det.calls
    again = process_shard(shard_dir / "00000000.tar", out, scorer, det, progress=False)
    assert again["skipped"] and again["n"] == 6 and det.calls == calls, "a finished shard is not redone"
    with pytest.raises(FileNotFoundError, match="data.shards"):
        process_shard(shard_dir / "00000009.tar", out, scorer, det, progress=False)


def _jpeg(im):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_reshard_and_open_clip_flags(shard_dir, tmp_path):
    from open_clip_train.params import parse_args

    from tmars.train import open_clip_train_args, reshard

    keep = {f"{i + 1:032x}" for i in (0, 3, 4)}
    n = reshard([shard_dir / "00000000.tar", shard_dir / "missing.tar"], keep, tmp_path / "sub", shard_size=2,
                progress=False)
    assert n == 3 and sorted(p.name for p in (tmp_path / "sub").glob("*.tar")) == ["00000000.tar", "00000001.tar"]
    got = [s["key"] for p in sorted((tmp_path / "sub").glob("*.tar")) for s in iter_shard(p)]
    assert got == ["000000000", "000000003", "000000004"]
    t = {"model": "ViT-B-32", "samples_seen": 128_000_000, "batch_size": 512, "lr": 5e-4, "warmup": 500, "wd": 0.2,
         "beta2": 0.98, "num_checkpoints": 5, "workers": 8, "precision": "amp", "seed": 0, "report_to": "",
         "extra": []}
    args = parse_args(open_clip_train_args(tmp_path / "sub", n, tmp_path / "logs", t))
    assert args.train_data == f"{tmp_path / 'sub'}/{{00000000..00000001}}.tar"
    assert args.train_num_samples == 25_600_000 and args.epochs == 5 and args.dataset_resampled
    assert (args.lr, args.warmup, args.wd, args.beta2, args.precision) == (5e-4, 500, 0.2, 0.98, "amp")
    assert args.local_loss and args.gather_with_grad and args.grad_checkpointing and args.resume == "latest"
