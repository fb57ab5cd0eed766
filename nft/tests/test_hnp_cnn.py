"""HNP NF-Layers and CNN weight spaces (float32, atol 1e-5): HNPLinear is equivariant to hidden-neuron
permutations at every depth but not to input/output ones; every layer is equivariant on CNN weight spaces (filters
folded into channels); a CNN's function ignores a permutation of its hidden channels (the action is right); MLP and
CNN weight spaces do not mix."""
import math

import pytest
import torch
import torch.nn.functional as F

from nft import NFN, NFT, ChannelLayerNorm, HNPLinear, HNPPool, NFTBlock, NPAttention, NPLinear, NPPool, Pointwise
from nft.weight_space import WeightSpaceFeatures, random_hidden_permutations, random_neuron_permutations

CNN_WIDTHS = (2, 4, 5, 3)
CNN_FILTERS = ((3, 3), (2, 2), ())


def feats(widths, filters=None, c=3, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    filters = filters or ((),) * (len(widths) - 1)
    w = tuple(torch.randn(b, c, widths[i + 1], widths[i], *filters[i], generator=g) for i in range(len(widths) - 1))
    bb = tuple(torch.randn(b, c, widths[i + 1], generator=g) for i in range(len(widths) - 1))
    return WeightSpaceFeatures(w, bb)


def close(a, b, atol=1e-5):
    return all(torch.allclose(x, y, atol=atol) for x, y in zip(a.weights + a.biases, b.weights + b.biases))


@pytest.mark.parametrize("widths", [(2, 3), (2, 7, 3), (2, 7, 5, 3), (3, 5, 4, 6, 2)])
def test_hnp_linear_is_hidden_equivariant(widths):
    torch.manual_seed(0)
    layer, x = HNPLinear(widths, 3, 4).eval(), feats(widths)
    with torch.no_grad():
        y = layer(x)
        assert y.widths == x.widths and y.channels == 4
        for perms in (random_hidden_permutations(widths, generator=torch.Generator().manual_seed(1)),
                      random_hidden_permutations(widths, batch=2, generator=torch.Generator().manual_seed(2))):
            assert close(layer(x.permute(perms)), y.permute(perms))
        # inputs and outputs keep their identity: permuting them is not a symmetry of the layer
        io = [torch.roll(torch.arange(widths[0]), 1)] + [None] * (len(widths) - 2) + [None]
        assert not close(layer(x.permute(io)), y.permute(io), atol=1e-3)


def test_hnp_linear_mixes_what_np_averages():
    # HNPLinear sees the individual input neurons of W_1: a change to one input column of W_1 changes another
    # column's output only through means in NPLinear, but with its own weight in HNPLinear (different per column)
    torch.manual_seed(0)
    widths = (2, 7, 5, 3)
    layer, x = HNPLinear(widths, 3, 4).eval(), feats(widths)
    w = list(x.weights)
    w2 = w[0].clone()
    w2[:, :, :, 0] += 1.0
    x2 = WeightSpaceFeatures((w2, *w[1:]), x.biases)
    with torch.no_grad():
        d = (layer(x2).weights[0] - layer(x).weights[0])[:, :, :, 1]
    assert d.abs().max() > 1e-3


@pytest.mark.parametrize("make", [lambda: NPLinear(3, 3, 4, CNN_FILTERS), lambda: Pointwise(3, 3, 4, CNN_FILTERS),
                                  lambda: ChannelLayerNorm(3, 3, filters=CNN_FILTERS),
                                  lambda: NPAttention(4, heads=2, filters=CNN_FILTERS),
                                  lambda: NFTBlock(3, 4, heads=2, filters=CNN_FILTERS)])
def test_layers_on_cnn_weight_spaces_are_np_equivariant(make):
    torch.manual_seed(0)
    layer = make().eval()
    c = 4 if isinstance(layer, (NPAttention, NFTBlock)) else 3
    x = feats(CNN_WIDTHS, CNN_FILTERS, c=c)
    with torch.no_grad():
        y = layer(x)
        assert y.filter_shapes == CNN_FILTERS
        perms = random_neuron_permutations(CNN_WIDTHS, torch.Generator().manual_seed(1))
        assert close(layer(x.permute(perms)), y.permute(perms))
        per_sample = random_hidden_permutations(CNN_WIDTHS, batch=2, generator=torch.Generator().manual_seed(2))
        assert close(layer(x.permute(per_sample)), y.permute(per_sample))


def test_hnp_on_cnn_and_cnn_models_are_invariant():
    torch.manual_seed(0)
    x = feats(CNN_WIDTHS, CNN_FILTERS, c=1, b=3)
    hidden = random_hidden_permutations(CNN_WIDTHS, generator=torch.Generator().manual_seed(3))
    layer = HNPLinear(CNN_WIDTHS, 1, 4, CNN_FILTERS).eval()
    with torch.no_grad():
        assert close(layer(x.permute(hidden)), layer(x).permute(hidden))
        assert torch.allclose(NPPool()(x.permute(random_neuron_permutations(CNN_WIDTHS))), NPPool()(x), atol=1e-5)
        for model in (NFN(CNN_WIDTHS, 1, channels=8, filters=CNN_FILTERS),
                      NFN(CNN_WIDTHS, 1, channels=8, mode="hnp", filters=CNN_FILTERS),
                      NFT(CNN_WIDTHS, 1, channels=8, heads=2, filters=CNN_FILTERS)):
            model.eval()
            out = model(x)
            assert out.shape == (3, 1)
            assert torch.allclose(model(x.permute(hidden)), out, atol=1e-5)
        assert HNPPool()(x).shape[1] == HNPPool.out_size(CNN_WIDTHS, 1, CNN_FILTERS)


def _cnn(x: WeightSpaceFeatures, images):
    """Run the CNN (valid convs, ReLU, global average pool, dense) whose parameters are sample 0 of x."""
    h = images
    for w, b in zip(x.weights[:-1], x.biases[:-1]):
        h = F.relu(F.conv2d(h, w[0, 0], b[0, 0]))
    return h.mean((2, 3)) @ x.weights[-1][0, 0].T + x.biases[-1][0, 0]


def test_a_cnn_ignores_permutations_of_its_hidden_channels():
    x = feats(CNN_WIDTHS, CNN_FILTERS, c=1, b=1)
    images = torch.randn(5, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    hidden = random_hidden_permutations(CNN_WIDTHS, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(_cnn(x.permute(hidden), images), _cnn(x, images), atol=1e-5)
    w = list(x.weights)
    w[0] = w[0][:, :, torch.roll(torch.arange(4), 1)]  # rows of W_1 only: not a symmetry
    assert not torch.allclose(_cnn(WeightSpaceFeatures(tuple(w), x.biases), images), _cnn(x, images), atol=1e-3)


def test_mlp_and_cnn_weight_spaces_do_not_mix():
    cnn, mlp = feats(CNN_WIDTHS, CNN_FILTERS), feats(CNN_WIDTHS)
    for layer in (NPLinear(3, 3, 4), HNPLinear(CNN_WIDTHS, 3, 4), Pointwise(3, 3, 4), ChannelLayerNorm(3, 3)):
        with pytest.raises(ValueError, match="filters"):
            layer(cnn)
    with pytest.raises(ValueError, match="filters"):
        NPLinear(3, 3, 4, CNN_FILTERS)(mlp)
    with pytest.raises(ValueError, match="filters="):
        NPAttention(3, heads=1)(cnn)
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="follows a fully connected"):
        WeightSpaceFeatures((torch.randn(1, 1, 4, 2, generator=g), torch.randn(1, 1, 3, 4, 3, 3, generator=g)),
                            (torch.randn(1, 1, 4, generator=g), torch.randn(1, 1, 3, generator=g)))


def _entries_fixed(widths, perms) -> int:
    """How many weight-space entries (weights and biases) a neuron permutation leaves in place: the character of
    the permutation representation."""
    fixed = [(p == torch.arange(len(p))) if p is not None else torch.ones(n, dtype=torch.bool)
             for p, n in zip(perms, widths)]
    return sum(int(fixed[i + 1].sum()) * int(fixed[i].sum()) + int(fixed[i + 1].sum())
               for i in range(len(widths) - 1))


def _group(widths, sets):
    """Every element of the product of the symmetric groups of ``sets`` (the others fixed)."""
    from itertools import permutations, product

    choices = [list(permutations(range(widths[s]))) if s in sets else [None] for s in range(len(widths))]
    for combo in product(*choices):
        yield [torch.tensor(c) if c is not None else None for c in combo]


def _span_dim(make, widths, draws: int) -> int:
    """The dimension of the space of linear maps a layer can express: the rank of its linear parts (columns = the
    layer applied to every basis vector, minus its value at 0: one batched call) over random parameter draws."""
    torch.manual_seed(0)
    L = len(widths) - 1
    shapes = [(widths[i + 1], widths[i]) for i in range(L)] + [(widths[i + 1],) for i in range(L)]
    n = sum(math.prod(sh) for sh in shapes)
    basis = torch.cat([torch.zeros(1, n), torch.eye(n)])  # 0, then e_1 .. e_n
    parts = basis.split([math.prod(sh) for sh in shapes], 1)
    x = WeightSpaceFeatures(tuple(p.view(n + 1, 1, *sh) for p, sh in zip(parts[:L], shapes[:L])),
                            tuple(p.view(n + 1, 1, *sh) for p, sh in zip(parts[L:], shapes[L:])))
    maps = []
    with torch.no_grad():
        for _ in range(draws):
            layer = make()
            for p in layer.parameters():
                torch.nn.init.normal_(p)
            y = layer(x)
            out = torch.cat([t.flatten(1) for t in y.weights + y.biases], 1)
            maps.append((out[1:] - out[:1]).flatten())
    return int(torch.linalg.matrix_rank(torch.stack(maps).double()))


@pytest.mark.parametrize("widths", [(2, 3, 2), (2, 3, 3, 2)])
def test_nf_layers_span_every_equivariant_linear_map(widths):
    # Burnside: dim Hom_G(V, V) = mean over g of chi(g)^2, chi = entries fixed by g. HNPLinear must reach all the
    # S_HNP-equivariant maps (hidden sets permuted) and NPLinear all the S_NP-equivariant ones (every set).
    L = len(widths) - 1
    for make, sets in ((lambda: HNPLinear(widths, 1, 1), set(range(1, L))), (lambda: NPLinear(L, 1, 1),
                                                                            set(range(L + 1)))):
        chis = [_entries_fixed(widths, g) for g in _group(widths, sets)]
        want = round(sum(c * c for c in chis) / len(chis))
        assert _span_dim(make, widths, want + 10) == want
