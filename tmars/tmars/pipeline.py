"""The only module that reads a config. Stages (``cfg.stage``):

- ``mini``: one cell of the CPU mini (filter ``cfg.method`` on the generated pool, train a fresh tiny CLIP on the
  kept subset, zero-shot evaluation); the scorer, the detection and the pool's scores are computed once and cached.
- ``score``: paper scale, detect + mask + score this job's slice of the webdataset shards into per-shard parquet
  (Slurm arrays over ``shard.index``); finished shards are skipped, so a killed job resumes.
- ``select``: apply the filter to all shards' scores; write ``uids.npy`` (DataComp's subset format) and the counts.
- ``train``: reshard the kept samples and train a CLIP with open_clip's trainer at DataComp's settings (resumes
  from its latest checkpoint), then zero-shot ImageNet if ``eval.imagenet_val`` is set.
"""
from __future__ import annotations

import glob
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from shared.device import get_device, limit_threads, seed_everything
from shared.logging import resolve_run_dir, start_run

PROJECT_DIR = Path(__file__).resolve().parents[1]
POOL_CACHE_VERSION = 2  # bump when detection / masking / scoring code changes what the mini's cached pool holds


def resolve_path(path: str | None) -> Path | None:
    """A path as given when absolute or existing, else relative to the project folder."""
    if path is None:
        return None
    p = Path(str(path)).expanduser()
    return p if p.is_absolute() or p.exists() else PROJECT_DIR / p


def expand_shards(pattern: str) -> list[Path]:
    """Shard paths from a brace range (``/d/{00000000..00000127}.tar``, zero padding kept) or a glob."""
    m = re.search(r"\{(\d+)\.\.(\d+)\}", pattern)
    if m:
        a, b = m.group(1), m.group(2)
        width = len(a)
        return [Path(pattern[:m.start()] + f"{i:0{width}d}" + pattern[m.end():]) for i in range(int(a), int(b) + 1)]
    found = sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser())))
    if not found:
        raise FileNotFoundError(f"no shards match data.shards={pattern!r}: download the pool with DataComp's "
                                "download_upstream.py (or img2dataset) and point data.shards at its .tar files")
    return found


def pool_shards(d) -> list[Path]:
    """The pool's shards: ``data.shards`` expanded, cut to the first ``data.n_shards`` (scaling sweeps)."""
    if not d.shards:
        raise ValueError("data.shards is not set: paper-scale stages need webdataset shards (e.g. data=datacomp_small)")
    shards = expand_shards(str(d.shards))
    return shards[:d.n_shards] if d.n_shards else shards


def rule_from_cfg(m) -> Rule:  # noqa: F821
    """``filters.Rule`` from a method config (recursively for intersections)."""
    from tmars.filters import Rule

    return Rule(name=m.name, kind=m.kind, score=m.score, fraction=m.fraction, threshold=m.threshold,
                language_column=m.get("language_column"), intersect=[rule_from_cfg(x) for x in m.get("intersect", [])],
                uids_file=str(resolve_path(m.uids_file)) if m.get("uids_file") else None)


def build_detector(d):
    """The detector named by ``cfg.detector`` (oracle boxes come from the generated pool, not from here)."""
    from functools import partial

    from tmars.detect import PaddleOCRDetector, ParallelDetector, RapidOCRDetector

    if d.name == "rapidocr":
        kw = dict(limit_side_len=d.limit_side_len, limit_type=d.limit_type, recognize=d.recognize,
                  box_thresh=d.box_thresh, use_cuda=d.use_cuda)
        if d.workers > 1:
            return ParallelDetector(partial(RapidOCRDetector, threads=1, **kw), d.workers)
        return RapidOCRDetector(**kw)
    if d.name == "paddleocr":
        return PaddleOCRDetector(model_name=d.model_name, recognize=d.recognize, device=d.paddle_device)
    raise ValueError(f"detector={d.name!r} cannot run on shards: use rapidocr or paddleocr (oracle is the mini's)")


