"""Paper-scale layout sources: COCO 2017 boxes, CC-500 compositional prompts, Cityscapes segmentation maps.

Each loader returns ``Layout``s (global caption, local prompts, regions) and fails with the download command
when files are missing. Choices the paper does not state in what we could read (which COCO caption, box filters,
the CC-500 layout, Cityscapes class filtering) are arguments, set in ``configs/data/*.yaml`` and marked there.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

COCO_HELP = ("COCO 2017 val is missing under {root}: download http://images.cocodataset.org/zips/val2017.zip and "
             "http://images.cocodataset.org/annotations/annotations_trainval2017.zip, unzip both there "
             "(root/val2017/*.jpg, root/annotations/*.json), or set data.root")
CITYSCAPES_HELP = ("Cityscapes is missing under {root}: register at https://www.cityscapes-dataset.com, download "
                   "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, unzip them there (root/gtFine/val/..., "
                   "root/leftImg8bit/val/...), or set data.root")
CC500_HELP = ("CC-500 prompts are missing at {path}: take the 446 prompts of StructureDiffusion's CC-500 list "
              "(one prompt per line, 'a <colour> <object> and a <colour> <object>') and set data.prompts_file")

# Cityscapes labelId -> trainId (the 19 evaluation classes; 255 = ignored), from cityscapesScripts' labels.py.
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_CLASSES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle"]


@dataclass
class Layout:
    """One generation request: ``prompt`` (global caption), ``local_prompts[i]`` placed in region ``i``.

    Regions are normalised xyxy ``boxes`` or, for segmentation layouts, ``seg`` (a ``[H, W]`` class-id map) with
    ``class_ids[i]`` the class of local prompt ``i``. ``reference`` is the real image (FID/KID), when known.
    """

    uid: str
    prompt: str
    local_prompts: list[str]
    boxes: list[list[float]] | None = None
    seg: np.ndarray | None = field(default=None, repr=False)
    class_ids: list[int] | None = None
    reference: str | None = None


def load_coco_boxes(root: str | Path, split: str = "val2017", caption_index: int = 0, min_area: float = 0.01,
                    max_objects: int = 8, max_images: int | None = None) -> list[Layout]:
    """One layout per COCO image: its ``caption_index``-th caption, every non-crowd instance box covering at least
    ``min_area`` of the image (largest first, at most ``max_objects``), local prompt = the category name."""
    root = Path(root)
    cap_f, inst_f = root / "annotations" / f"captions_{split}.json", root / "annotations" / f"instances_{split}.json"
    if not cap_f.exists() or not inst_f.exists():
        raise FileNotFoundError(COCO_HELP.format(root=root))
    caps, inst = json.loads(cap_f.read_text()), json.loads(inst_f.read_text())
    names = {c["id"]: c["name"] for c in inst["categories"]}
    by_img: dict[int, list[str]] = {}
    for a in sorted(caps["annotations"], key=lambda a: a["id"]):
        by_img.setdefault(a["image_id"], []).append(a["caption"].strip())
    anns: dict[int, list[dict]] = {}
    for a in inst["annotations"]:
        anns.setdefault(a["image_id"], []).append(a)
    out = []
    for img in sorted(inst["images"], key=lambda i: i["id"]):
        w, h = img["width"], img["height"]
        objs = [a for a in anns.get(img["id"], [])
                if not a.get("iscrowd", 0) and a["bbox"][2] * a["bbox"][3] >= min_area * w * h]
        objs = sorted(objs, key=lambda a: -a["bbox"][2] * a["bbox"][3])[:max_objects]
        captions = by_img.get(img["id"], [])
        if not objs or len(captions) <= caption_index:
            continue
        boxes = [[x / w, y / h, (x + bw) / w, (y + bh) / h] for x, y, bw, bh in (a["bbox"] for a in objs)]
        out.append(Layout(uid=str(img["id"]), prompt=captions[caption_index],
                          local_prompts=[names[a["category_id"]] for a in objs],
                          boxes=[[min(max(v, 0.0), 1.0) for v in b] for b in boxes],
                          reference=str(root / split / img["file_name"])))
        if max_images is not None and len(out) >= max_images:
            break
    return out


def load_cc500(prompts_file: str | Path, layout: str = "halves", max_prompts: int | None = None) -> list[Layout]:
    """CC-500 ("a red apple and a green bowl"): local prompts = the two conjuncts; ``layout="halves"`` puts the
    first in the left half and the second in the right half (our choice: the paper's layout is not recorded)."""
    path = Path(prompts_file)
    if not path.exists():
        raise FileNotFoundError(CC500_HELP.format(path=path))
    if layout != "halves":
        raise ValueError(f"unknown CC-500 layout {layout!r}; available: halves")
    out = []
    for i, line in enumerate(p.strip() for p in path.read_text().splitlines()):
        if not line:
            continue
        parts = [p.strip() for p in line.split(" and ")]
        if len(parts) != 2:
            raise ValueError(f"{path}:{i + 1}: expected '<object> and <object>', got {line!r}")
        out.append(Layout(uid=f"cc500_{i:04d}", prompt=line, local_prompts=parts,
                          boxes=[[0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 1.0, 1.0]]))
        if max_prompts is not None and len(out) >= max_prompts:
            break
    return out


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a Cityscapes labelIds image to the 19 trainIds (255 elsewhere)."""
    lut = np.full(256, 255, dtype=np.uint8)
    for k, v in CITYSCAPES_TRAIN_IDS.items():
        lut[k] = v
    return lut[label_ids]


def load_cityscapes(root: str | Path, split: str = "val", min_area: float = 0.01, max_images: int | None = None,
                    caption: str = "a street photo in {city}") -> list[Layout]:
    """Cityscapes fine annotations: caption from the city name (the paper's example: "a street photo in
    Munster"), one local prompt per class covering at least ``min_area`` of the image, masks = its segments."""
    from PIL import Image

    root = Path(root)
    files = sorted((root / "gtFine" / split).glob("*/*_gtFine_labelIds.png"))
    if not files:
        raise FileNotFoundError(CITYSCAPES_HELP.format(root=root))
    out = []
    for f in files:
        seg = cityscapes_train_ids(np.asarray(Image.open(f)))
        ids, counts = np.unique(seg[seg != 255], return_counts=True)
        keep = [int(i) for i, c in zip(ids, counts) if c >= min_area * seg.size]
        if not keep:
            continue
        city = f.parent.name.replace("_", " ").title()
        ref = root / "leftImg8bit" / split / f.parent.name / f.name.replace("gtFine_labelIds", "leftImg8bit")
        out.append(Layout(uid=f.name.split("_gtFine")[0], prompt=caption.format(city=city),
                          local_prompts=[CITYSCAPES_CLASSES[i] for i in keep], seg=seg, class_ids=keep,
                          reference=str(ref)))
        if max_images is not None and len(out) >= max_images:
            break
    return out


def shard(items: list, index: int, count: int) -> list:
    """Items ``index::count`` (a Slurm array task's share; every item in exactly one shard)."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} outside [0, {count})")
    return items[index::count]
