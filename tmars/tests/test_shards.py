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


def test_iter_shard_groups_members_and_reports_damage(shard_dir, tmp_path):
    ok = list(iter_shard(shard_dir / "00000000.tar"))
    assert [s["uid"] for s in ok] == [f"{i + 1:032x}" for i in range(6)] and all(s["image"] for s in ok)
    assert ok[0]["caption"] == "a photo number 0" and all(s["reason"] is None for s in ok)
    cut = list(iter_shard(shard_dir / "00000002.tar"))
    assert cut[-1]["key"] is None and "unreadable" in cut[-1]["reason"] and 0 < len(cut) - 1 < 6
    # cut exactly at a member boundary: tarfile raises nothing, the missing end-of-archive marker gives it away
    raw = (shard_dir / "00000000.tar").read_bytes()
    with tarfile.open(shard_dir / "00000000.tar") as t:
        members = t.getmembers()
    boundary = members[6].offset  # header of the 3rd sample's first file
    (tmp_path / "cut.tar").write_bytes(raw[:boundary])
    got = list(iter_shard(tmp_path / "cut.tar"))
    assert [s["uid"] for s in got[:-1]] == [f"{i + 1:032x}" for i in range(2)] and "truncated" in got[-1]["reason"]
    import gzip  # a gzipped shard: offsets are uncompressed, so the end-marker check must not misfire

    (tmp_path / "z.tar.gz").write_bytes(gzip.compress(raw))
    assert [s["reason"] for s in iter_shard(tmp_path / "z.tar.gz")] == [None] * 6


def test_samples_without_a_datacomp_uid_fail(tmp_path):
    with tarfile.open(tmp_path / "x.tar", "w") as tar:
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, format="PNG")
        for key, meta in (("k1", b'{"uid": "123"}'), ("k2", b"{broken"), ("k3", b'{"uid": "' + b"0" * 32 + b'"}')):
            _add(tar, f"{key}.png", buf.getvalue())
            _add(tar, f"{key}.txt", b"cap")
            _add(tar, f"{key}.json", meta)
    got = list(iter_shard(tmp_path / "x.tar"))
    assert [s["reason"] is None for s in got] == [False, False, True] and "32 hex" in got[0]["reason"]
    assert got[0]["uid"] == "key:k1" and got[2]["uid"] == "0" * 32


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


def test_resume_refuses_tables_of_other_settings_and_bad_samples_fail_alone(shard_dir, tmp_path, tiny_clip):
    model, pre, tok = tiny_clip

    def scorer(ims, masked, caps, changed):
        if any(c.endswith(" 3") for c in caps):  # one sample whose scoring breaks
            raise RuntimeError("boom")
        return clip_and_tmars_scores(model, pre, tok, ims, masked, caps, changed)

    out = tmp_path / "scores"
    r = process_shard(shard_dir / "00000000.tar", out, scorer, BoxOnTextDetector(), progress=False,
                      fingerprint={"ring": 5})
    df = pd.read_parquet(out / "00000000.parquet")
    assert r["ok"] == 5 and r["failed"] == 1 and "boom" in df.reason[3] and df.tmars_score.drop(3).notna().all()
    assert process_shard(shard_dir / "00000000.tar", out, scorer, None, fingerprint={"ring": 5})["skipped"]
    with pytest.raises(ValueError, match=r"\['ring'\].*new folder"):
        process_shard(shard_dir / "00000000.tar", out, scorer, None, fingerprint={"ring": 2})


def test_uids_listed_in_the_metadata_but_absent_from_the_tar_are_failures(shard_dir, tmp_path, tiny_clip):
    model, pre, tok = tiny_clip
    scorer = lambda ims, masked, caps, changed: clip_and_tmars_scores(model, pre, tok, ims, masked, caps, changed)  # noqa
    uids = [f"{i + 1:032x}" for i in range(6)] + ["e" * 32, "f" * 32]
    pd.DataFrame({"uid": uids, "clip_b32_similarity_score": np.linspace(0, 1, 8),
                  "status": ["success"] * 7 + ["failed_to_download"], "error_message": [None] * 7 + ["HTTP 404"]}
                 ).to_parquet(shard_dir / "00000000.parquet")
    r = process_shard(shard_dir / "00000000.tar", tmp_path / "s", scorer, BoxOnTextDetector(), progress=False)
    df = pd.read_parquet(tmp_path / "s" / "00000000.parquet").set_index("uid")
    assert r["n"] == 8 and r["ok"] == 6 and r["failed"] == 2
    assert "not in the tar" in df.loc["e" * 32, "reason"] and "HTTP 404" in df.loc["f" * 32, "reason"]
    assert df.clip_b32_similarity_score.notna().all()


def _jpeg(im):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_reshard_and_open_clip_flags(shard_dir, tmp_path):
    from open_clip_train.params import parse_args

    from tmars.train import open_clip_train_args, reshard, train_command

    keep = {f"{i + 1:032x}" for i in (0, 3, 4)}
    n = reshard([shard_dir / "00000000.tar", shard_dir / "missing.tar"], keep, tmp_path / "sub", shard_size=2,
                progress=False)
    assert n == 3 and sorted(p.name for p in (tmp_path / "sub").glob("*.tar")) == ["00000000.tar", "00000001.tar"]
    got = [s["key"] for p in sorted((tmp_path / "sub").glob("*.tar")) for s in iter_shard(p)]
    assert got == ["000000000", "000000003", "000000004"]
    t = {"model": "ViT-B-32", "samples_seen": 128_000_000, "batch_size": 512, "lr": 5e-4, "warmup": 500, "wd": 0.2,
         "beta2": 0.98, "num_checkpoints": 5, "workers": 8, "precision": "amp", "seed": 0, "report_to": "",
         "extra": []}
    cmd = open_clip_train_args(tmp_path / "sub", n, tmp_path / "logs", t)
    assert train_command(cmd, 8)[2:5] == ["torch.distributed.run", "--standalone", "--nproc_per_node=8"]
    assert train_command(cmd, 1)[1:3] == ["-m", "open_clip_train.main"]
    args = parse_args(cmd)
    assert args.train_data == f"{tmp_path / 'sub'}/{{00000000..00000001}}.tar"
    assert args.train_num_samples == 25_600_000 and args.epochs == 5 and args.dataset_resampled
    assert (args.lr, args.warmup, args.wd, args.beta2, args.precision) == (5e-4, 500, 0.2, 0.98, "amp")
    assert args.local_loss and args.gather_with_grad and args.grad_checkpointing and args.resume == "latest"
