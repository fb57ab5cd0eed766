"""Symmetry oracles (float32, atol 1e-5): every layer is equivariant to neuron permutations, pooling and whole
models are invariant, an uncoupled permutation changes the output, a SIREN's function ignores a permutation of its
hidden neurons, and attention with one token per set is a per-set linear map."""
import pytest
import torch

from nft import (
    NFN,
    NFT,
    ChannelLayerNorm,
    CrossAttentionPool,
    HNPPool,
    MLPBaseline,
    NFTBlock,
    NPAttention,
    NPLinear,
    NPPool,
    Pointwise,
    WeightSpaceFeatures,
    siren_forward,
)
from nft.siren import grid, init_sirens
from nft.weight_space import random_hidden_permutations, random_neuron_permutations

WIDTHS = (2, 7, 5, 3)


def feats(c=4, b=3, widths=WIDTHS, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = tuple(torch.randn(b, c, widths[i + 1], widths[i], generator=g) for i in range(len(widths) - 1))
    bb = tuple(torch.randn(b, c, widths[i + 1], generator=g) for i in range(len(widths) - 1))
    return WeightSpaceFeatures(w, bb)


def close(a: WeightSpaceFeatures, b: WeightSpaceFeatures, atol=1e-5):
    return all(torch.allclose(x, y, atol=atol) for x, y in zip(a.weights + a.biases, b.weights + b.biases))


@pytest.mark.parametrize("make", [lambda: NPLinear(3, 4, 6), lambda: Pointwise(3, 4, 6),
                                  lambda: ChannelLayerNorm(3, 4), lambda: NPAttention(4, heads=2),
                                  lambda: NFTBlock(3, 4, heads=2)])
def test_layers_are_np_equivariant(make):
    torch.manual_seed(0)
    layer, x = make().eval(), feats()
    perms = random_neuron_permutations(WIDTHS, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert close(layer(x.permute(perms)), layer(x).permute(perms))
        per_sample = random_hidden_permutations(WIDTHS, batch=3, generator=torch.Generator().manual_seed(2))
        assert close(layer(x.permute(per_sample)), layer(x).permute(per_sample))


def test_pools_and_models_are_invariant():
    torch.manual_seed(0)
    x = feats(c=1, b=4)
    hidden = random_hidden_permutations(WIDTHS, generator=torch.Generator().manual_seed(3))
    full = random_neuron_permutations(WIDTHS, torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(NPPool()(x.permute(full)), NPPool()(x), atol=1e-6)
        assert torch.allclose(HNPPool()(x.permute(hidden)), HNPPool()(x), atol=1e-6)
        pool = CrossAttentionPool(1, 4)
        assert torch.allclose(pool(x.permute(full)), pool(x), atol=1e-5)
        for model in (NFT(WIDTHS, 10, channels=8, heads=2), NFN(WIDTHS, 10, channels=8)):
            model.eval()
            assert torch.allclose(model(x.permute(hidden)), model(x), atol=1e-5)
        # inputs and outputs have identities (position embeddings, HNPPool): permuting them must change the output
        io = [torch.tensor([1, 0]), None, None, torch.tensor([2, 0, 1])]
        nft = NFT(WIDTHS, 10, channels=8, heads=2).eval()
        assert not torch.allclose(nft(x.permute(io)), nft(x), atol=1e-3)
        assert not torch.allclose(HNPPool()(x.permute(io)), HNPPool()(x), atol=1e-3)
        mlp = MLPBaseline(sum(WIDTHS[i] * WIDTHS[i + 1] + WIDTHS[i + 1] for i in range(3)), 10)
        assert not torch.allclose(mlp(x.permute(hidden)), mlp(x), atol=1e-3)  # the baseline is not invariant


def test_uncoupled_permutation_changes_the_output():
    # rows of W_1 permuted without the columns of W_2 (and b_1): not a symmetry, the attention must notice
    torch.manual_seed(0)
    attn, x = NPAttention(4, heads=2).eval(), feats()
    p = torch.randperm(WIDTHS[1], generator=torch.Generator().manual_seed(5))
    w = list(x.weights)
    w[0] = w[0][:, :, p]
    y = WeightSpaceFeatures(tuple(w), x.biases)
    with torch.no_grad():
        a, b = attn(x), attn(y)
        back = WeightSpaceFeatures((b.weights[0][:, :, torch.argsort(p)],) + b.weights[1:], b.biases)
    assert not close(back, a, atol=1e-3)


def _attention_by_loops(attn: NPAttention, x: WeightSpaceFeatures) -> WeightSpaceFeatures:
    """The spec's section 2.3 written entry by entry (one sample, one head at a time): an independent reference."""
    H, ch, L = attn.H, attn.ch, x.n_layers
    qkv = [attn.qkv(w[0].permute(1, 2, 0)) for w in x.weights]  # [n_out, n_in, 3C]
    qkvb = [attn.qkv(b[0].T) for b in x.biases]  # [n_out, 3C]

    def part(t, j, h):  # channels of q (j=0), k (1) or v (2) of head h
        return t[..., h * 3 * ch + j * ch: h * 3 * ch + (j + 1) * ch]

    out_w = [torch.zeros(w.shape[2], w.shape[3], attn.C) for w in x.weights]
    out_b = [torch.zeros(b.shape[2], attn.C) for b in x.biases]
    for h in range(H):
        sl = slice(h * ch, (h + 1) * ch)
        for s in range(L + 1):
            toks = []  # (kind, index) with a [n_s, c_h] matrix per q, k, v
            if s >= 1:
                toks += [("col", k) for k in range(x.weights[s - 1].shape[3])] + [("bias", 0)]
            if s < L:
                toks += [("row", r) for r in range(x.weights[s].shape[2])]

            def mat(tok, j, s=s, h=h):
                kind, i = tok
                if kind == "col":
                    return part(qkv[s - 1][:, i], j, h)
                if kind == "bias":
                    return part(qkvb[s - 1], j, h)
                return part(qkv[s][i, :], j, h)

            n_s = mat(toks[0], 0).shape[0]
            scores = torch.tensor([[float((mat(a, 0) * mat(b, 1)).sum()) for b in toks] for a in toks])
            a = torch.softmax(scores / (ch * n_s) ** 0.5, dim=1)
            for ti, tok in enumerate(toks):
                o = sum(a[ti, tj] * mat(t2, 2) for tj, t2 in enumerate(toks))
                kind, i = tok
                if kind == "col":
                    out_w[s - 1][:, i, sl] += o
                elif kind == "bias":
                    out_b[s - 1][:, sl] += o
                else:
                    out_w[s][i, :, sl] += o
        means = [part(t, j, h).mean((0, 1)) for t in qkv for j in range(3)]  # per W: q, k, v
        bmeans = [part(t, j, h).mean(0) for t in qkvb for j in range(3)]
        q = torch.stack([means[3 * i] for i in range(L)] + [bmeans[3 * i] for i in range(L)])
        k = torch.stack([means[3 * i + 1] for i in range(L)] + [bmeans[3 * i + 1] for i in range(L)])
        v = torch.stack([means[3 * i + 2] for i in range(L)] + [bmeans[3 * i + 2] for i in range(L)])
        g = torch.softmax(q @ k.T / ch ** 0.5, dim=1) @ v
        for i in range(L):
            out_w[i][:, :, sl] += g[i]
            out_b[i][:, sl] += g[L + i]
    return WeightSpaceFeatures(tuple(o.permute(2, 0, 1)[None] for o in out_w), tuple(o.T[None] for o in out_b))


def test_attention_matches_a_loop_reference_of_the_spec():
    torch.manual_seed(0)
    attn, x = NPAttention(4, heads=2).eval(), feats(b=1)
    with torch.no_grad():
        assert close(attn(x), _attention_by_loops(attn, x))


def test_one_token_per_set_is_a_per_set_linear_map():
    # a 1-1 "network": every neuron set has one neuron and each attention sees the tokens of its set; with one
    # head the softmax weights sum to one, so a set whose tokens are all equal returns the shared v unchanged
    torch.manual_seed(0)
    attn = NPAttention(4, heads=1).eval()
    x = WeightSpaceFeatures((torch.ones(2, 4, 1, 1),), (torch.ones(2, 4, 1),))
    with torch.no_grad():
        out = attn(x)
        v = attn.qkv(torch.ones(4))[8:]
    # set 0 has one token (the row of W_1) -> v; set 1 has W_1's column and b_1 (equal) -> v; global term -> v
    assert torch.allclose(out.weights[0][0, :, 0, 0], 3 * v, atol=1e-5)
    assert torch.allclose(out.biases[0][0, :, 0], 2 * v, atol=1e-5)


def test_siren_function_ignores_hidden_permutations():
    g = torch.Generator().manual_seed(0)
    p = init_sirens(3, (2, 16, 16, 1), generator=g)
    perms = random_hidden_permutations((2, 16, 16, 1), generator=g)
    xy = grid(8, 8)
    assert torch.allclose(siren_forward(p.permute(perms), xy), siren_forward(p, xy), atol=1e-5)


def test_bad_input_is_named():
    x = feats()
    with pytest.raises(ValueError, match="do not chain"):
        WeightSpaceFeatures((x.weights[0], x.weights[2]), (x.biases[0], x.biases[2]))
    with pytest.raises(ValueError, match="convolutions"):
        WeightSpaceFeatures((torch.zeros(1, 1, 3, 2, 3),), (torch.zeros(1, 1, 3),))
    with pytest.raises(ValueError, match="divisible by heads"):
        NPAttention(6, heads=4)
    with pytest.raises(ValueError, match="one bias per weight"):
        WeightSpaceFeatures(x.weights, x.biases[:2])
