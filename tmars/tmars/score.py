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
