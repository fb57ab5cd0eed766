"""Oracles of mimetic init (issue #7): exact factorisation against the same generator stream, Eckart-Young for the
per-head Q/K product, identity for alpha=0/beta=1/k=d, the diagonal statistics, and the layers' own forward passes
(so an orientation bug in the init and in our diagnostics cannot cancel out), for timm, nn.MultiheadAttention and
HF GPT-2 / Llama (grouped KV heads)."""
import math

import pytest
import torch
from torch import nn

from mimetic import attention_diagnostics, attention_maps, mean_attention_distance, mimetic_init_, products, sincos_2d

A1, B1, A2, B2 = 0.7, 0.7, 0.4, 0.4


def _targets(seed: int, d: int, n_qk: int):
    """The Z draws of one layer, in the order mimetic_init_ makes them: n_qk Q/K matrices, then one V/proj."""
    g = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n_qk, d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    z2 = torch.randn(1, d, d, generator=g, dtype=torch.float64)[0] / math.sqrt(d)
    eye = torch.eye(d, dtype=torch.float64)
    return A1 * z1 + B1 * eye, A2 * z2 - B2 * eye


def _rank_k(m: torch.Tensor, k: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(m)
    return (u[..., :k] * s[..., None, :k]) @ vh[..., :k, :]


def _timm(d=64, heads=4):
    from timm.models.vision_transformer import Attention

    return Attention(d, num_heads=heads, qkv_bias=True).double()


def _mha(d=64, heads=4):
    return nn.MultiheadAttention(d, heads, batch_first=True).double()


def _gpt2(d=64, heads=4):
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

    return GPT2Attention(GPT2Config(n_embd=d, n_head=heads, attn_pdrop=0.0, resid_pdrop=0.0), layer_idx=0).double()


def _llama(d=64, heads=4, kv=2):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention

    cfg = LlamaConfig(hidden_size=d, num_attention_heads=heads, num_key_value_heads=kv, attention_bias=True)
    return LlamaAttention(cfg, layer_idx=0).double()


@pytest.mark.parametrize("make", [_timm, _mha, _gpt2])
def test_exact_factorisation_and_eckart_young(make):
    m = make()
    mimetic_init_(m, generator=torch.Generator().manual_seed(3))
    m1, m2 = _targets(3, 64, 4)
    qk, vo = products(m)
    assert (vo - m2).abs().max() < 1e-6, "W_v W_proj = alpha2 Z2 - beta2 I exactly"
    best = _rank_k(m1, 16)
    assert (qk - best).abs().max() < 1e-6, "per head: the best rank-k approximation of alpha1 Z1 + beta1 I"
    s = torch.linalg.svdvals(m1)
    resid = torch.linalg.matrix_norm(m1 - qk) ** 2
    assert torch.allclose(resid, (s[:, 16:] ** 2).sum(1), rtol=1e-6), "Eckart-Young residual = tail singular values"
    assert (torch.linalg.matrix_rank(qk) == 16).all()


def test_identity_when_alpha0_beta1_and_full_rank():
    m = _mha(d=32, heads=1)
    mimetic_init_(m, alpha1=0.0, beta1=1.0, alpha2=0.0, beta2=1.0)
    qk, vo = products(m)
    eye = torch.eye(32, dtype=torch.float64)
    assert (qk[0] - eye).abs().max() < 1e-12 and (vo + eye).abs().max() < 1e-12


@pytest.mark.parametrize("make", [_timm, _mha, _gpt2, _llama])
def test_diagonal_statistics(make):
    m = make()
    mimetic_init_(m, generator=torch.Generator().manual_seed(0))
    (diag,) = attention_diagnostics(m)
    assert all(0.2 < x < 0.45 for x in diag["qk_diag_mean"]), diag  # spec: 0.31-0.32 at d=64, k=16
    assert all(0.05 < x < 0.12 for x in diag["qk_offdiag_std"])
    if make is _llama:  # 2 KV heads: W_v W_proj is the best rank-32 approximation of the sampled target
        _, m2 = _targets(0, 64, 2)
        vo_target = torch.diagonal(_rank_k(m2, 32)).mean().item()
        assert vo_target < -0.2  # the truncation keeps the negative diagonal (top singular directions of -beta2 I)
    else:
        vo_target = -0.4
    assert abs(diag["vo_diag_mean"] - vo_target) < 0.06 and 0.03 < diag["vo_offdiag_std"] < 0.07, diag


@pytest.mark.parametrize("make", [_timm, _mha, _gpt2, _llama])
def test_the_layers_own_forward_uses_the_targets(make):
    """One token attends only to itself: the layer's output is x W_v W_proj. Several tokens: its attention
    probabilities are softmax(x W_q^h W_k^h^T x^T / sqrt(k)) of the sampled targets. Biases are zero."""
    m = make().eval()
    mimetic_init_(m, generator=torch.Generator().manual_seed(5))
    kv = 2 if make is _llama else 4
    m1, m2 = _targets(5, 64, kv)
    if make is _llama:  # value heads shared by 2 query heads: the best rank-32 approximation of the target
        m2 = _rank_k(m2, 32)
    x = torch.randn(1, 1, 64, dtype=torch.float64)
    out = _forward(m, make, x)
    assert (out[0, 0] - x[0, 0] @ m2).abs().max() < 1e-8
    if make is _mha:
        xs = torch.randn(1, 6, 64, dtype=torch.float64)
        _, w = m(xs, xs, xs, need_weights=True, average_attn_weights=False)
        want = torch.softmax(xs[0] @ _rank_k(m1, 16) @ xs[0].T / 4.0, -1)
        assert (w[0] - want).abs().max() < 1e-8
    biases = [p for n, p in m.named_parameters() if "bias" in n]
    assert biases and all((b == 0).all() for b in biases)


def _forward(m, make, x):
    if make is _mha:
        return m(x, x, x, need_weights=False)[0]
    if make is _timm:
        return m(x)
    if make is _gpt2:
        return m(x)[0]
    pos = torch.zeros(1, 1, dtype=torch.long)
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    cos, sin = LlamaRotaryEmbedding(m.config)(x, pos)
    return m(x, position_embeddings=(cos.double(), sin.double()), attention_mask=None)[0]


def test_only_attention_changes_in_a_vit_and_layers_get_fresh_z():
    import timm

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=10, depth=3)
    before = {n: p.clone() for n, p in vit.named_parameters()}
    n = mimetic_init_(vit, generator=torch.Generator().manual_seed(0))
    assert n == 3
    for name, p in vit.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == (".attn." in name and name.endswith("weight")), name
    qk0, _ = products(vit.blocks[0].attn)
    qk1, _ = products(vit.blocks[1].attn)
    assert not torch.allclose(qk0, qk1) and not torch.allclose(qk0[0], qk0[1])


