"""Streaming over webdataset shards (DataComp's format), per-shard parquet, per-shard resume, DataComp ``.npy`` uids.

A DataComp / img2dataset shard ``00000012.tar`` holds, per sample key, ``<key>.jpg`` (or png/webp), ``<key>.txt``
(the caption) and ``<key>.json`` (``uid``, ``caption``, ``url``, ...); a sidecar ``00000012.parquet`` holds the
pool's metadata, including DataComp's precomputed ``clip_b32_similarity_score`` / ``clip_l14_similarity_score``
(the LAION and CLIP-score baselines need nothing else). We read the tar with the standard library (stream mode:
one pass, no index), so a truncated shard yields the samples before the damage plus a failure record.

``process_shard`` writes ``<out>/<shard>.parquet``: one row per sample (failed ones included, with their reason):
uid, key, status, reason, n_boxes, boxes (xyxy pixels, flattened), ocr_text, clip_score (original image),
tmars_score (masked image), the sidecar's scores when present. It is written atomically after the whole shard,
so a killed run resumes by skipping shards whose parquet exists.
"""
from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IMAGE_EXT = ("jpg", "jpeg", "png", "webp")
SIDECAR_SCORES = ("clip_b32_similarity_score", "clip_l14_similarity_score")
COLUMNS = ["uid", "key", "status", "reason", "n_boxes", "boxes", "ocr_text", "clip_score", "tmars_score", "text_match",
           *SIDECAR_SCORES]


def iter_shard(path: str | Path) -> Iterator[dict]:
    """Samples of one tar shard as ``{key, uid, image (bytes|None), caption (str|None), reason}``; a shard that
    cannot be read to its end yields one ``{"key": None, "reason": ...}`` record after the samples it could read."""
    cur: dict | None = None

    def flush(s: dict) -> dict:
        meta = {}
        if s.get("json") is not None:
            try:
                meta = json.loads(s["json"])
            except (ValueError, UnicodeDecodeError):
                meta = {}
        caption = s["txt"].decode("utf-8", "replace") if s.get("txt") is not None else meta.get("caption")
        reason = None if s.get("image") is not None else "no image file in the shard for this key"
        return {"key": s["key"], "uid": str(meta.get("uid") or s["key"]), "image": s.get("image"), "caption": caption,
                "reason": reason}

    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name = member.name.rsplit("/", 1)[-1]
                key, _, ext = name.partition(".")
                ext = ext.lower()
                if cur is not None and key != cur["key"]:
                    yield flush(cur)
                    cur = None
                if cur is None:
                    cur = {"key": key}
                data = tar.extractfile(member).read()
                if ext in IMAGE_EXT:
                    cur["image"] = data
                elif ext in ("txt", "json"):
                    cur[ext] = data
        if cur is not None:
            yield flush(cur)
    except (tarfile.TarError, OSError, EOFError) as e:
        if cur is not None:
            yield flush(cur)
        yield {"key": None, "uid": None, "image": None, "caption": None,
               "reason": f"shard unreadable past this point: {type(e).__name__}: {e}"[:300]}


def read_sidecar(shard: str | Path) -> dict[str, dict]:
    """DataComp's metadata parquet beside the tar (uid -> precomputed scores), or {} when absent."""
    p = Path(shard).with_suffix(".parquet")
    if not p.exists():
        return {}
    import pandas as pd

    df = pd.read_parquet(p)
    cols = [c for c in SIDECAR_SCORES if c in df.columns]
    if "uid" not in df.columns or not cols:
        return {}
    return df.set_index("uid")[cols].to_dict("index")


