"""The sequential, block-by-block pruning driver (arXiv 2306.11695, Section 3 and Appendix; SparseGPT's driver).

1. Capture the inputs of decoder block 0 for the calibration sequences (and the keyword arguments the model
   passes to its blocks: attention mask, position ids, rotary ``position_embeddings``, ...), by replacing
   block 0 with a catcher that records them and stops the forward pass.
2. For block l: run the DENSE block over all calibration inputs with hooks on every nn.Linear inside it, so
   all its linears' statistics come from the unpruned block (sum of x_j^2 per input feature for Wanda, the
   Hessian sum x x^T for SparseGPT); then prune every linear of the block.
3. Run the now-PRUNED block to produce the inputs of block l+1 (errors of earlier blocks propagate).

Blocks are found generically (the nn.ModuleList of length config.num_hidden_layers), so Llama, Mistral,
Qwen2, OPT, GPT-NeoX, ... work, on the current transformers API (decoder layers that return a tensor or a
tuple, rotary embeddings passed in as ``position_embeddings``). lm_head and embeddings are never pruned.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from tqdm.auto import tqdm

from wanda.masks import magnitude_score, parse_pattern, select_mask, sparsegpt_prune, wanda_score

METHODS = ("wanda", "magnitude", "sparsegpt")


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(dotted name, ModuleList) of the decoder blocks: the ModuleList of length num_hidden_layers."""
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    candidates = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, nn.ModuleList)
                  and len(mod) > 0 and (n is None or len(mod) == n)]
    if not candidates:
        raise ValueError(
            f"could not find the decoder blocks of {type(model).__name__}: expected an nn.ModuleList of "
            f"config.num_hidden_layers={n} blocks (as in Llama, Mistral, Qwen2, OPT, GPT-NeoX). Pass "
            "blocks=<dotted name of the ModuleList> to prune()")
    return min(candidates, key=lambda c: c[0].count("."))  # the outermost one


def find_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """Every nn.Linear inside a block, by relative name."""
    return {name: mod for name, mod in block.named_modules() if isinstance(mod, nn.Linear)}


class _Stop(Exception):
    pass


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _move(x, device):
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, tuple):
        return tuple(_move(v, device) for v in x)
    if isinstance(x, list):
        return [_move(v, device) for v in x]
    if isinstance(x, dict):
        return {k: _move(v, device) for k, v in x.items()}
    return x


@contextmanager
def _no_cache(model):
    hf_config = getattr(model, "config", None)
    old = getattr(hf_config, "use_cache", None)
    if hf_config is not None:
        hf_config.use_cache = False
    try:
        yield
    finally:
        if hf_config is not None:
            hf_config.use_cache = old


@torch.no_grad()
def capture_block_inputs(model: nn.Module, blocks: nn.ModuleList, calib: torch.Tensor, batch_size: int,
                         offload: bool = False) -> tuple[list[torch.Tensor], list[dict]]:
    """Inputs (hidden states) and keyword arguments of block 0, one entry per calibration batch.

    ``offload=True`` keeps the hidden states on the CPU between blocks (they are 128 x seqlen x hidden:
    about 2 GB in fp16 for a 7B model at 4096 tokens), so a 7B model fits a 24 GB GPU.
    """
    device = next(model.parameters()).device
    store = torch.device("cpu") if offload else device
    inps, kws = [], []
    first = blocks[0]

    class Catcher(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = first  # keeps attributes (e.g. attention_type) some models read from blocks[0]

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.inner, name)

        def forward(self, hidden, *args, **kwargs):
            inps.append(hidden.detach().to(store))
            kw = {k: v for k, v in kwargs.items() if k not in ("past_key_value", "past_key_values", "use_cache")}
            kws.append(_move(kw, store))
            raise _Stop

    blocks[0] = Catcher()
    try:
        with _no_cache(model):
            for batch in calib.split(batch_size):
                try:
                    model(batch.to(device))
                except _Stop:
                    pass
    finally:
        blocks[0] = first
    return inps, kws


@torch.no_grad()
def _run_block(block, inps, kws, device):
    return [_first(block(h.to(device), **_move(kw, device))).to(h.device) for h, kw in zip(inps, kws)]


