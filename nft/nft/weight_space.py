"""Weight-space features of MLPs and CNNs: per layer i = 1..L a weight tensor W_i [B, C, n_i, n_{i-1}] (fully
connected) or [B, C, n_i, n_{i-1}, h, w] (a convolution with an h x w filter) and a bias b_i [B, C, n_i], C feature
channels per entry (C = 1 for raw parameters). The neuron sets are 0 (inputs), 1..L-1 (hidden; a conv layer's
neurons are its output channels) and L (outputs); permuting set l by sigma (rows of W_l, entries of b_l, columns of
W_{l+1}) is a neuron permutation (S_NP); restricted to the hidden sets 1..L-1 it leaves the network's function
unchanged (S_HNP).

CNNs: conv layers come first, then fully connected ones, with a global pooling between them (the first FC layer
takes one input per channel of the last conv layer), as in the paper and the Small CNN Zoo. Layers fold a
filter's h x w positions into the channel axis (``fold``: C -> C h w per entry), so every NF-Layer applies to both.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WeightSpaceFeatures:
    """``weights[i]`` is [B, C, n_{i+1}, n_i] and ``biases[i]`` [B, C, n_{i+1}] (0-based lists of the L layers).
    Shapes are checked at construction: consecutive layers must chain, batch and channels must agree."""

    weights: tuple
    biases: tuple

    def __post_init__(self):
        w, b = tuple(self.weights), tuple(self.biases)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "biases", b)
        if not w or len(w) != len(b):
            raise ValueError(f"need one bias per weight tensor and at least one layer: {len(w)} weights, {len(b)} "
                             "biases")
        if any(t.dim() not in (4, 6) for t in w) or any(t.dim() != 3 for t in b):
            raise ValueError("weights must be [B, C, n_out, n_in] (fully connected) or [B, C, n_out, n_in, h, w] "
                             "(convolutions) and biases [B, C, n_out]. Got weight dims "
                             f"{[t.dim() for t in w]}, bias dims {[t.dim() for t in b]}")
        kinds = [t.dim() for t in w]
        if any(a == 4 and c == 6 for a, c in zip(kinds, kinds[1:])):
            raise ValueError(f"a convolution follows a fully connected layer (weight dims {kinds}): CNN weight "
                             "spaces are conv layers first, then fully connected ones")
        B, C = w[0].shape[:2]
        for i, (wi, bi) in enumerate(zip(w, b)):
            if wi.shape[:2] != (B, C) or bi.shape[:2] != (B, C):
                raise ValueError(f"layer {i}: batch/channels {tuple(wi.shape[:2])}, {tuple(bi.shape[:2])} differ "
                                 f"from layer 0's {(B, C)}")
            if bi.shape[2] != wi.shape[2]:
                raise ValueError(f"layer {i}: bias has {bi.shape[2]} entries for {wi.shape[2]} output neurons")
            if i and wi.shape[3] != w[i - 1].shape[2]:
                raise ValueError(f"layer {i} takes {wi.shape[3]} inputs but layer {i - 1} has {w[i - 1].shape[2]} "
                                 "outputs: the weight shapes do not chain")

    @property
    def filter_shapes(self) -> tuple:
        """Per layer: () for a fully connected layer, (h, w) for a convolution."""
        return tuple(tuple(t.shape[4:]) for t in self.weights)

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    @property
    def widths(self) -> tuple:
        """(n_0, n_1, ..., n_L)."""
        return (self.weights[0].shape[3],) + tuple(w.shape[2] for w in self.weights)

    @property
    def batch(self) -> int:
        return self.weights[0].shape[0]

    @property
    def channels(self) -> int:
        return self.weights[0].shape[1]

    def map(self, fw, fb=None) -> WeightSpaceFeatures:
        """Apply ``fw`` to every weight tensor and ``fb`` (default ``fw``) to every bias."""
        fb = fw if fb is None else fb
        return WeightSpaceFeatures(tuple(fw(w) for w in self.weights), tuple(fb(b) for b in self.biases))

    def __add__(self, other: WeightSpaceFeatures) -> WeightSpaceFeatures:
        return WeightSpaceFeatures(tuple(a + b for a, b in zip(self.weights, other.weights)),
                                   tuple(a + b for a, b in zip(self.biases, other.biases)))

    def to(self, *args, **kw) -> WeightSpaceFeatures:
        return self.map(lambda t: t.to(*args, **kw))

    def flatten(self) -> torch.Tensor:
        """[B, C * (number of parameters)]: the MLP baseline's input."""
        return torch.cat([t.flatten(1) for pair in zip(self.weights, self.biases) for t in pair], dim=1)

    def permute(self, perms) -> WeightSpaceFeatures:
        """Permute neuron set l by ``perms[l]`` (a LongTensor of length n_l, or None to leave it), l = 0..L; a
        [B, n_l] tensor permutes each sample differently."""
        if len(perms) != self.n_layers + 1:
            raise ValueError(f"need L + 1 = {self.n_layers + 1} permutations (input, hidden..., output sets)")

        def take(t, p, dim):
            if p is None:
                return t
            if p.dim() == 1:
                return t.index_select(dim, p.to(t.device))
            shape = [1] * t.dim()
            shape[0], shape[dim] = p.shape[0], p.shape[1]
            idx = p.to(t.device).view(shape).expand(*[t.shape[d] if d != dim else p.shape[1]
                                                      for d in range(t.dim())])
            return t.gather(dim, idx)

        w = tuple(take(take(wi, perms[i + 1], 2), perms[i], 3) for i, wi in enumerate(self.weights))
        b = tuple(take(bi, perms[i + 1], 2) for i, bi in enumerate(self.biases))
        return WeightSpaceFeatures(w, b)


