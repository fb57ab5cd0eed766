"""Re-scoring: cosine similarity of open_clip image and text embeddings (masked image, original caption)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def load_clip(model: str = "ViT-L-14", pretrained: str | None = "openai", device: str = "cpu"):
    """``(model, preprocess, tokenizer)`` from open_clip by name and pretrained tag or local checkpoint path;
    offline without the weights -> an error that says how to get them."""
    import open_clip

    try:
        m, _, pre = open_clip.create_model_and_transforms(model, pretrained=pretrained)
    except Exception as e:
        raise RuntimeError(f"could not load open_clip {model!r} with pretrained={pretrained!r}: download the weights "
                           "first (open_clip caches them under HF_HOME) or pass a local checkpoint path") from e
    return m.to(device).eval(), pre, open_clip.get_tokenizer(model)


@torch.no_grad()
def clip_scores(model, preprocess, tokenizer, images: Sequence, captions: Sequence[str], batch_size: int = 64,
                device: str = "cpu") -> np.ndarray:
    """Cosine similarity per (image, caption) pair; images are PIL images or ``[H, W, 3]`` uint8 arrays."""
    from PIL import Image

    out = []
    for i in range(0, len(images), batch_size):
        ims = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))
               for im in images[i:i + batch_size]]
        x = torch.stack([preprocess(im.convert("RGB")) for im in ims]).to(device)
        t = tokenizer(list(captions[i:i + batch_size])).to(device)
        fi = torch.nn.functional.normalize(model.encode_image(x).float(), dim=-1)
        ft = torch.nn.functional.normalize(model.encode_text(t).float(), dim=-1)
        out.append((fi * ft).sum(-1).cpu())
    return torch.cat(out).double().numpy() if out else np.zeros(0)


@torch.no_grad()
def clip_and_tmars_scores(model, preprocess, tokenizer, images: Sequence, masked: Sequence, captions: Sequence[str],
                          changed: Sequence[bool] | None = None, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """CLIP score of the original images and T-MARS score of the masked ones in one pass: the caption is encoded
    once, and a masked image is encoded only where masking changed it (``changed``; default: every image with
    ``masked is not images``), since an image without text keeps its CLIP score (paper Sec. 3). fp16 autocast on
    CUDA."""
    from PIL import Image

    def enc(ims):
        x = torch.stack([preprocess((im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))).convert(
            "RGB")) for im in ims]).to(device)
        with torch.autocast("cuda", dtype=torch.float16, enabled=str(device).startswith("cuda")):
            return torch.nn.functional.normalize(model.encode_image(x).float(), dim=-1)

    if len(images) == 0:
        return np.zeros(0), np.zeros(0)
    with torch.autocast("cuda", dtype=torch.float16, enabled=str(device).startswith("cuda")):
        ft = torch.nn.functional.normalize(model.encode_text(tokenizer(list(captions)).to(device)).float(), dim=-1)
    fi = enc(images)
    s_clip = (fi * ft).sum(-1)
    s_tmars = s_clip.clone()
    changed = np.asarray(changed if changed is not None else [m is not o for m, o in zip(masked, images)], bool)
    if changed.any():
        idx = np.flatnonzero(changed)
        s_tmars[idx] = (enc([masked[i] for i in idx]) * ft[idx]).sum(-1)
    return s_clip.double().cpu().numpy(), s_tmars.double().cpu().numpy()
