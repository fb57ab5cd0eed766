"""The only module that reads a config: the CPU mini (toy model) and paper-scale generation + evaluation."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from shared.device import get_device, limit_threads, seed_everything
from shared.logging import resolve_run_dir, start_run

ROOT = Path(__file__).resolve().parents[1]


def _path(p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else ROOT / q


def toy_pipeline(cfg: DictConfig, device: str = "cpu"):
    """The mini's cached toy model; trained (and cached) on first use with ``model.train``."""
    from cac.toy import ToyConfig, ToyPipeline, train_toy

    path = _path(cfg.model.path)
    if not (path / "denoiser.safetensors").exists():
        t = cfg.model.train
        torch.set_num_threads(max(1, int(t.threads)))
        train_toy(path, ToyConfig(**OmegaConf.to_container(cfg.model.arch)), steps=t.steps, batch_size=t.batch_size,
                  lr=t.lr, caption_dropout=t.caption_dropout, seed=t.seed, ckpt_every=t.ckpt_every,
                  progress=cfg.progress)
        torch.set_num_threads(1)
    return ToyPipeline.load(path, device)


def _run_mini(cfg: DictConfig, run) -> dict:
    from cac.mini import evaluate

    pipe = toy_pipeline(cfg)
    d, m = cfg.data, cfg.method
    metrics, img, colours, boxes = evaluate(pipe, m.name, d.n_layouts, d.n_objects, d.box, cfg.sampling.steps,
                                            cfg.sampling.guidance_scale, cfg.seed, m.md_ratio)
    metrics = {k: float(v) for k, v in metrics.items()}
    if cfg.save_images:
        import torchvision

        big = torch.nn.functional.interpolate(img[:32], scale_factor=8, mode="nearest")
        torchvision.utils.save_image(big, run.dir / "samples.png", nrow=8)
        (run.dir / "layouts.json").write_text(json.dumps({"colours": colours[:32], "boxes": boxes[:32].tolist()}))
    return metrics


def load_pipeline(cfg: DictConfig, device):
    """The paper's pipeline by hub id or local folder (``model.id``); offline without weights -> what to fetch."""
    import diffusers

    cls = {"sd": "StableDiffusionPipeline", "gligen": "StableDiffusionGLIGENPipeline",
           "sdxl": "StableDiffusionXLPipeline"}[cfg.model.kind]
    dtype = getattr(torch, cfg.sampling.dtype) if device.type == "cuda" else torch.float32
    extra = {} if cfg.model.kind == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    try:
        pipe = getattr(diffusers, cls).from_pretrained(cfg.model.id, dtype=dtype, **extra)
    except (OSError, ValueError) as e:  # offline hub miss: OSError; a path that does not exist: ValueError
        raise RuntimeError(
            f"could not load {cfg.model.id!r}: download it first (huggingface-cli download {cfg.model.id}) and set "
            "HF_HOME, or point model.id at a local folder") from e
    if cfg.model.scheduler == "ddim":
        pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_layouts(cfg: DictConfig):
    """The dataset's layouts, this shard's share."""
    from cac import data

    d = cfg.data
    if d.name == "coco_boxes":
        items = data.load_coco_boxes(d.root, d.split, d.caption_index, d.min_area, d.max_objects, d.max_images)
    elif d.name == "cc500":
        items = data.load_cc500(d.prompts_file, d.layout, d.max_images)
    elif d.name == "cityscapes":
        items = data.load_cityscapes(d.root, d.split, d.min_area, d.max_images)
    else:
        raise ValueError(f"data.name={d.name!r} is not a paper-scale dataset (coco_boxes, cc500, cityscapes)")
    return data.shard(items, cfg.shard.index, cfg.shard.count)


def generate_one(pipe, cfg: DictConfig, layout, generator):
    """One image for ``layout`` with the configured method (SD, CAC variants, MD(+CAC); GLIGEN via model.kind)."""
    from cac import apply_cac, masks_from_segmentation, multidiffusion

    h, w = cfg.model.height, cfg.model.width
    regions = layout.boxes
    if layout.seg is not None:
        seg = torch.nn.functional.interpolate(torch.as_tensor(layout.seg)[None, None].float(), size=(h, w),
                                              mode="nearest")[0, 0].long()
        regions = masks_from_segmentation(seg, layout.class_ids, allow_empty=True)
        keep = regions.flatten(1).sum(1) > 0  # classes too thin to survive the resize are dropped, and logged
        if not keep.all():
            dropped = np.array(layout.class_ids)[~keep.numpy()].tolist()
            print(f"{layout.uid}: dropped classes {dropped} (empty at {h}x{w})")
        regions = regions[keep]
        layout.local_prompts = [p for p, k in zip(layout.local_prompts, keep.tolist()) if k]
    kw = dict(height=h, width=w, num_inference_steps=cfg.sampling.steps, guidance_scale=cfg.sampling.guidance_scale,
              generator=generator)
    m = cfg.method
    if m.runner == "sd":
        extra = {}
        if cfg.model.kind == "gligen":
            extra = dict(gligen_phrases=layout.local_prompts, gligen_boxes=layout.boxes,
                         gligen_scheduled_sampling_beta=cfg.model.gligen_beta)
        return pipe(prompt=layout.prompt, **kw, **extra).images[0]
    if m.runner == "cac":
        extra = {"gligen_scheduled_sampling_beta": cfg.model.gligen_beta} if cfg.model.kind == "gligen" else {}
        out = apply_cac(pipe, layout.prompt, layout.local_prompts, regions, normalize=m.normalize, **kw, **extra)
        return out.images[0]
    return multidiffusion(pipe, layout.prompt, layout.local_prompts, regions, md_ratio=m.md_ratio, cac=m.cac,
                          normalize=m.normalize, progress=False, **kw).images[0]


