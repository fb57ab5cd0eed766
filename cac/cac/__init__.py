"""Cross Attention Control (He, Salakhutdinov, Kolter; arXiv 2306.14636): localized text-to-image generation by
masking each local prompt's cross-attention to its region, in any diffusers Stable Diffusion pipeline."""
from cac.attention import CACAttnProcessor, CACState, cac_processors
from cac.compose import apply_cac, count_denoiser_calls, encode_cac_prompts, multidiffusion
from cac.masks import masks_from_boxes, masks_from_segmentation, resize_masks

__all__ = [
    "CACAttnProcessor", "CACState", "apply_cac", "cac_processors", "count_denoiser_calls", "encode_cac_prompts",
    "masks_from_boxes", "masks_from_segmentation", "multidiffusion", "resize_masks",
]