# ----------------------------------------------------------------------------------------------------- the mini
def _cache_key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def mini_scorer(cfg: DictConfig, progress: bool):
    """The mini's scorer, trained once on its own clean pool and cached (state dict + config hash)."""
    from shared.checkpoint import load_state, save_state
    from tmars.synthetic import make_pool
    from tmars.tinyclip import build_clip, to_tensor, tokenize, train_clip

    s, d = cfg.scorer, cfg.data
    spec = {"arch": OmegaConf.to_container(s.arch), "train": OmegaConf.to_container(s.train),
            "size": d.size, "font_size": d.font_size}
    path = resolve_path(cfg.cache_dir) / f"scorer-{_cache_key(spec)}.pt"
    model = build_clip(image_size=d.size, seed=s.train.seed, **s.arch)
    if load_state(path, model=model):
        return model.eval()
    pool = make_pool(s.train.n, mix=dict(s.train.mix), size=d.size, font_size=d.font_size, seed=s.train.pool_seed)
    train_clip(model, to_tensor(pool.images), tokenize(pool.captions), s.train.steps, s.train.batch_size,
               s.train.lr, s.train.weight_decay, s.train.warmup, seed=s.train.seed, progress=progress,
               desc="scorer")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state(path, s.train.steps, model=model)
    return model.eval()


def mini_pool_scores(cfg: DictConfig, pool, progress: bool) -> dict[str, np.ndarray]:
    """Scores, OCR boxes/text and detector quality of the mini's pool, computed once and cached (npz)."""
    from tmars.detect import OracleDetector
    from tmars.mini import detect_pool, pool_scores
    from tmars.quality import detector_quality
    from tmars.select import text_match

    d, det = cfg.data, cfg.detector
    spec = {"data": OmegaConf.to_container(d), "scorer": OmegaConf.to_container(cfg.scorer),
            "detector": OmegaConf.to_container(det), "ring": cfg.ring, "version": POOL_CACHE_VERSION}
    path = resolve_path(cfg.cache_dir) / f"pool-{_cache_key(spec)}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    scorer = mini_scorer(cfg, progress)
    boxes = {"oracle": OracleDetector(pool.text_boxes)(pool.images)}
    out: dict[str, np.ndarray] = {}
    if det.name == "rapidocr":
        detector = build_detector(det)
        quads, texts = detect_pool(pool, detector, factor=det.upscale, progress=progress)
        if hasattr(detector, "close"):
            detector.close()
        boxes["rapidocr"] = quads
        if det.recognize:  # without recognition there is no text to match: no text_match column at all
            out["text_match"] = text_match(texts, pool.captions)
        q = detector_quality(quads, pool.text_boxes, [im.size for im in pool.images])
        out.update({f"detector/{k}": np.array(v) for k, v in q.items()})
        out["n_boxes_rapidocr"] = np.array([len(x) for x in quads])
    out.update(pool_scores(scorer, pool, boxes, cfg.ring))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:  # atomic: a killed run or a parallel launcher never reads half a file
        np.savez(f, **out)
    tmp.replace(path)
    return out


def mini_keep(method, scores: dict[str, np.ndarray], categories) -> np.ndarray:
    """Keep-mask of a filter on the mini's pool (same rules as paper scale, over an in-memory table)."""
    import pandas as pd

    from tmars.filters import apply_rule

    n = len(categories)
    if f"tmars_{method.boxes}" not in scores:
        have = sorted(k[6:] for k in scores if k.startswith("tmars_"))
        raise ValueError(f"method.boxes={method.boxes!r} has no scores in this pool; available: {have} "
                         "(rapidocr boxes need detector=rapidocr)")
    df = pd.DataFrame({"uid": [str(i) for i in range(n)], "status": "ok", "clip_score": scores["clip"],
                       "tmars_score": scores[f"tmars_{method.boxes}"]})
    if "text_match" in scores:
        df["text_match"] = scores["text_match"]
    return apply_rule(df, rule_from_cfg(method))


