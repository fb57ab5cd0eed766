"""The CPU mini reproduction: does CAC place objects in boxes in a model never trained with locations?

Layouts: 1 or 2 boxes (non-overlapping, ``box x box`` pixels) with distinct colours; the global caption names
the colours ("a red square and a blue square"), local prompt i is "a <colour_i> square". Every method samples
from the same initial noise. A requested object is placed when its colour's mass centroid lies in its box
(``cac.toy.placement``); chance = the box's share of the image.
"""
from __future__ import annotations

import numpy as np
import torch

from cac.compose import apply_cac, count_denoiser_calls, multidiffusion
from cac.toy import COLOURS, ToyPipeline, caption, placement

METHODS = {  # name -> (runner, options); "sd" is the caption-only baseline
    "sd": ("sd", {}),
    "cac": ("cac", {"normalize": "none"}),
    "cac_renorm": ("cac", {"normalize": "renorm"}),
    "cac_per_prompt": ("cac", {"normalize": "per_prompt"}),
    "md": ("md", {"md_ratio": 1.0, "cac": False}),
    "md_cac": ("md", {"md_ratio": 0.3, "cac": True}),
}


def sample_layouts(n: int, size: int, box: int, n_objects: int, gen: torch.Generator):
    """``n`` layouts: colours ``[n][n_objects]`` and pixel boxes ``[n, n_objects, 4]`` (xyxy), boxes disjoint."""
    if box > size or (n_objects > 1 and 2 * box > size):
        raise ValueError(f"{n_objects} disjoint {box}x{box} boxes do not fit a {size}x{size} image; "
                         "use a smaller data.box")
    k = len(COLOURS)
    perm = torch.argsort(torch.rand(n, k, generator=gen), dim=1)[:, :n_objects]
    colours = [[COLOURS[j] for j in row] for row in perm.tolist()]
    boxes = torch.zeros(n, n_objects, 4, dtype=torch.long)
    todo = torch.ones(n, dtype=torch.bool)
    while todo.any():  # rejection sampling of disjoint boxes, vectorised over the layouts still to draw
        xy = torch.randint(0, size - box + 1, (n, n_objects, 2), generator=gen)
        cand = torch.cat([xy, xy + box], -1)
        ok = torch.ones(n, dtype=torch.bool)
        for i in range(n_objects):
            for j in range(i + 1, n_objects):
                a, b = cand[:, i], cand[:, j]
                overlap = (a[:, 0] < b[:, 2]) & (b[:, 0] < a[:, 2]) & (a[:, 1] < b[:, 3]) & (b[:, 1] < a[:, 3])
                ok &= ~overlap
        take = todo & ok
        boxes[take] = cand[take]
        todo &= ~take
    return colours, boxes


def _scores(img, colours, boxes) -> dict[str, np.ndarray]:
    per_obj = [placement(img, [c[j] for c in colours], boxes[:, j]) for j in range(boxes.shape[1])]
    return {k: np.stack([p[k] for p in per_obj], 1).astype(np.float64) for k in per_obj[0]}


def random_scenes(colours, arch, gen: torch.Generator) -> torch.Tensor:
    """True scenes (in [0, 1]) holding exactly the requested colours at uniformly random disjoint positions."""
    from cac.toy import PALETTE

    n, k = len(colours), len(colours[0])
    _, boxes = sample_layouts(n, arch.size, arch.obj, k, gen)
    img = torch.zeros(n, 3, arch.size, arch.size)
    for j in range(k):
        pal = torch.tensor([PALETTE[c[j]] for c in colours])
        ys = torch.arange(arch.size)
        inside = ((ys[None] >= boxes[:, j, 1:2]) & (ys[None] < boxes[:, j, 3:4]))[:, :, None] & (
            (ys[None] >= boxes[:, j, 0:1]) & (ys[None] < boxes[:, j, 2:3]))[:, None, :]
        img = torch.where(inside[:, None], pal[:, :, None, None], img)
    return (img + 1) / 2


@torch.no_grad()
def generate(pipe: ToyPipeline, method: str, colours, boxes, steps: int, guidance: float, seed: int,
             md_ratio: float | None = None) -> tuple[torch.Tensor, dict]:
    """Images ``[n, 3, S, S]`` in [0, 1] for the layouts, and the denoiser-call counts."""
    runner, opts = METHODS[method]
    opts = dict(opts)
    if md_ratio is not None and runner == "md":
        opts["md_ratio"] = md_ratio
    n, s = len(colours), pipe.unet.arch.size
    prompts = [caption(c) for c in colours]
    local = [[f"a {c} square" for c in row] for row in colours]
    latents = torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(seed))
    kw = dict(num_inference_steps=steps, guidance_scale=guidance, latents=latents)
    with count_denoiser_calls(pipe.unet) as calls:
        if runner == "sd":
            img = pipe(prompt=prompts, **kw).images
        elif runner == "cac":
            img = apply_cac(pipe, prompts, local, boxes, units="pixel", **opts, **kw).images
        else:
            img = multidiffusion(pipe, prompts, local, boxes, units="pixel", progress=False, **opts, **kw).images
    return img, calls


def evaluate(pipe: ToyPipeline, method: str, n_layouts: int, n_objects: int, box: int, steps: int, guidance: float,
             seed: int, md_ratio: float | None = None):
    """Placement metrics of one method on ``n_layouts`` layouts drawn with ``seed`` (same layouts and noise for
    every method at a given seed). Returns ``(metrics, images, colours, boxes)``."""
    s = pipe.unet.arch.size
    colours, boxes = sample_layouts(n_layouts, s, box, n_objects, torch.Generator().manual_seed(1000 + seed))
    img, calls = generate(pipe, method, colours, boxes, steps, guidance, seed, md_ratio)
    m = _scores(img, colours, boxes)
    # Chance: the same metrics for true scenes with the same colours at uniformly random positions.
    ref = _scores(random_scenes(colours, pipe.unet.arch, torch.Generator().manual_seed(2000 + seed)), colours, boxes)
    return {
        "test/in_box": m["in_box"].mean(),
        "test/all_in_box": m["in_box"].all(1).mean(),
        "test/present": m["present"].mean(),
        "test/iou": m["iou"].mean(),
        "test/mass_in_box": m["mass_in_box"].mean(),
        "chance/in_box": ref["in_box"].mean(),
        "chance/mass_in_box": ref["mass_in_box"].mean(),
        "chance/box_area": box * box / (s * s),
        "cost/denoiser_calls_per_step": calls["calls"] / steps,
        "cost/denoiser_samples_per_image": calls["samples"] / n_layouts,
    }, img, colours, boxes