def test_initial_attention_is_local_and_self_heavy():
    """Spec oracle: ViT-Tiny widths (d=192, 3 heads), LayerNorm'd 2-D sin-cos position embeddings on a 16x16 grid:
    the default init attends uniformly, mimetic attends near itself."""
    import timm
    from timm.models.vision_transformer import Attention

    grid, n = 16, 256
    tokens = nn.functional.layer_norm(sincos_2d(grid, 192), (192,))
    default = Attention(192, num_heads=3).double()
    timm.models.vision_transformer.init_weights_vit_timm(default.qkv)
    uniform = mean_attention_distance(torch.full((1, n, n), 1.0 / n, dtype=torch.float64), grid)[0]
    d0 = mean_attention_distance(attention_maps(default, tokens), grid)
    assert (abs(d0 - uniform) < 0.05 * uniform).all()
    mim = Attention(192, num_heads=3).double()
    mimetic_init_(mim, generator=torch.Generator().manual_seed(0))
    maps = attention_maps(mim, tokens)
    assert (mean_attention_distance(maps, grid) < 0.7 * uniform).all()
    assert (torch.diagonal(maps, dim1=1, dim2=2).mean(1) > 5 / n).all()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="alpha, beta >= 0"):
        mimetic_init_(_mha(), alpha1=-0.1)
    with pytest.raises(TypeError, match="no attention layer"):
        mimetic_init_(nn.Sequential(nn.Linear(4, 4)))

    class MyAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.wq = nn.Linear(8, 8)

    with pytest.raises(TypeError, match="MyAttention.*not supported; supported: timm"):
        mimetic_init_(nn.Sequential(MyAttention()))

    class AttentionPool(MyAttention):  # "Attention" anywhere in the name counts (timm's AttentionRope, ...)
        pass

    with pytest.raises(TypeError, match="AttentionPool.*strict=False"):
        mimetic_init_(nn.Sequential(AttentionPool(), _mha(8, 2)))
    with pytest.warns(UserWarning, match="AttentionPool.*left at its own init"):
        assert mimetic_init_(nn.Sequential(AttentionPool(), _mha(8, 2)), strict=False) == 1
    with pytest.raises(ValueError, match="kdim/vdim"):
        mimetic_init_(nn.MultiheadAttention(8, 2, kdim=4, vdim=4))
    from mimetic.init import _split

    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        _split(64, 3, "attn")