def run_mini(cfg: DictConfig, rec) -> dict:
    """One (filter, seed) cell of the mini."""
    from tmars.mini import composition, zero_shot_sets
    from tmars.synthetic import make_pool
    from tmars.tinyclip import build_clip, to_tensor, tokenize, train_clip, zero_shot

    d, st = cfg.data, cfg.student
    pool = make_pool(d.n, mix=dict(d.mix), size=d.size, font_size=d.font_size, seed=d.pool_seed)
    scores = mini_pool_scores(cfg, pool, cfg.progress)
    keep = mini_keep(cfg.method, scores, pool.categories)
    summary = composition(keep, pool.categories)
    summary.update({k: float(v) for k, v in scores.items() if k.startswith("detector/")})
    if "n_boxes_rapidocr" in scores:  # how often a false box erased part of a shape (clean / mislabeled pairs)
        cats = np.asarray(pool.categories)
        summary["detector/text_free_images_with_a_box"] = float(
            (scores["n_boxes_rapidocr"][np.isin(cats, ["clean", "mislabeled"])] > 0).mean())
    idx = torch.from_numpy(np.flatnonzero(keep))
    student = build_clip(image_size=d.size, seed=cfg.seed, **st.arch)
    losses = train_clip(student, to_tensor([pool.images[i] for i in idx.tolist()]),
                        tokenize([pool.captions[i] for i in idx.tolist()]), st.steps, st.batch_size, st.lr,
                        st.weight_decay, st.warmup, seed=cfg.seed, progress=cfg.progress, desc=cfg.method.name)
    rec.log({"train/loss_last50": float(np.mean(losses[-50:]))}, step=st.steps)
    summary["train/samples_seen"] = st.steps * st.batch_size
    summary["train/loss_last50"] = float(np.mean(losses[-50:]))
    scorer = mini_scorer(cfg, cfg.progress)  # cached: how well the stand-in for L/14 sees and reads
    for name, (x, y) in zero_shot_sets(d.n_test, d.size, d.font_size, d.test_seed).items():
        summary[f"test/zs_{name}"] = zero_shot(student, x, y)
        summary[f"scorer/zs_{name}"] = zero_shot(scorer, x, y)
    return summary


# ------------------------------------------------------------------------------------------------ paper scale
def make_scorer(cfg: DictConfig, device):
    """``scorer(images, masked, captions, changed)`` with the open_clip model of ``cfg.scorer``."""
    from tmars.score import clip_and_tmars_scores, load_clip

    s = cfg.scorer
    pretrained = s.pretrained
    if pretrained and str(pretrained).startswith((".", "/", "~")):
        pretrained = str(resolve_path(pretrained))
    model, pre, tok = load_clip(s.model, pretrained, device=str(device))
    return lambda ims, masked, caps, changed: clip_and_tmars_scores(model, pre, tok, ims, masked, caps, changed,
                                                                     device=str(device))


