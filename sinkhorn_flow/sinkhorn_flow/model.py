"""Sinkhorn-Flow models: a pair scorer (MLP over pair features, or a GRU over the pair's past flows)
feeding the Sinkhorn layer (spec section 2 [reconstructed]).

S_ij = NN(phi_ij); P = sinkhorn(S, a, b). With ``n_iters = 0`` the same network is the softmax-rows
baseline, so Sinkhorn-Flow and softmax differ only in the column normalisation. With ``marginals =
"predicted"`` the next marginal b is not observed: a softmax-rows head over the same pair features
predicts b_hat = (softmax-rows flow)^T 1, and the Sinkhorn layer couples a with b_hat.
"""
from __future__ import annotations

import torch
from torch import nn

from sinkhorn_flow.sinkhorn import sinkhorn

MARGINALS = ("given", "predicted")


class MLPScorer(nn.Module):
    """phi_ij (..., F) -> S_ij (...): a small MLP applied to every pair independently."""

    def __init__(self, n_features: int, hidden: int = 32, depth: int = 1):
        super().__init__()
        layers, width = [], n_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (..., K, L) from features (..., K, L, F); ``history`` is ignored."""
        return self.net(features).squeeze(-1)


class GRUScorer(nn.Module):
    """The sequence variant: a GRU reads each pair's past transition probabilities (oldest first), and
    its last state joins the pair features in an MLP head. All pairs of all transitions run as one batch."""

    def __init__(self, n_features: int, hidden: int = 32, gru_hidden: int = 16):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=gru_hidden, batch_first=True)
        self.head = MLPScorer(n_features + gru_hidden, hidden)

    def forward(self, features: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (..., K, L) from features (..., K, L, F) and history (..., H, K, L), lag 1 first."""
        if history is None:
            raise ValueError("scorer=gru needs the pairs' past flows (data.history >= 1)")
        seq = history.flip(-3).movedim(-3, -1)  # (..., K, L, H), oldest lag first
        lead = seq.shape[:-1]
        _, h = self.gru(seq.reshape(-1, seq.shape[-1], 1))
        state = h[-1].reshape(*lead, -1)
        return self.head(torch.cat([features, state], dim=-1))


class SinkhornFlow(nn.Module):
    """Predict the flow log P (..., K, L) between communities from pair features and marginals.

    Args:
      n_features: pair feature count F. scorer: "mlp" | "gru". hidden: scorer width.
      n_iters_train / n_iters_eval: Sinkhorn iterations in training / evaluation (0 = softmax rows).
      eps: entropic regularisation (1: the learned scores absorb the scale). backward: "unrolled" | "implicit".
      marginals: "given" (b observed) | "predicted" (b_hat from a softmax-rows head).
      feature_mean / feature_std: standardisation of the features, fitted on the training split.
    """

    def __init__(self, n_features: int, scorer: str = "mlp", hidden: int = 32, n_iters_train: int = 15,
                 n_iters_eval: int = 200, eps: float = 1.0, backward: str = "unrolled",
                 marginals: str = "given", feature_mean: torch.Tensor | None = None,
                 feature_std: torch.Tensor | None = None):
        super().__init__()
        if marginals not in MARGINALS:
            raise ValueError(f"marginals={marginals!r}; use one of {MARGINALS}")
        scorers = {"mlp": lambda: MLPScorer(n_features, hidden), "gru": lambda: GRUScorer(n_features, hidden)}
        if scorer not in scorers:
            raise ValueError(f"scorer={scorer!r}; use one of {sorted(scorers)}")
        self.scorer = scorers[scorer]()
        self.marginal_head = MLPScorer(n_features, hidden) if marginals == "predicted" else None
        self.n_iters_train, self.n_iters_eval = n_iters_train, n_iters_eval
        self.eps, self.backward, self.marginals = eps, backward, marginals
        self.register_buffer("feature_mean", torch.zeros(n_features) if feature_mean is None else feature_mean)
        self.register_buffer("feature_std", torch.ones(n_features) if feature_std is None else feature_std)

    @property
    def n_iters(self) -> int:
        """Iterations used now: the training count in train mode, the evaluation count in eval mode."""
        return self.n_iters_train if self.training else self.n_iters_eval

    def predict_marginal(self, z: torch.Tensor, a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """b_hat = column sums of the softmax-rows flow of the marginal head (same total mass as a)."""
        return sinkhorn(self.marginal_head(z), a, None, n_iters=0, mask=mask, validate=False).sum(-2)

    def forward(self, features: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None, mask: torch.Tensor,
                history: torch.Tensor | None = None) -> torch.Tensor:
        """log P (..., K, L). ``b`` is used when marginals == "given" (it may be None otherwise)."""
        z = (features - self.feature_mean) / self.feature_std
        scores = self.scorer(z, history)
        if self.marginals == "predicted":
            b = self.predict_marginal(z, a, mask)
        elif b is None and self.n_iters > 0:
            raise ValueError("marginals=given needs the observed next marginal b")
        if self.n_iters == 0:
            b = None  # softmax rows: the column marginal plays no part (it may only enter as a feature)
        return sinkhorn(scores, a, b, n_iters=self.n_iters, eps=self.eps, backward=self.backward, mask=mask,
                        log=True, validate=False)


def fit_standardiser(features: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-feature mean and std over the allowed pairs (std floored so constant features pass through)."""
    x = features[mask]
    return x.mean(0), x.std(0).clamp_min(1e-6)
