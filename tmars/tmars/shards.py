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
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

IMAGE_EXT = ("jpg", "jpeg", "png", "webp")
UID = re.compile(r"[0-9a-f]{32}")
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
        uid = str(meta.get("uid") or "")
        reason = None if s.get("image") is not None else "no image file in the shard for this key"
        if not UID.fullmatch(uid):  # DataComp's subset files need the 32-hex uid; the tar key is no substitute
            reason = reason or f"no DataComp uid (32 hex digits) in the sample's json (got {uid[:40]!r})"
            uid = f"key:{s['key']}"
        return {"key": s["key"], "uid": uid, "image": s.get("image"), "caption": caption, "reason": reason}

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
            end = tar.offset  # where the end-of-archive marker (two zero blocks) must start
            plain = getattr(tar.fileobj, "comptype", "tar") == "tar"  # offsets are uncompressed: check plain tars
        if cur is not None:
            last, cur = cur, None
            yield flush(last)
        if plain and Path(path).stat().st_size < end + 2 * tarfile.BLOCKSIZE:  # cut at a member boundary
            yield {"key": None, "uid": None, "image": None, "caption": None,
                   "reason": "shard truncated: no end-of-archive marker after the last member read"}
    except (tarfile.TarError, OSError, EOFError) as e:
        if cur is not None:
            yield flush(cur)
        yield {"key": None, "uid": None, "image": None, "caption": None,
               "reason": f"shard unreadable past this point: {type(e).__name__}: {e}"[:300]}


def read_sidecar(shard: str | Path) -> dict[str, dict]:
    """DataComp's metadata parquet beside the tar: uid -> its precomputed scores (every uid the shard should hold,
    so samples lost from the tar are noticed), or {} when absent."""
    p = Path(shard).with_suffix(".parquet")
    if not p.exists():
        return {}
    import pandas as pd

    df = pd.read_parquet(p)
    if "uid" not in df.columns:
        return {}
    cols = [c for c in (*SIDECAR_SCORES, "status", "error_message") if c in df.columns]  # img2dataset's status
    return df.set_index("uid")[cols].to_dict("index")


def table_fingerprint(path: str | Path) -> dict | None:
    """The settings a score table was made with (stored in its parquet metadata), or None."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[b"tmars"]) if b"tmars" in meta else None


def process_shard(shard: str | Path, out_dir: str | Path, scorer, detector, ring: int = 5, batch_size: int = 64,
                  text_match: bool = False, progress: bool = True, fingerprint: dict | None = None) -> dict:
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
        old = table_fingerprint(out)
        if fingerprint is not None and old != fingerprint:
            diff = sorted(k for k in set(old or {}) | set(fingerprint) if (old or {}).get(k) != fingerprint.get(k))
            raise ValueError(f"{out} was scored with other settings ({diff}): point data.scores_dir at a new folder "
                             "for these settings, or delete the old tables to rescore")
        return {"shard": shard.name, "skipped": True, "n": len(pd.read_parquet(out, columns=["uid"]))}
    if not shard.exists():
        raise FileNotFoundError(f"shard {shard} does not exist; check data.shards (a brace pattern or glob of "
                                "DataComp .tar shards, e.g. /data/datacomp/small/shards/{00000000..00001287}.tar)")
    sidecar = read_sidecar(shard)
    rows: list[dict] = []
    t0 = time.perf_counter()
    bar = tqdm(desc=shard.name, unit="img", disable=not progress, leave=False)
    batch: list[tuple[int, object, str]] = []

    def score(items):
        ims = [b[1] for b in items]
        caps = [b[2] for b in items]
        quads = detector(ims)
        masked = [mask_text(np.asarray(im), q, ring) for im, q in zip(ims, quads)]
        s_clip, s_tmars = scorer(ims, masked, caps, [len(q) > 0 for q in quads])
        texts = list(getattr(detector, "texts", None) or [[] for _ in ims])
        matched = tm_rule(texts, caps) if text_match else [None] * len(ims)
        for (r, im, _), q, a, b, t, m in zip(items, quads, s_clip, s_tmars, texts, matched):
            boxes = quads_to_boxes(q, im.height, im.width)
            rows[r].update(n_boxes=len(boxes), boxes=boxes.reshape(-1).astype(np.float32).tolist(),
                           clip_score=float(a), tmars_score=float(b), ocr_text=" | ".join(t), text_match=m)

    def run_batch():
        if not batch:
            return
        try:
            score(batch)
        except Exception:  # noqa: BLE001 - find the sample that breaks the batch; the others still get scored
            for item in batch:
                try:
                    score([item])
                except Exception as e:  # noqa: BLE001
                    rows[item[0]].update(status="failed", reason=f"detect/mask/score failed: {type(e).__name__}: "
                                                                 f"{e}"[:300])
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
    seen = {r["uid"] for r in rows}
    for uid in sidecar:  # in DataComp's metadata but not in the tar (lost downloads, cut shards): recorded
        if uid not in seen:
            row = dict.fromkeys(COLUMNS, None)
            why = sidecar[uid].get("status")
            why = f"download {why}: {sidecar[uid].get('error_message')}" if why not in (None, "success") else (
                "listed in the shard's metadata parquet, not in the tar")
            row.update(uid=uid, status="failed", reason=str(why)[:300],
                       n_boxes=0, boxes=[], ocr_text="", clip_score=np.nan, tmars_score=np.nan)
            row.update({k: sidecar[uid].get(k, np.nan) for k in SIDECAR_SCORES})
            rows.append(row)
    dt = time.perf_counter() - t0
    df = pd.DataFrame(rows, columns=COLUMNS)  # an empty shard still writes a table, so it counts as done
    out.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"tmars"] = json.dumps(fingerprint or {}, sort_keys=True).encode()
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
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
