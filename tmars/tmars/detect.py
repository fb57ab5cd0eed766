"""Text detection behind one interface: ``detector(images) -> list of quads [k, 4, 2] (x, y) in original pixels``.

- ``RapidOCRDetector``: PP-OCR (det, optionally rec) through ``rapidocr``, whose ONNX models ship inside the
  wheel and run offline. ``limit_side_len``/``limit_type="max"`` stop it from upscaling small images (its
  default resizes the short side up to 736 px, ~20x slower at 224 px).
- ``OracleDetector``: returns known boxes (synthetic data, tests, ablations without detector error).
- ``square_pad_resize``/``unpad_quads``: the FAST-style geometry of the official code (centred square padding
  with white, resize to ``size``); ``unpad_quads`` maps detections back to original pixels exactly.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def square_pad_resize(image: Image.Image, size: int = 512, fill: int = 255) -> tuple[Image.Image, dict]:
    """Pad to a centred square with ``fill`` then resize (bicubic) to ``size``; returns the image and the
    geometry needed by ``unpad_quads``."""
    w, h = image.size
    side = max(w, h)
    left, top = (side - w) // 2, (side - h) // 2
    canvas = Image.new(image.mode, (side, side), (fill,) * len(image.getbands()))
    canvas.paste(image, (left, top))
    return canvas.resize((size, size), Image.BICUBIC), {"left": left, "top": top, "scale": size / side,
                                                        "width": w, "height": h}


def unpad_quads(quads: np.ndarray, geom: dict) -> np.ndarray:
    """Quads in the padded, resized frame -> original pixels (clipped to the image)."""
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2) / geom["scale"]
    q[..., 0] = np.clip(q[..., 0] - geom["left"], 0, geom["width"])
    q[..., 1] = np.clip(q[..., 1] - geom["top"], 0, geom["height"])
    return q


def polys_to_quads(polys) -> np.ndarray:
    """Polygons of any number of points -> the quads of their axis-aligned boxes ``[k, 4, 2]`` (masking fills
    the axis-aligned box anyway; curved-text detectors return more than 4 points)."""
    out = np.zeros((len(polys), 4, 2))
    for k, p in enumerate(polys):
        p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        (x0, y0), (x1, y1) = p.min(0), p.max(0)
        out[k] = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    return out


class OracleDetector:
    """Known text boxes: ``boxes[i]`` is image i's list of xyxy pixel boxes (or quads)."""

    def __init__(self, boxes: Sequence):
        self.boxes = boxes

    def __call__(self, images: Sequence, indices: Sequence[int] | None = None) -> list[np.ndarray]:
        idx = range(len(images)) if indices is None else indices
        out = []
        for i in idx:
            b = np.asarray(self.boxes[i], dtype=np.float64)
            if b.size == 0:
                out.append(np.zeros((0, 4, 2)))
            elif b.ndim == 2 and b.shape[1] == 4:  # xyxy -> quad (clockwise from top-left)
                out.append(np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], 1))
            else:
                out.append(b.reshape(-1, 4, 2))
        return out