def run_score(cfg: DictConfig, rec, device) -> dict:
    """This job's slice of shards (``shard.index`` of ``shard.count``) -> per-shard parquet in data.scores_dir."""
    from tmars.shards import process_shard

    shards = pool_shards(cfg.data)[cfg.shard.index::cfg.shard.count]
    scorer = make_scorer(cfg, device)
    detector = build_detector(cfg.detector)
    out_dir = resolve_path(cfg.data.scores_dir)
    fingerprint = score_fingerprint(cfg)
    totals = {"shards": 0, "skipped": 0, "missing": 0, "broken": 0, "samples": 0, "ok": 0, "failed": 0}
    missing, broken = [], []
    for sh in shards:
        if not sh.exists():  # recorded, not fatal: one lost shard must not stop an array job
            missing.append(str(sh))
            totals["missing"] += 1
            continue
        try:
            r = process_shard(sh, out_dir, scorer, detector, cfg.ring, cfg.batch_size,
                              text_match=cfg.detector.recognize, progress=cfg.progress, fingerprint=fingerprint)
        except ValueError:
            raise  # settings mismatch with existing tables: the user must choose, not skip
        except Exception as e:  # noqa: BLE001 - one broken shard must not stop the others; listed, rerun retries it
            broken.append(f"{sh}\t{type(e).__name__}: {e}"[:500])
            totals["broken"] += 1
            continue
        totals["shards"] += 1
        totals["skipped"] += r["skipped"]
        totals["samples"] += r["n"]
        totals["ok"] += r.get("ok", 0)
        totals["failed"] += r.get("failed", 0)
        if not r["skipped"]:
            rec.log({"score/images_per_s": r["images_per_s"]}, step=totals["shards"])
    if missing:
        (Path(cfg.run_dir) / "missing_shards.txt").write_text("\n".join(missing) + "\n")
    if broken:
        (Path(cfg.run_dir) / "broken_shards.txt").write_text("\n".join(broken) + "\n")
    if hasattr(detector, "close"):
        detector.close()
    return {f"score/{k}": v for k, v in totals.items()}


def score_fingerprint(cfg: DictConfig) -> dict:
    """What a score table depends on: scorer, detector settings, ring (stored in each table; checked on resume)."""
    return {"scorer": f"{cfg.scorer.model}:{cfg.scorer.pretrained}", "ring": cfg.ring,
            "detector": json.dumps(OmegaConf.to_container(cfg.detector), sort_keys=True)}


def load_scores(scores_dir: Path, shards: list[Path], require_all: bool = True):
    """The score tables of the pool's shards as one DataFrame (other shards' tables in ``scores_dir`` are not
    read: nested pools of a scaling sweep share one scores_dir). An existing shard without a table is an error
    naming it (``require_all``); a shard missing on disk is counted, not fatal. Returns (table, n_unscored,
    n_missing_on_disk)."""
    import pandas as pd

    from tmars.shards import table_fingerprint

    files, lost, gone = [], [], 0
    for sh in shards:
        f = scores_dir / (sh.name.split(".")[0] + ".parquet")
        if f.exists():
            files.append(f)
        elif sh.exists():
            lost.append(sh.name)
        else:
            gone += 1
    if lost and require_all:
        raise FileNotFoundError(f"{len(lost)} shard(s) have no score table in {scores_dir} (first: {lost[:3]}); "
                                "run stage=score for them first (it skips finished shards), or set "
                                "data.require_all_shards=false to filter what is scored so far")
    if not files:
        raise FileNotFoundError(f"no score tables for data.shards in {scores_dir}: run stage=score first")
    prints = {json.dumps(table_fingerprint(f), sort_keys=True) for f in files}
    if len(prints) > 1:
        raise ValueError(f"the score tables in {scores_dir} were made with different settings ({sorted(prints)}): "
                         "rescore into one folder per setting")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True), len(lost), gone


def run_select(cfg: DictConfig) -> dict:
    """Filter the scored pool; write uids.npy (DataComp subset format) and the counts."""
    from tmars.filters import apply_rule
    from tmars.shards import uids_to_npy

    df, unscored, gone = load_scores(resolve_path(cfg.data.scores_dir), pool_shards(cfg.data),
                                     cfg.data.require_all_shards)
    if not (df.status == "ok").any():
        raise ValueError(f"no sample of the {len(df)} scored ones is usable (all failed): see their 'reason' column")
    keep = apply_rule(df, rule_from_cfg(cfg.method))
    uids_to_npy(df.loc[keep, "uid"].tolist(), Path(cfg.run_dir) / "uids.npy")
    n_ok = int((df.status == "ok").sum())
    return {"select/pool": len(df), "select/unscored_shards": unscored, "select/missing_shards": gone,
            "select/ok": n_ok,
            "select/failed": len(df) - n_ok, "select/kept": int(keep.sum()),
            "select/kept_fraction_of_ok": float(keep.sum() / max(n_ok, 1)),
            "select/with_text": float((df.loc[keep, "n_boxes"] > 0).mean()) if keep.any() else 0.0}


