"""Wanda (Sun, Liu, Bair & Kolter, arXiv 2306.11695): prune LLMs by |weight| x input-activation norm, per
output row; with the magnitude and SparseGPT baselines.

    from wanda import prune, perplexity
    report = prune(model, calib, method="wanda", sparsity=0.5, pattern="unstructured")
"""
from wanda.eval import perplexity, zero_shot
from wanda.masks import mask_nm, mask_per_layer, mask_per_row, sparsegpt_prune, wanda_score
from wanda.prune import find_blocks, owl_sparsities, prune, sparsity_report

__all__ = ["find_blocks", "mask_nm", "mask_per_layer", "mask_per_row", "owl_sparsities", "perplexity", "prune",
           "sparsegpt_prune", "sparsity_report", "wanda_score", "zero_shot"]