def process_shard(shard: str | Path, out_dir: str | Path, scorer, detector, ring: int = 5, batch_size: int = 64,
                  text_match: bool = False, progress: bool = True) -> dict:
    """Detect, mask and score one shard; write ``<out_dir>/<shard>.parquet`` atomically. ``scorer(images,
    masked, captions, changed) -> (clip_scores, tmars_scores)`` (e.g. ``score.clip_and_tmars_scores`` with the model
    bound). Returns counts and
    images/s; an existing parquet is kept (resume) and reported as ``skipped``."""
    import pandas as pd
    from tqdm.auto import tqdm

    from tmars.mask import mask_text, quads_to_boxes
    from tmars.records import clean_caption, load_image
    from tmars.select import text_match as tm_rule

    shard = Path(shard)
    out = Path(out_dir) / (shard.name.split(".")[0] + ".parquet")
    if out.exists():
        return {"shard": shard.name, "skipped": True, "n": len(pd.read_parquet(out, columns=["uid"]))}
    if not shard.exists():
        raise FileNotFoundError(f"shard {shard} does not exist; check data.shards (a brace pattern or glob of "
                                "DataComp .tar shards, e.g. /data/datacomp/small/shards/{00000000..00001287}.tar)")
    sidecar = read_sidecar(shard)
    rows: list[dict] = []
    t0 = time.perf_counter()
    bar = tqdm(desc=shard.name, unit="img", disable=not progress, leave=False)
    batch: list[tuple[int, object, str]] = []

    def run_batch():
        if not batch:
            return
        ims = [b[1] for b in batch]
        caps = [b[2] for b in batch]
        quads = detector(ims)
        masked = [mask_text(np.asarray(im), q, ring) for im, q in zip(ims, quads)]
        s_clip, s_tmars = scorer(ims, masked, caps, [len(q) > 0 for q in quads])
        texts = getattr(detector, "texts", None) or [[] for _ in ims]
        matched = tm_rule(texts, caps) if text_match else [None] * len(ims)
        for (r, im, _), q, a, b, t, m in zip(batch, quads, s_clip, s_tmars, texts, matched):
            boxes = quads_to_boxes(q, im.height, im.width)
            rows[r].update(n_boxes=len(boxes), boxes=boxes.reshape(-1).astype(np.float32).tolist(),
                           clip_score=float(a), tmars_score=float(b), ocr_text=" | ".join(t), text_match=m)
        bar.update(len(batch))
        batch.clear()

    for s in iter_shard(shard):
        row = {"uid": s["uid"], "key": s["key"], "status": "failed", "reason": s["reason"], "n_boxes": 0, "boxes": [],
               "ocr_text": "", "clip_score": np.nan, "tmars_score": np.nan, "text_match": None}
        row.update({k: sidecar.get(s["uid"], {}).get(k, np.nan) for k in SIDECAR_SCORES})
        rows.append(row)
        if s["reason"] is not None:
            continue
        im, why = load_image(s["image"])
        cap, note = clean_caption(s["caption"])
        if im is None or cap is None:
            row["reason"] = why or note
            continue
        row.update(status="ok", reason=note)
        batch.append((len(rows) - 1, im, cap))
        if len(batch) >= batch_size:
            run_batch()
    run_batch()
    bar.close()
    dt = time.perf_counter() - t0
    df = pd.DataFrame(rows, columns=COLUMNS)  # an empty shard still writes a table, so it counts as done
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(out)
    n_ok = int((df.status == "ok").sum())
    return {"shard": shard.name, "skipped": False, "n": len(df), "ok": n_ok, "failed": len(df) - n_ok,
            "images_per_s": n_ok / max(dt, 1e-9)}


def uids_to_npy(uids, path: str | Path) -> np.ndarray:
    """DataComp's subset format: each 32-hex-digit uid as two uint64 halves (``np.dtype("u8,u8")``), sorted and
    unique, saved with ``np.save`` (what DataComp's ``resharder.py --subset-file`` reads)."""
    arr = np.array([(int(u[:16], 16), int(u[16:32], 16)) for u in uids], np.dtype("u8,u8"))
    arr = np.unique(np.sort(arr))
    np.save(path, arr)
    return arr


def npy_to_uids(path: str | Path) -> list[str]:
    """Inverse of ``uids_to_npy``: hex uids of a DataComp subset file."""
    arr = np.load(path)
    return [f"{int(a):016x}{int(b):016x}" for a, b in arr.tolist()]


def write_shard(path: str | Path, samples: list[dict]) -> None:
    """Write a DataComp-style tar shard from ``{"key", "uid", "image" (PIL), "caption"}`` dicts (tests, the mini,
    users converting their own data)."""
    with tarfile.open(path, "w") as tar:
        for s in samples:
            buf = io.BytesIO()
            s["image"].save(buf, format="JPEG", quality=95)
            for ext, data in (("jpg", buf.getvalue()), ("txt", s["caption"].encode()),
                              ("json", json.dumps({"uid": s["uid"], "caption": s["caption"]}).encode())):
                info = tarfile.TarInfo(f"{s['key']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