def random_hidden_permutations(widths, batch: int | None = None, generator=None) -> list:
    """Random permutations of the hidden sets only (S_HNP); None for the input and output sets."""
    out = [None]
    for n in widths[1:-1]:
        if batch is None:
            out.append(torch.randperm(n, generator=generator))
        else:
            out.append(torch.argsort(torch.rand(batch, n, generator=generator), dim=1))
    return out + [None]


def random_neuron_permutations(widths, generator=None) -> list:
    """Random permutations of every neuron set, inputs and outputs included (S_NP)."""
    return [torch.randperm(n, generator=generator) for n in widths]


def from_state_dicts(params: list[dict]) -> WeightSpaceFeatures:
    """Stack MLP parameter dicts (``layers.{i}.weight``/``bias`` or any ordered weight/bias pairs) into features
    with C = 1."""
    keys = list(params[0])
    wk = [k for k in keys if k.endswith("weight")]
    bk = [k for k in keys if k.endswith("bias")]
    w = tuple(torch.stack([p[k] for p in params])[:, None] for k in wk)
    b = tuple(torch.stack([p[k] for p in params])[:, None] for k in bk)
    return WeightSpaceFeatures(w, b)


def filter_size(shape) -> int:
    """Entries of one filter: 1 for a fully connected layer, h w for a convolution."""
    out = 1
    for d in shape:
        out *= d
    return out


def fold(t: torch.Tensor) -> torch.Tensor:
    """[B, C, o, i, h, w] -> [B, C h w, o, i] (filter positions folded into channels); 4-D tensors pass."""
    if t.dim() == 4:
        return t
    B, C, o, i, h, w = t.shape
    return t.permute(0, 1, 4, 5, 2, 3).reshape(B, C * h * w, o, i)


def unfold(t: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of ``fold`` for filter ``shape`` (h, w); () passes."""
    if not shape:
        return t
    B, Ck, o, i = t.shape
    h, w = shape
    return t.view(B, Ck // (h * w), h, w, o, i).permute(0, 1, 4, 5, 2, 3)


def check_filters(x: WeightSpaceFeatures, filters, who: str) -> None:
    """A layer built for one weight space (``filters``: per-layer filter shapes, () for FC) refuses another."""
    if x.filter_shapes != tuple(tuple(f) for f in filters):
        kind = "an MLP" if not any(filters) else "a CNN"
        raise ValueError(f"{who} was built for {kind} weight space with filter shapes {tuple(filters)}, got "
                         f"{x.filter_shapes}: pass filters=<the input's filter_shapes> when building it (MLP and CNN "
                         "weight spaces do not mix)")
