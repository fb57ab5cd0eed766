"""A tiny CLIP for the CPU mini: open_clip's own ``CLIP`` class at toy width, a word-level tokenizer for the
pool's captions, a contrastive trainer and zero-shot evaluation.

The same class serves as the *scorer* (the stand-in for OpenAI's ViT-L/14: trained on clean data so that it both
sees shapes and reads words, as CLIP does) and as the *student* trained from scratch on each filtered subset with
the same number of samples seen (DataComp's rule: filtering changes which samples are seen, not how many).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from tmars.synthetic import CLASSES

# Word-level vocabulary. open_clip pools the text tower at the argmax token id, so <eot> gets the largest id
# and the pooled feature sits on the last token, which has attended to the whole caption.
VOCAB = ["<pad>", "a", "photo", "of", *CLASSES, "<sot>", "<eot>"]
CONTEXT = 7  # <sot> a photo of a {class} <eot>
CLASS_POS = 5  # position of the class word


def tokenize(captions: Sequence[str]) -> torch.Tensor:
    """``[n, 7]`` token ids of captions "a photo of a {class}"; any other word is an error naming it."""
    ids = {w: i for i, w in enumerate(VOCAB)}
    out = torch.zeros(len(captions), CONTEXT, dtype=torch.long)
    for r, cap in enumerate(captions):
        words = cap.lower().split()
        unknown = [w for w in words if w not in ids]
        if unknown or len(words) + 2 > CONTEXT:
            raise ValueError(f"caption {cap!r} is outside the mini's vocabulary ({unknown or 'too long'}); "
                             f"captions are 'a photo of a <class>' with class in {CLASSES}")
        seq = [ids["<sot>"], *(ids[w] for w in words), ids["<eot>"]]
        out[r, :len(seq)] = torch.tensor(seq)
    return out


def build_clip(image_size: int = 64, patch_size: int = 16, width: int = 64, layers: int = 2, embed_dim: int = 32,
               text_width: int = 32, seed: int = 0):
    """open_clip ``CLIP`` with a ViT image tower and a one-layer text tower over ``VOCAB``."""
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    return CLIP(embed_dim=embed_dim,
                vision_cfg=dict(image_size=image_size, patch_size=patch_size, width=width, layers=layers,
                                head_width=32, mlp_ratio=2.0),
                text_cfg=dict(context_length=CONTEXT, vocab_size=len(VOCAB), width=text_width, heads=2, layers=1))


def to_tensor(images: Sequence) -> torch.Tensor:
    """``[n, 3, H, W]`` float images in [-1, 1] from PIL images or ``[H, W, 3]`` uint8 arrays (one stack, no loop
    over pixels)."""
    arr = np.stack([np.asarray(im.convert("RGB") if isinstance(im, Image.Image) else im) for im in images])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def contrastive_loss(fi: torch.Tensor, ft: torch.Tensor, scale: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with every same-caption pair of the batch a positive (captions repeat in a batch of a
    10-class pool, so the one-hot target of standard CLIP would push apart identical captions)."""
    logits = scale * fi @ ft.T
    pos = (labels[:, None] == labels[None, :]).float()
    target = pos / pos.sum(1, keepdim=True)
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
                  + torch.sum(-target * F.log_softmax(logits.T, 1), 1).mean())


def train_clip(model, images: torch.Tensor, tokens: torch.Tensor, steps: int, batch_size: int = 128,
               lr: float = 2e-3, weight_decay: float = 0.1, warmup: int = 30, seed: int = 0,
               progress: bool = False, desc: str = "train") -> list[float]:
    """Train for ``steps`` batches drawn uniformly with replacement (samples seen = steps x batch_size, whatever
    the subset's size); AdamW, linear warmup, cosine decay. Returns the loss per step."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(
            1, steps - warmup))))
    label = tokens[:, CLASS_POS]  # the class word: equal captions <=> equal class token
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        idx = torch.randint(len(images), (batch_size,), generator=gen)
        fi, ft, scale = model(images[idx], tokens[idx])
        loss = contrastive_loss(fi, ft, scale, label[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def cosine_scores(model, images: torch.Tensor, tokens: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Cosine similarity of each image with its own caption."""
    out = []
    for i in range(0, len(images), batch_size):
        fi = F.normalize(model.encode_image(images[i:i + batch_size]), dim=-1)
        ft = F.normalize(model.encode_text(tokens[i:i + batch_size]), dim=-1)
        out.append((fi * ft).sum(-1))
    return torch.cat(out).double().numpy()


@torch.no_grad()
def zero_shot(model, images: torch.Tensor, labels: np.ndarray, batch_size: int = 512) -> float:
    """Accuracy of the argmax over the 10 class captions ("a photo of a {class}")."""
    ft = F.normalize(model.encode_text(tokenize([f"a photo of a {c}" for c in CLASSES])), dim=-1)
    pred = torch.cat([(F.normalize(model.encode_image(images[i:i + batch_size]), dim=-1) @ ft.T).argmax(1)
                      for i in range(0, len(images), batch_size)])
    return float((pred.numpy() == np.asarray(labels)).mean())
