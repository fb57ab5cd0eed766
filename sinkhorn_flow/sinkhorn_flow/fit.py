"""Training and evaluation of a flow model on ``Transitions`` (full batch), with checkpoint and resume."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import trange

from sinkhorn_flow.data import Transitions
from sinkhorn_flow.metrics import cross_entropy, flow_metrics
from sinkhorn_flow.model import SinkhornFlow


def predict(model: SinkhornFlow, data: Transitions, feature_names: list[str]) -> torch.Tensor:
    """log P for every transition of ``data`` (the model's current train/eval mode decides n_iters)."""
    return model(data.select_features(feature_names), data.a, data.b, data.mask, data.prev_trans)


def _save(path: Path, model, opt, step: int) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)  # atomic: a kill mid-save leaves the previous checkpoint intact


def train_model(model: SinkhornFlow, data: Transitions, feature_names: list[str], steps: int = 200,
                lr: float = 2e-2, ckpt_path: str | Path | None = None, ckpt_every: int = 50,
                stop_after: int | None = None, log: Callable[[dict, int], None] | None = None,
                log_every: int = 10, progress: bool = True) -> dict:
    """Full-batch Adam on the flow cross-entropy -sum F log P (= KL(F || P) + const, spec section 2).

    Resumes from ``ckpt_path`` when it exists (model, optimiser, step and RNG), saves every
    ``ckpt_every`` steps and at the end. ``stop_after`` ends the call after that many steps as if the job
    were killed (for resume tests). Returns {"steps_done", "final_loss", "resumed_from"}.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start, ckpt_path = 0, Path(ckpt_path) if ckpt_path else None
    if ckpt_path is not None and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["rng"])
        start = state["step"]
    resumed_from, loss = start, torch.tensor(float("nan"))
    model.train()
    for step in trange(start, steps, disable=not progress, desc="train", leave=False):
        log_p = predict(model, data, feature_names)
        loss = cross_entropy(data.flow, log_p).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log is not None and (step % log_every == 0 or step + 1 == steps):
            # The column marginal is the one the layer does not enforce last (rows are exact): log it.
            col = (log_p.detach().exp().sum(-2) - data.b).abs().sum(-1).mean()
            log({"train/loss": loss.item(), "train/step_col_l1": col.item()}, step)
        if ckpt_path is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            _save(ckpt_path, model, opt, step + 1)
        if stop_after is not None and step + 1 - resumed_from >= stop_after and step + 1 < steps:
            return {"steps_done": step + 1, "final_loss": loss.item(), "resumed_from": resumed_from,
                    "stopped": True}
    if resumed_from >= steps:  # rerun of a finished run: report the loss of the restored model
        with torch.no_grad():
            loss = cross_entropy(data.flow, predict(model, data, feature_names)).mean()
    return {"steps_done": steps, "final_loss": loss.item(), "resumed_from": resumed_from, "stopped": False}


@torch.no_grad()
def evaluate(log_p: torch.Tensor, data: Transitions) -> dict[str, float]:
    """Mean of each flow metric over the transitions of ``data``."""
    return {k: v.mean().item() for k, v in flow_metrics(data.flow, log_p, data.a, data.b).items()}


@torch.no_grad()
def evaluate_model(model: SinkhornFlow, data: Transitions, feature_names: list[str]) -> dict[str, float]:
    """Evaluate in eval mode (n_iters_eval Sinkhorn iterations)."""
    model.eval()
    return evaluate(predict(model, data, feature_names), data)