def test_randomized_path_is_near_optimal():
    """svd="randomized" (float32 top-k): the per-head residual is within 2% of Eckart-Young's and the V/proj
    product is still the exact target (to float32 precision)."""
    from mimetic.init import qk_factors, vo_factors

    d, k = 128, 32
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    wq, wk = qk_factors(0.7, 0.7, d, k, 3, g1, svd="randomized")
    m = 0.7 * torch.randn(3, d, d, generator=g2, dtype=torch.float32).double() / d ** 0.5 + 0.7 * torch.eye(d)
    s = torch.linalg.svdvals(m)
    best = (s[:, k:] ** 2).sum(-1).sqrt()
    got = (m - wq.double() @ wk.double().transpose(1, 2)).norm(dim=(1, 2))
    assert torch.all(got >= best * (1 - 1e-5)) and torch.all(got <= best * 1.02), (got / best)
    wv, wo = vo_factors(0.4, 0.4, d, d, torch.Generator().manual_seed(1), svd="randomized")
    z = torch.randn(1, d, d, generator=torch.Generator().manual_seed(1)) / d ** 0.5
    assert torch.allclose(wv @ wo, 0.4 * z[0] - 0.4 * torch.eye(d), atol=1e-5)
    with pytest.raises(ValueError, match="svd="):
        qk_factors(0.7, 0.7, d, k, 1, svd="approx")


def test_fig1_plot_of_layer_diagnostics(tmp_path):
    from mimetic.models import build_vit
    from mimetic.report import plot_layer_diagnostics

    torch.manual_seed(0)
    model = build_vit(8, 2, 1, 10, 32, 2, 2)
    before = attention_diagnostics(model)
    mimetic_init_(model, generator=torch.Generator().manual_seed(0))
    plot_layer_diagnostics({"timm init": before, "mimetic": attention_diagnostics(model)}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 5_000


def test_timm_and_gpt2_attention_probabilities_use_the_q_k_targets():
    """The probabilities timm's Attention and HF GPT-2's eager attention compute in their own forward equal
    softmax(x W_q^h W_k^h^T x^T / sqrt(k)) of the sampled per-head targets."""
    m1, _ = _targets(5, 64, 4)
    xs = torch.randn(1, 6, 64, dtype=torch.float64)
    want_logits = xs[0] @ _rank_k(m1, 16) @ xs[0].T / 4.0  # [heads, 6, 6]
    timm_attn = _timm().eval()
    mimetic_init_(timm_attn, generator=torch.Generator().manual_seed(5))
    timm_attn.fused_attn = False  # the explicit path, whose probabilities pass through attn_drop
    seen = []
    timm_attn.attn_drop.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    timm_attn(xs)
    assert (seen[0][0] - torch.softmax(want_logits, -1)).abs().max() < 1e-8
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

    cfg = GPT2Config(n_embd=64, n_head=4, attn_pdrop=0.0, resid_pdrop=0.0)
    cfg._attn_implementation = "eager"
    gpt = GPT2Attention(cfg, layer_idx=0).double().eval()
    mimetic_init_(gpt, generator=torch.Generator().manual_seed(5))
    _, probs = gpt(xs, output_attentions=True)[:2]
    # called alone the layer gets no mask (transformers builds the causal mask at model level)
    assert (probs[0] - torch.softmax(want_logits, -1)).abs().max() < 1e-8
