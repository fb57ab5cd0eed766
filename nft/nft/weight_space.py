"""Weight-space features of MLPs: per layer i = 1..L a weight tensor W_i [B, C, n_i, n_{i-1}] and a bias b_i
[B, C, n_i], C feature channels per entry (C = 1 for raw parameters). The neuron sets are 0 (inputs), 1..L-1
(hidden) and L (outputs); permuting set l by sigma (rows of W_l, entries of b_l, columns of W_{l+1}) is a neuron
permutation (S_NP); restricted to the hidden sets 1..L-1 it leaves an MLP's function unchanged (S_HNP).

CNN weight spaces (filter dims folded into channels, as the paper does) are not implemented yet: see the README.
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
        if any(t.dim() != 4 for t in w) or any(t.dim() != 3 for t in b):
            raise ValueError("weights must be [B, C, n_out, n_in] and biases [B, C, n_out] (MLP weight spaces; "
                             "CNN filters are not supported yet: fold them into channels first). Got weight dims "
                             f"{[t.dim() for t in w]}, bias dims {[t.dim() for t in b]}")
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
