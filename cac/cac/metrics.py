"""The evaluation suite "with large pretrained recognition models" (paper Sec. 4; specific models: spec [recall]).

Pure functions on arrays (box IoU and hits, position accuracy, segmentation mIoU, Frechet distance / FID, KID)
plus thin wrappers around the recognition models, each loadable from a hub id or a local folder:
``OwlViTDetector`` (open-vocabulary boxes, transformers), ``YoloDetector`` (ultralytics, COCO classes),
``Segmenter`` (any transformers semantic-segmentation model, e.g. a Cityscapes SegFormer), ``ClipScorer``
(open_clip; CLIP score on the whole image and local CLIP score on box crops) and ``inception_features``
(torchmetrics' FID Inception, needs torch-fidelity's weights).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import linalg


# --- boxes ---------------------------------------------------------------------------------------------------
def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``[n, m]`` of xyxy boxes ``a [n, 4]`` and ``b [m, 4]``."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-12)


def box_hits(pred_boxes: np.ndarray, pred_labels: Sequence[str], target_boxes: np.ndarray,
             target_labels: Sequence[str], iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """For each requested (label, box): the IoU of the same-label detection matched to it, and whether it reaches
    ``iou_threshold`` (the box accuracy of one image). Matching is one-to-one, greedy by IoU (as in COCO-style
    evaluation): one detection cannot credit two requested "person" boxes."""
    n_t = len(target_labels)
    iou = box_iou(target_boxes, pred_boxes) if len(pred_labels) else np.zeros((n_t, 0))
    same = np.asarray(target_labels, dtype=object)[:, None] == np.asarray(list(pred_labels), dtype=object)[None, :]
    iou = np.where(same, iou, 0.0)
    best = np.zeros(n_t)
    ti, pi = np.unravel_index(np.argsort(-iou, axis=None), iou.shape)
    used_t, used_p = np.zeros(n_t, bool), np.zeros(iou.shape[1], bool)
    for t, p in zip(ti, pi):  # pairs by decreasing IoU; a handful per image
        if iou[t, p] <= 0:
            break
        if not used_t[t] and not used_p[p]:
            used_t[t] = used_p[p] = True
            best[t] = iou[t, p]
    return best >= iou_threshold, best


def position_correct(pred_boxes: np.ndarray, pred_labels: Sequence[str], target_boxes: np.ndarray,
                     target_labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """CC-500 style: per requested object, is it present (any detection of its label) and is the centre of its
    highest-scoring detection (detections are given best first) inside its region?"""
    pred_boxes = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4)
    present, placed = [], []
    for box, lab in zip(np.asarray(target_boxes, dtype=np.float64).reshape(-1, 4), target_labels):
        idx = [i for i, p in enumerate(pred_labels) if p == lab]
        present.append(bool(idx))
        if idx:
            x0, y0, x1, y1 = pred_boxes[idx[0]]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            placed.append(bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3]))
        else:
            placed.append(False)
    return np.array(present), np.array(placed)


# --- segmentation --------------------------------------------------------------------------------------------
def confusion_matrix(pred: np.ndarray, target: np.ndarray, n_classes: int, ignore_index: int = 255) -> np.ndarray:
    """``[n_classes, n_classes + 1]`` counts (rows: target, columns: prediction; the last column gathers
    predictions outside the label set, which are wrong for their target), ignoring ``ignore_index`` pixels."""
    p, t = np.asarray(pred).ravel().astype(np.int64), np.asarray(target).ravel().astype(np.int64)
    keep = (t != ignore_index) & (t >= 0) & (t < n_classes)
    p = p[keep]
    p = np.where((p >= 0) & (p < n_classes), p, n_classes)
    return np.bincount(t[keep] * (n_classes + 1) + p, minlength=n_classes * (n_classes + 1)).reshape(
        n_classes, n_classes + 1)


def mean_iou(conf: np.ndarray) -> tuple[float, np.ndarray]:
    """mIoU over the classes that occur in target or prediction, and the per-class IoU (NaN where absent).
    ``conf`` from ``confusion_matrix``: a target pixel predicted outside the label set is a false negative."""
    n = conf.shape[0]
    tp = np.diag(conf[:, :n]).astype(np.float64)
    denom = conf.sum(1) + conf[:, :n].sum(0) - tp
    iou = np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)
    return float(np.nanmean(iou)), iou


# --- fidelity ------------------------------------------------------------------------------------------------
def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) (Heusel et al. 2017), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # singular product: regularise as in the reference implementation
        eps = 1e-6 * np.eye(s1.shape[0])
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets ``[n, d]`` (unbiased covariances)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))


def kid_from_features(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / d + 1)^3, mean and std over random
    subsets of ``subset_size`` (capped at the smaller set)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return float(np.mean(vals)), float(np.std(vals))


def inception_features(images: torch.Tensor, device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """2048-d pool features of FID's Inception (torchmetrics; weights from torch-fidelity, a network download the
    first time). ``images``: uint8 ``[n, 3, H, W]``."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as e:  # pragma: no cover
        raise ImportError("FID features need torchmetrics and torch-fidelity: "
                          "pip install -r requirements-full.txt") from e
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"]).to(device)
    out = [net(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out).double().numpy()


# --- recognition models --------------------------------------------------------------------------------------
class ClipScorer:
    """CLIP score = 100 * max(cos(image, text), 0) with an open_clip model (name + pretrained tag, or a local
    checkpoint file); ``local_scores`` crops each box and scores it against its local prompt."""

    def __init__(self, model: str = "ViT-L-14", pretrained: str | None = "openai", device: str = "cpu"):
        import open_clip

        try:
            self.model, _, self.preprocess = open_clip.create_model_and_transforms(model, pretrained=pretrained)
        except Exception as e:
            raise RuntimeError(
                f"could not load open_clip {model!r} ({pretrained!r}): on an offline machine download the weights "
                "first (or pass a local checkpoint path as pretrained)") from e
        self.tokenizer = open_clip.get_tokenizer(model)
        self.model = self.model.to(device).eval()
        self.device = device

    @classmethod
    def from_parts(cls, model, preprocess, tokenizer, device: str = "cpu") -> ClipScorer:
        """Wrap an already built open_clip model (tests, custom checkpoints)."""
        self = cls.__new__(cls)
        self.model, self.preprocess, self.tokenizer, self.device = model.eval(), preprocess, tokenizer, device
        return self

    @torch.no_grad()
    def scores(self, images: Sequence, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Per pair (PIL image, text)."""
        out = []
        for i in range(0, len(images), batch_size):
            x = torch.stack([self.preprocess(im) for im in images[i:i + batch_size]]).to(self.device)
            t = self.tokenizer(list(texts[i:i + batch_size])).to(self.device)
            fi = torch.nn.functional.normalize(self.model.encode_image(x).float(), dim=-1)
            ft = torch.nn.functional.normalize(self.model.encode_text(t).float(), dim=-1)
            out.append(100 * (fi * ft).sum(-1).clamp_min(0))
        return torch.cat(out).cpu().numpy()

    def local_scores(self, images: Sequence, boxes: Sequence[Sequence[Sequence[float]]],
                     texts: Sequence[Sequence[str]]) -> np.ndarray:
        """Per box: the CLIP score of the crop (normalised xyxy box) against its local prompt."""
        crops, prompts = [], []
        for im, bxs, txs in zip(images, boxes, texts):
            w, h = im.size
            for (x0, y0, x1, y1), t in zip(bxs, txs):
                crops.append(im.crop((round(x0 * w), round(y0 * h), max(round(x1 * w), round(x0 * w) + 1),
                                      max(round(y1 * h), round(y0 * h) + 1))))
                prompts.append(t)
        return self.scores(crops, prompts)


def _load_hf(kind: str, name: str, processor_cls, model_cls, processor, model, device: str):
    """``(processor, model)``: the given objects, or both loaded from a hub id / local folder; offline misses
    raise an error naming the download."""
    try:
        processor = processor or processor_cls.from_pretrained(name)
        model = model or model_cls.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"could not load {kind} {name!r}: set HF_HOME to a cache holding it "
                           f"(huggingface-cli download {name}) or pass a local folder") from e
    return processor, model.to(device).eval()


class OwlViTDetector:
    """Open-vocabulary detection (OWL-ViT / OWLv2 via transformers): per image, the queried labels' boxes
    (normalised xyxy), best first, above ``threshold``."""

    def __init__(self, model: str = "google/owlvit-base-patch32", threshold: float = 0.1, device: str = "cpu",
                 processor=None, detector=None):
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.processor, self.model = _load_hf("detector", model, AutoProcessor, AutoModelForZeroShotObjectDetection,
                                              processor, detector, device)
        self.threshold, self.device = threshold, device

    @torch.no_grad()
    def __call__(self, images: Sequence, queries: Sequence[Sequence[str]]) -> list[dict]:
        out = []
        for im, q in zip(images, queries):
            q = list(dict.fromkeys(q))
            inputs = self.processor(text=[q], images=im, return_tensors="pt").to(self.device)
            res = self.model(**inputs)
            w, h = im.size
            post = self.processor.image_processor.post_process_object_detection(
                res, threshold=self.threshold, target_sizes=torch.tensor([[h, w]]))[0]
            order = post["scores"].argsort(descending=True)
            boxes = (post["boxes"][order].cpu().numpy() / np.array([w, h, w, h])).clip(0, 1)
            out.append({"boxes": boxes, "labels": [q[int(i)] for i in post["labels"][order]],
                        "scores": post["scores"][order].cpu().numpy()})
        return out


class YoloDetector:
    """Closed-vocabulary detection with an ultralytics YOLO model (COCO classes); queries filter the labels."""

    def __init__(self, weights: str = "yolov8x.pt", threshold: float = 0.25, device: str = "cpu"):
        try:
            from ultralytics import YOLO
        except ImportError as e:
            raise ImportError("the YOLO detector needs ultralytics: pip install -r requirements-full.txt") from e
        self.model, self.threshold, self.device = YOLO(weights), threshold, device

    def __call__(self, images: Sequence, queries: Sequence[Sequence[str]]) -> list[dict]:
        out = []
        for im, q in zip(images, queries):
            r = self.model.predict(im, conf=self.threshold, device=self.device, verbose=False)[0]
            names = [r.names[int(c)] for c in r.boxes.cls.tolist()]
            keep = [i for i, n in enumerate(names) if n in set(q)]
            keep = sorted(keep, key=lambda i: -float(r.boxes.conf[i]))
            out.append({"boxes": r.boxes.xyxyn.cpu().numpy()[keep].reshape(-1, 4), "labels": [names[i] for i in keep],
                        "scores": r.boxes.conf.cpu().numpy()[keep]})
        return out


class Segmenter:
    """Semantic segmentation with a transformers model (e.g. a Cityscapes SegFormer): class-id maps at a size."""

    def __init__(self, model: str = "nvidia/segformer-b5-finetuned-cityscapes-1024-1024", device: str = "cpu",
                 processor=None, segmenter=None):
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        self.processor, self.model = _load_hf("segmenter", model, AutoImageProcessor,
                                              AutoModelForSemanticSegmentation, processor, segmenter, device)
        self.device = device

    @torch.no_grad()
    def __call__(self, images: Sequence, size: tuple[int, int]) -> np.ndarray:
        """``[n, H, W]`` class ids at ``size`` (the model sees the images at ``size`` too, so non-square images
        are not squashed; bilinear logits, then argmax)."""
        inputs = self.processor(images=list(images), size={"height": size[0], "width": size[1]},
                                return_tensors="pt").to(self.device)
        logits = self.model(**inputs).logits
        logits = torch.nn.functional.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits.argmax(1).cpu().numpy()
