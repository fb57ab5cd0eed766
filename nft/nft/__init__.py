"""Neural Functional Transformers (Zhou et al.; arXiv 2305.13546): weight-space features of MLPs and CNNs, NP and
HNP NF-Layers, the weight-space self-attention (NPAttention) and NFT blocks, invariant pooling, baselines,
Inr2Array and batched SIREN fitting. Written from the paper and the spec; no code copied from the official
repository."""
from nft.inr2array import Inr2Array, LatentClassifier
from nft.layers import (
    ChannelLayerNorm,
    CrossAttentionPool,
    GaussianFourier,
    HNPLinear,
    HNPPool,
    LearnedPosEmbedding,
    NFTBlock,
    NPAttention,
    NPLinear,
    NPPool,
    Pointwise,
)
from nft.models import NFN, NFT, MLPBaseline, NFTEncoder, StatNet
from nft.siren import fit_sirens, siren_forward
from nft.weight_space import WeightSpaceFeatures

__all__ = ["NFN", "NFT", "ChannelLayerNorm", "CrossAttentionPool", "GaussianFourier", "HNPLinear", "HNPPool",
           "Inr2Array", "LatentClassifier", "LearnedPosEmbedding", "MLPBaseline", "NFTBlock", "NFTEncoder",
           "NPAttention", "NPLinear", "NPPool", "Pointwise", "StatNet", "WeightSpaceFeatures", "fit_sirens",
           "siren_forward"]