class RapidOCRDetector:
    """PP-OCR text detection (and recognition with ``recognize=True``) via rapidocr, fully offline."""

    def __init__(self, limit_side_len: int = 320, limit_type: str = "max", recognize: bool = False,
                 box_thresh: float = 0.5, threads: int = -1, use_cuda: bool = False, text_score: float = 0.5):
        from rapidocr import RapidOCR

        self.recognize, self.text_score = recognize, text_score
        self.engine = RapidOCR(params={"Det.limit_side_len": limit_side_len, "Det.limit_type": limit_type,
                                       "Det.box_thresh": box_thresh, "Global.log_level": "error",
                                       "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                                       "EngineConfig.onnxruntime.use_cuda": use_cuda})
        self.texts: list[list[str]] = []

    def __call__(self, images: Sequence) -> list[np.ndarray]:
        """Quads per image; with ``recognize``, ``self.texts`` holds the strings of the last call read with a
        confidence >= ``text_score`` (the boxes are all detected boxes, read or not)."""
        quads, texts = [], []
        for im in images:
            # rapidocr takes numpy arrays as BGR (it converts only PIL images / files from RGB)
            bgr = np.ascontiguousarray(np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im)[..., ::-1])
            # every flag on every call (rapidocr keeps call-time flags on the engine); text_score=0 so recognition
            # never removes a detected box: the boxes to mask do not depend on whether the text is also read
            res = self.engine(bgr, use_det=True, use_cls=False, use_rec=self.recognize, text_score=0.0)
            boxes = getattr(res, "boxes", None)
            none = np.zeros((0, 4, 2))
            quads.append(none if boxes is None or len(boxes) == 0 else
                         np.asarray(boxes, dtype=np.float64).reshape(-1, 4, 2))
            txt, sc = getattr(res, "txts", None), getattr(res, "scores", None)
            texts.append([t for t, c in zip(txt, sc) if c >= self.text_score] if txt is not None and sc is not None
                         else [])
        self.texts = texts
        return quads


class PaddleOCRDetector:
    """PP-OCR through PaddleOCR 3.x itself (cluster users; ``requirements-full.txt``, in its own venv: paddlepaddle
    pins its own numpy/protobuf). Detection is batched (``TextDetection.predict(list, batch_size)``); with
    ``recognize`` the full ``PaddleOCR`` pipeline runs (detection + recognition). PaddleOCR downloads its models on
    first use (network), so this detector is for GPU nodes and clusters, not our offline CI."""

    def __init__(self, model_name: str = "PP-OCRv5_mobile_det", recognize: bool = False, device: str | None = None,
                 batch_size: int = 16):
        try:
            import paddleocr
        except ImportError as e:
            raise ImportError("detector=paddleocr needs PaddleOCR: pip install -r requirements-full.txt in its own "
                              "venv (or use detector=rapidocr, the same PP-OCR models through onnxruntime)") from e
        self.recognize, self.batch_size = recognize, batch_size
        if recognize:  # the pipeline batches recognition itself; its predict() takes no batch_size
            self.engine = paddleocr.PaddleOCR(text_detection_model_name=model_name, use_doc_orientation_classify=False,
                                              use_doc_unwarping=False, use_textline_orientation=False,
                                              text_recognition_batch_size=batch_size, device=device)
        else:
            self.engine = paddleocr.TextDetection(model_name=model_name, device=device)
        self.texts: list[list[str]] = []

    def __call__(self, images: Sequence) -> list[np.ndarray]:
        """Quads per image in original pixels (PaddleOCR maps its resize back itself)."""
        arrs = [np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im)[..., ::-1].copy()  # BGR
                for im in images]
        quads, texts = [], []
        results = self.engine.predict(arrs) if self.recognize else self.engine.predict(arrs, batch_size=self.batch_size)
        for res in results:
            # dt_polys: every detected box (rec_polys keeps only the read ones); texts above a 0.5 confidence
            quads.append(polys_to_quads(res["dt_polys"]))
            texts.append([t for t, c in zip(res["rec_texts"], res["rec_scores"]) if c >= 0.5] if self.recognize else [])
        self.texts = texts
        return quads


_WORKER_DETECTOR = None


def _init_worker(make):
    global _WORKER_DETECTOR
    _WORKER_DETECTOR = make()


def _detect_chunk(images):
    quads = _WORKER_DETECTOR(images)
    return quads, getattr(_WORKER_DETECTOR, "texts", [[] for _ in quads])


class ParallelDetector:
    """Any detector spread over ``workers`` processes (each builds its own with ``make()``, e.g.
    ``functools.partial(RapidOCRDetector, threads=1)``): PP-OCR's CPU inference runs one image at a time, so
    processes are how detection scales with cores. Order is kept; ``texts`` as the wrapped detector's. Not for
    ``OracleDetector``, whose boxes are looked up by position in the whole list."""

    def __init__(self, make, workers: int = 2, chunk: int = 16):
        import multiprocessing as mp

        self.make, self.workers, self.chunk = make, workers, chunk
        self.pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(make,))
        self.texts: list[list[str]] = []

    def __call__(self, images: Sequence) -> list[np.ndarray]:
        chunks = [list(images[i:i + self.chunk]) for i in range(0, len(images), self.chunk)]
        quads, texts = [], []
        for q, t in self.pool.map(_detect_chunk, chunks):
            quads += q
            texts += t
        self.texts = texts
        return quads

    def close(self) -> None:
        """Stop the worker processes."""
        self.pool.close()
        self.pool.join()


def detect_text(images: Sequence, detector=None) -> list[np.ndarray]:
    """Quads ``[k, 4, 2]`` per image in original pixels, with ``detector`` (default: ``RapidOCRDetector()``)."""
    return (detector or RapidOCRDetector())(images)
