"""One training loop for every run (ViT classification and the GPT language model), timm-recipe style:
AdamW without weight decay on biases, norms and position embeddings; per-step linear warm-up then cosine decay
to ``min_lr``; gradient-norm clipping; bf16 autocast on CUDA; evaluation every ``eval_every`` epochs into a
curve; a checkpoint (model, optimiser, epoch, curve) every ``ckpt_every`` epochs, resumed from automatically.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """timm's ``param_groups_weight_decay``: no decay on 1-D parameters (biases, norms) and on the names the
    model lists in ``no_weight_decay()`` (a ViT's position embedding); frozen parameters are left out."""
    skip = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name in skip or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(step: int, total: int, warmup: int, base: float, min_lr: float) -> float:
    """Learning rate at ``step`` (0-based): linear from base/warmup to base over ``warmup`` steps, then cosine
    from base to ``min_lr`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (base - min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))


def classification_loss(model: nn.Module, batch, label_smoothing: float = 0.0, mixup=None) -> torch.Tensor:
    """Cross-entropy of a classifier (soft targets when a timm ``Mixup`` is given)."""
    x, y = batch
    if mixup is not None:
        x, y = mixup(x, y)
        return torch.sum(-y * F.log_softmax(model(x).float(), -1), -1).mean()
    return F.cross_entropy(model(x).float(), y, label_smoothing=label_smoothing)


def lm_loss(model: nn.Module, batch) -> torch.Tensor:
    """Next-token cross-entropy of an HF causal LM on (inputs, targets)."""
    x, y = batch
    logits = model(input_ids=x, use_cache=False).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def accuracy(model: nn.Module, batches, device, amp_dtype=None) -> dict:
    """Top-1 accuracy (%) and mean cross-entropy over ``batches`` of (x, y)."""
    model.eval()
    correct, n, loss = 0, 0, 0.0
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x).float()
        correct += (logits.argmax(-1) == y).sum().item()
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        n += len(y)
    model.train()
    return {"acc": 100.0 * correct / n, "loss": loss / n}


@torch.no_grad()
def perplexity(model: nn.Module, batches, device, amp_dtype=None) -> dict:
    """Token-level cross-entropy and perplexity over ``batches`` of (inputs, targets)."""
    model.eval()
    total, n = 0.0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(input_ids=x, use_cache=False).logits.float()
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        n += y.numel()
    model.train()
    return {"loss": total / n, "ppl": math.exp(min(total / n, 50.0))}


def train(model: nn.Module, batches, loss_fn: Callable, evaluate: Callable[[nn.Module], dict], *, epochs: int,
          lr: float, min_lr: float = 0.0, warmup_epochs: float = 0.0, weight_decay: float = 0.0,
          betas=(0.9, 0.999), eps: float = 1e-8, clip_grad: float | None = None, device=None, amp_dtype=None,
          eval_every: int = 1, ckpt_path: str | Path | None = None, ckpt_every: int = 1,
          stop_after_epoch: int | None = None, log: Callable | None = None, progress: bool = True) -> dict:
    """Train ``model`` for ``epochs`` over ``batches`` (``len`` = steps per epoch, ``.epoch(e)`` iterates) and
    return {curve: [{epoch, **evaluate(model)}], final_loss, seconds, examples, resumed_from, stopped}.

    A checkpoint at ``ckpt_path`` is resumed from (same schedule, same batches: the data order is a function of
    the epoch). ``stop_after_epoch`` stops as if killed after that epoch's checkpoint (resume tests)."""
    from tqdm.auto import tqdm

    device = device or torch.device("cpu")
    model.to(device).train()
    opt = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=tuple(betas), eps=eps)
    # fp16 needs loss scaling (bf16 and fp32 do not): a disabled scaler is a no-op
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    steps_per_epoch = len(batches)
    total, warmup = epochs * steps_per_epoch, int(round(warmup_epochs * steps_per_epoch))
    start, curve = 0, []
    ckpt_path = Path(ckpt_path) if ckpt_path else None
    if ckpt_path is not None and ckpt_path.exists():
        # CPU: RNG states must stay CPU byte tensors; load_state_dict moves weights and AdamW state to the device
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if state.get("scaler"):  # empty when saved by a disabled (bf16/fp32) scaler
            scaler.load_state_dict(state["scaler"])
        start, curve = state["epoch"], state["curve"]
        torch.set_rng_state(state["rng"]["torch"])  # dropout / drop-path / mixup draw from the global streams
        np.random.set_state(state["rng"]["numpy"])
        if torch.cuda.is_available() and state["rng"]["cuda"] is not None:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    resumed_from = start
    # seconds/examples of earlier segments come from the checkpoint, so a resumed run reports its whole throughput
    seconds0, examples = (state.get("seconds", 0.0), state.get("examples", 0)) if start else (0.0, 0)
    last_loss = curve[-1]["train_loss"] if curve else float("nan")  # a run resumed at its last epoch trains no more
    t0 = time.time()
    bar = tqdm(total=total, initial=start * steps_per_epoch, disable=not progress, desc="train", unit="step")
    for e in range(start, epochs):
        run_loss, n_batches = torch.zeros((), device=device), 0
        for i, batch in enumerate(batches.epoch(e)):
            step = e * steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = warmup_cosine(step, total, warmup, lr, min_lr)
            batch = tuple(b.to(device, non_blocking=True) for b in batch)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(model, batch)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip_grad:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(opt)
            scaler.update()
            run_loss += loss.detach()
            n_batches += 1
            examples += len(batch[0])
            bar.update(1)
        last_loss = (run_loss / max(n_batches, 1)).item()
        if not math.isfinite(last_loss):
            bar.close()
            raise FloatingPointError(f"training loss is {last_loss} at epoch {e + 1}: lower train.lr or set "
                                     "train.clip_grad")
        row = {"epoch": e + 1, "train_loss": last_loss, "lr": opt.param_groups[0]["lr"]}
        if (e + 1) % eval_every == 0 or e + 1 == epochs:
            row.update(evaluate(model))
        curve.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train_loss", "acc", "ppl")})
        if log is not None:
            log({f"epoch/{k}": v for k, v in row.items() if k != "epoch"}, step=e + 1)
        if ckpt_path is not None and ((e + 1) % ckpt_every == 0 or e + 1 == epochs):
            tmp = ckpt_path.with_suffix(".tmp")
            rng = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                   "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "scaler": scaler.state_dict(),
                        "epoch": e + 1, "curve": curve, "rng": rng, "seconds": seconds0 + time.time() - t0,
                        "examples": examples}, tmp)
            tmp.replace(ckpt_path)  # atomic: a job killed mid-write keeps its last good checkpoint
        if stop_after_epoch is not None and e + 1 >= stop_after_epoch and e + 1 < epochs:
            bar.close()
            return {"curve": curve, "stopped": True, "epochs_done": e + 1, "resumed_from": resumed_from}
    bar.close()
    secs = seconds0 + time.time() - t0
    return {"curve": curve, "final_loss": last_loss, "seconds": secs, "examples": examples,
            "resumed_from": resumed_from, "stopped": False}


def epochs_to_reach(curve: list[dict], key: str, threshold: float, higher_is_better: bool = True) -> float:
    """First epoch whose ``key`` reaches ``threshold`` (``inf`` if never): the training-speed measure."""
    for row in curve:
        if key in row and (row[key] >= threshold if higher_is_better else row[key] <= threshold):
            return float(row["epoch"])
    return float("inf")