class _Stats:
    """Accumulates, for one nn.Linear, sum_t x_t^2 per input feature (Wanda) and optionally sum_t x_t x_t^T
    (SparseGPT), over all calibration tokens, in float32."""

    def __init__(self, layer: nn.Linear, hessian: bool):
        c = layer.in_features
        dev = layer.weight.device
        self.sq = torch.zeros(c, dtype=torch.float32, device=dev)
        self.h = torch.zeros(c, c, dtype=torch.float32, device=dev) if hessian else None
        self.tokens = 0

    def __call__(self, module, args, output):
        x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
        self.sq += (x * x).sum(0)
        if self.h is not None:
            self.h += 2 * x.T @ x
        self.tokens += x.shape[0]


@torch.no_grad()
def block_statistics(block: nn.Module, inps, kws, device, hessian: bool = False):
    """Run the (dense) ``block`` over the calibration inputs with a ``_Stats`` hook on every nn.Linear;
    returns ({name: stats}, block outputs)."""
    lins = find_linears(block)
    stats = {n: _Stats(lin, hessian=hessian) for n, lin in lins.items()}
    hooks = [lin.register_forward_hook(stats[n]) for n, lin in lins.items()]
    try:
        outs = _run_block(block, inps, kws, device)
    finally:
        for h in hooks:
            h.remove()
    return stats, outs


def _prune_linear(layer: nn.Linear, stats: _Stats | None, method: str, sparsity: float, pattern: str,
                  group: str, variant: bool, blocksize: int, percdamp: float) -> None:
    w = layer.weight
    if method == "sparsegpt":
        new_w, _ = sparsegpt_prune(w, stats.h / max(stats.tokens, 1), sparsity, pattern, blocksize, percdamp)
        w.data.copy_(new_w.to(w.dtype))
        return
    score = wanda_score(w, stats.sq) if method == "wanda" else magnitude_score(w)
    mask = select_mask(score, sparsity, pattern, group, variant)
    w.data[mask] = 0


def _block_sparsities(sparsity: float | list[float], n_blocks: int) -> list[float]:
    if isinstance(sparsity, (int, float)):
        return [float(sparsity)] * n_blocks
    if len(sparsity) != n_blocks:
        raise ValueError(f"{len(sparsity)} per-block sparsities for {n_blocks} blocks")
    return [float(s) for s in sparsity]


@torch.no_grad()
def owl_sparsities(model: nn.Module, calib: torch.Tensor, sparsity: float, outlier_m: float = 5.0,
                   lam: float = 0.08, batch_size: int = 1, offload: bool = False,
                   blocks: str | None = None, return_ratios: bool = False):
    """OWL (Yin et al. 2023, "Outlier Weighed Layerwise sparsity"): non-uniform per-block sparsity.

    On the dense model, block l's outlier ratio D_l is the share of Wanda scores (of all its linears) above
    ``outlier_m`` x their mean. The D_l are mapped linearly onto [0, 2 lam], re-centred so that their mean is
    the target keep ratio 1 - s; block l keeps D'_l of its weights (sparsity 1 - D'_l): blocks with more
    outliers are pruned less, and the mean sparsity stays s. ``return_ratios`` also returns the D_l.
    """
    _, mlist = _resolve_blocks(model, blocks)
    device = next(model.parameters()).device
    inps, kws = capture_block_inputs(model, mlist, calib, batch_size, offload)
    ratios = []
    for block in tqdm(mlist, desc="owl", leave=False):
        stats, inps = block_statistics(block, inps, kws, device)  # dense outputs feed the next block
        lins = find_linears(block)
        scores = torch.cat([wanda_score(lin.weight, stats[n].sq).flatten() for n, lin in lins.items()])
        ratios.append((scores > outlier_m * scores.mean()).float().mean().item())
    r = torch.tensor(ratios, dtype=torch.float64)
    spread = r.max() - r.min()
    keep = (r - r.min()) / spread * (2 * lam) if spread > 0 else torch.zeros_like(r)
    keep = keep - keep.mean() + (1 - sparsity)
    out = (1 - keep).clamp(0.0, 0.99).tolist()
    return (out, ratios) if return_ratios else out


def _resolve_blocks(model, blocks: str | None):
    if blocks is None:
        return find_blocks(model)
    mod = model.get_submodule(blocks)
    if not isinstance(mod, nn.ModuleList):
        raise ValueError(f"blocks={blocks!r} is a {type(mod).__name__}, not an nn.ModuleList of decoder blocks")
    return blocks, mod


