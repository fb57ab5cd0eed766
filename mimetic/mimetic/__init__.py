"""Mimetic initialization of self-attention layers (Trockman & Kolter, arXiv 2305.09828)."""
from mimetic.diagnostics import attention_diagnostics, attention_maps, mean_attention_distance, products, sincos_2d
from mimetic.init import mimetic_init_, qk_factors, vo_factors

__all__ = ["attention_diagnostics", "attention_maps", "mean_attention_distance", "mimetic_init_", "products",
           "qk_factors", "sincos_2d", "vo_factors"]