def evaluate_images(cfg: DictConfig, layouts, image_dir: Path, device) -> dict:
    """The configured metrics over generated images (detector box accuracy / position, mIoU, CLIP, FID/KID)."""
    from PIL import Image

    from cac import metrics as M

    e = cfg.eval
    imgs = [Image.open(image_dir / f"{lay.uid}.png").convert("RGB") for lay in layouts]
    out: dict[str, float] = {"eval/images": float(len(imgs))}
    if e.detector != "none" and layouts[0].boxes is not None:
        det = (M.OwlViTDetector(e.detector_model, e.detector_threshold, str(device)) if e.detector == "owlvit"
               else M.YoloDetector(e.detector_model, e.detector_threshold, str(device)))
        preds = det(imgs, [lay.local_prompts for lay in layouts])
        hits, best, present, placed = [], [], [], []
        for p, lay in zip(preds, layouts):
            h_, b_ = M.box_hits(p["boxes"], p["labels"], np.array(lay.boxes), lay.local_prompts, e.iou_threshold)
            pr, pl = M.position_correct(p["boxes"], p["labels"], np.array(lay.boxes), lay.local_prompts)
            hits += h_.tolist()
            best += b_.tolist()
            present += pr.tolist()
            placed += pl.tolist()
        out.update({"eval/box_acc": float(np.mean(hits)), "eval/box_iou": float(np.mean(best)),
                    "eval/present": float(np.mean(present)), "eval/position": float(np.mean(placed))})
    if e.segmenter and layouts[0].seg is not None:
        seg = M.Segmenter(e.segmenter, str(device))
        conf = 0
        for im, lay in zip(imgs, layouts):
            target = torch.nn.functional.interpolate(torch.as_tensor(lay.seg)[None, None].float(),
                                                     size=im.size[::-1], mode="nearest")[0, 0].numpy()
            conf = conf + M.confusion_matrix(seg([im], im.size[::-1])[0], target, e.n_classes)
        out["eval/miou"], _ = M.mean_iou(conf)
    if e.clip_model:
        clip = M.ClipScorer(e.clip_model, e.clip_pretrained, str(device))
        out["eval/clip"] = float(clip.scores(imgs, [lay.prompt for lay in layouts]).mean())
        if layouts[0].boxes is not None:
            out["eval/local_clip"] = float(clip.local_scores(imgs, [lay.boxes for lay in layouts],
                                                             [lay.local_prompts for lay in layouts]).mean())
    if e.fid and all(lay.reference for lay in layouts):
        def feats(ims):
            x = torch.stack([torch.from_numpy(np.asarray(i.convert("RGB").resize((299, 299)))).permute(2, 0, 1)
                             for i in ims])
            return M.inception_features(x, str(device))

        real, fake = feats([Image.open(lay.reference) for lay in layouts]), feats(imgs)
        out["eval/fid"] = M.fid_from_features(real, fake)
        out["eval/kid"], _ = M.kid_from_features(real, fake, subset_size=e.kid_subset_size)
    return out


def image_seed(seed: int, uid: str) -> int:
    """Per-image seed from (run seed, image id): the same picture whatever the shard or resume order, and
    distinct ids get distinct noise (a hash of the whole id: Cityscapes ids share their last digits)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{uid}".encode()).digest()[:8], "big") % (2**63)


def _run_paper(cfg: DictConfig, run) -> dict:
    from tqdm.auto import tqdm

    device = get_device(cfg.device)
    layouts = load_layouts(cfg)
    image_dir = _path(cfg.image_dir) if cfg.image_dir else run.dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    todo = [lay for lay in layouts if not (image_dir / f"{lay.uid}.png").exists()]  # resume: skip finished images
    t0 = time.time()
    if todo:
        pipe = load_pipeline(cfg, device)
        for lay in tqdm(todo, desc=f"generate {cfg.method.name}", disable=not cfg.progress):
            g = torch.Generator().manual_seed(image_seed(cfg.seed, lay.uid))
            generate_one(pipe, cfg, lay, g).save(image_dir / f"{lay.uid}.png")
    out = {"gen/images": float(len(layouts)), "gen/seconds_per_image": (time.time() - t0) / max(len(todo), 1)}
    if cfg.eval.enabled:
        out.update(evaluate_images(cfg, layouts, image_dir, device))
    return out


def run(cfg: DictConfig) -> float:
    """Seed, run the configured stage, write metrics.json; returns ``cfg.optimized_metric``."""
    limit_threads()
    seed_everything(cfg.seed)
    with start_run(resolve_run_dir(cfg), cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        metrics = _run_mini(cfg, rec) if cfg.model.kind == "toy" else _run_paper(cfg, rec)
        rec.log(metrics)
        rec.finish(metrics)
    return float(metrics.get(cfg.optimized_metric, float("nan")))