@torch.no_grad()
def prune(model: nn.Module, calib: torch.Tensor | None, method: str = "wanda",
          sparsity: float | list[float] = 0.5, pattern: str = "unstructured", group: str | None = None,
          variant: bool = False, batch_size: int = 1, offload: bool = False, blocksize: int = 128,
          percdamp: float = 0.01, blocks: str | None = None, progress: bool = True) -> dict[str, float]:
    """Prune every nn.Linear of every decoder block of ``model`` in place; returns the achieved sparsity of
    every pruned linear (by full name), of every block (``block.<i>``) and ``overall``.

    Args:
      model: a decoder-only causal LM (any HF ``*ForCausalLM`` whose blocks ``find_blocks`` finds).
      calib: LongTensor (n, seqlen) of calibration token ids (unused by magnitude; may be None there).
      method: "wanda" | "magnitude" | "sparsegpt".
      sparsity: target share of zeros per linear, in [0, 1); or one value per block (e.g. from
        ``owl_sparsities``).
      pattern: "unstructured" or "N:M" ("2:4", "4:8"; then sparsity must be N/M).
      group: comparison group for unstructured masks: "row" (Wanda's default: per output) or "layer"
        (magnitude's default, the paper's baseline). Ignored by N:M and SparseGPT.
      variant: Wanda's appendix variant (per-row cumulative-score alpha search).
      batch_size: calibration sequences per forward (the reference uses 1; results do not depend on it).
      offload: keep calibration hidden states on the CPU between blocks.
      blocksize / percdamp: SparseGPT's column block and dampening (128, 0.01 as in the paper).
      blocks: dotted name of the decoder-block ModuleList when it cannot be found automatically.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}: use one of {METHODS}")
    if any(p.is_meta for p in model.parameters()):
        raise RuntimeError("some weights are on the 'meta' device (device_map=auto offloaded them for lack of "
                           "GPU memory): pruning them would silently do nothing. Give the job more GPUs "
                           "(resources.gpus_per_node / model.gpus) or a smaller model")
    group = group or ("layer" if method == "magnitude" else "row")
    prefix, mlist = _resolve_blocks(model, blocks)
    per_block = _block_sparsities(sparsity, len(mlist))
    for s in per_block:
        parse_pattern(pattern, s)
    needs_data = method != "magnitude" and any(s > 0 for s in per_block)
    if needs_data:
        if calib is None or calib.dim() != 2 or calib.dtype != torch.long:
            raise ValueError("calib must be a LongTensor of token ids of shape (n_samples, seqlen) for "
                             f"method={method}")
        inps, kws = capture_block_inputs(model, mlist, calib, batch_size, offload)
    device = next(model.parameters()).device
    for i, block in enumerate(tqdm(mlist, desc=f"prune {method}", leave=False, disable=not progress)):
        lins = find_linears(block)
        if per_block[i] == 0:
            if needs_data:
                inps = _run_block(block, inps, kws, device)
            continue
        stats = {}
        if needs_data:  # statistics of the DENSE block (its outputs are discarded)
            stats, _ = block_statistics(block, inps, kws, device, hessian=method == "sparsegpt")
        for n, lin in lins.items():
            _prune_linear(lin, stats.get(n), method, per_block[i], pattern, group, variant, blocksize, percdamp)
        del stats
        if needs_data:
            inps = _run_block(block, inps, kws, device)  # the PRUNED block feeds the next one
    return sparsity_report(model, prefix, mlist)


def sparsity_report(model: nn.Module, prefix: str | None = None, mlist: nn.ModuleList | None = None) -> dict:
    """Achieved sparsity (share of exact zeros) of every linear in the decoder blocks, per block and overall."""
    if mlist is None:
        prefix, mlist = find_blocks(model)
    out, zeros, total = {}, 0, 0
    for i, block in enumerate(mlist):
        bz, bt = 0, 0
        for n, lin in find_linears(block).items():
            z, t = int((lin.weight == 0).sum()), lin.weight.numel()
            out[f"{prefix}.{i}.{n}"] = z / t
            bz, bt = bz + z, bt + t
        out[f"block.{i}"] = bz / max(bt, 1)
        zeros, total = zeros + bz, total + bt
    out["overall"] = zeros / max(total, 1)
    return out