def run_train(cfg: DictConfig) -> dict:
    """Reshard the kept samples and train with open_clip's trainer (DataComp's flags); zero-shot ImageNet after."""
    import subprocess

    from tmars.shards import npy_to_uids
    from tmars.train import open_clip_train_args, reshard, train_command, zero_shot_imagenet

    run_dir = Path(cfg.run_dir)
    sel = run_select(cfg)
    subset_dir = run_dir / "subset"
    digest = hashlib.sha256((run_dir / "uids.npy").read_bytes()).hexdigest()
    done = subset_dir / "DONE"
    if done.exists() and done.read_text().split()[0] == digest:  # a requeued job does not reshard again
        n = int(done.read_text().split()[1])
    else:
        n = reshard(pool_shards(cfg.data), set(npy_to_uids(run_dir / "uids.npy")), subset_dir,
                    cfg.train.shard_size, progress=cfg.progress)
        done.write_text(f"{digest} {n}\n")
    t = OmegaConf.to_container(cfg.train)
    t["samples_seen"] = t["samples_seen"] or sel["select/pool"]  # null: samples seen = the scored pool's size
    args = open_clip_train_args(subset_dir, n, run_dir / "open_clip", t)
    subprocess.run(train_command(args, cfg.train.gpus), check=True)
    out = dict(sel, **{"train/samples_in_subset": n, "train/samples_seen": t["samples_seen"]})
    if cfg.eval.imagenet_val:
        ckpts = (run_dir / "open_clip" / "train" / "checkpoints").glob("epoch_*.pt")
        ckpt = max(ckpts, key=lambda p: int(p.stem.split("_")[1]))  # epoch_10 after epoch_9
        out["test/imagenet_zero_shot"] = zero_shot_imagenet(cfg.train.model, str(ckpt),
                                                             resolve_path(cfg.eval.imagenet_val), cfg.batch_size)
    return out


def run(cfg: DictConfig) -> float:
    """Entry of train.py: runs ``cfg.stage``; returns ``cfg.optimized_metric``."""
    limit_threads()
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    device = get_device(cfg.device)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        if cfg.stage == "mini":
            summary = run_mini(cfg, rec)
        elif cfg.stage == "score":
            summary = run_score(cfg, rec, device)
        elif cfg.stage == "select":
            summary = run_select(cfg)
        elif cfg.stage == "train":
            summary = run_train(cfg)
        else:
            raise ValueError(f"stage={cfg.stage!r}: use mini, score, select or train")
        rec.finish(summary)
    value = summary.get(cfg.optimized_metric)
    return float(value) if value is not None else float("nan")


def evaluate_checkpoint(cfg: DictConfig) -> dict:
    """eval.py: zero-shot ImageNet of ``cfg.checkpoint``; writes eval.json beside a checkpoint file."""
    from tmars.train import zero_shot_imagenet

    limit_threads()
    ckpt = resolve_path(cfg.checkpoint)
    ck = str(ckpt) if ckpt.exists() else cfg.checkpoint  # a pretrained tag is passed through
    acc = zero_shot_imagenet(cfg.model, ck, resolve_path(cfg.imagenet_val), cfg.batch_size,
                             str(get_device(cfg.device)), cfg.limit)
    out = {"test/imagenet_zero_shot": acc, "checkpoint": ck, "model": cfg.model}
    if ckpt.exists():
        (ckpt.parent / "eval.json").write_text(json.dumps(out, indent=2))
    return out
