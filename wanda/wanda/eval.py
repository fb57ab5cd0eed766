"""Evaluation: perplexity with the paper's protocol, and zero-shot accuracy through lm-eval (optional)."""
from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm


@torch.no_grad()
def perplexity(model: nn.Module, token_ids: torch.Tensor, seqlen: int, batch_size: int = 1,
               progress: bool = False) -> float:
    """exp(mean next-token NLL) over non-overlapping windows of ``seqlen`` tokens (the tail is dropped).

    The paper's protocol (WikiText-2, seqlen 2048 for LLaMA-1 / 4096 for LLaMA-2): each window is scored on
    its own, predicting tokens 2..seqlen of the window from their prefix.
    """
    ids = token_ids.flatten()
    n = ids.numel() // seqlen
    if n == 0:
        raise ValueError(f"{ids.numel()} evaluation tokens are fewer than one window of seqlen={seqlen}")
    windows = ids[: n * seqlen].view(n, seqlen)
    device = next(model.parameters()).device
    nll, count = 0.0, 0
    for batch in tqdm(windows.split(batch_size), desc="ppl", leave=False, disable=not progress):
        batch = batch.to(device)
        logits = model(batch).logits[:, :-1].float()
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                           reduction="sum")
        nll += loss.item()
        count += batch[:, 1:].numel()
    return math.exp(nll / count)


ZERO_SHOT_TASKS = ("boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge", "openbookqa")


def zero_shot(model, tokenizer, tasks=ZERO_SHOT_TASKS, limit: int | None = None, batch_size: int = 1,
              include_path: str | None = None) -> dict[str, float]:
    """Zero-shot ``acc`` (NOT acc_norm, as in the paper's Table 2) of each lm-eval 0.4 task, and their mean.

    Needs the tasks' datasets (hub) unless ``include_path`` holds local task YAMLs.
    """
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    kwargs = {}
    if include_path:
        from lm_eval.tasks import TaskManager

        kwargs["task_manager"] = TaskManager(include_path=include_path)
    res = lm_eval.simple_evaluate(model=lm, tasks=list(tasks), limit=limit, num_fewshot=0, **kwargs)
    out = {}
    for task in tasks:
        r = res["results"][task]
        acc = r.get("acc,none", r.get("acc"))
        if acc is None:
            raise KeyError(f"lm-eval task {task} reported no 'acc' (keys {sorted(r)})")
        out[f"zeroshot/{task}"] = 100 * float(acc)
    out["zeroshot/mean"] = sum(out.values()) / len(tasks)
    return out
