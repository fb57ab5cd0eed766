"""The only module that reads a config: model + data, prune, evaluate, record (metrics.json, sparsity.json)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from shared.device import get_device, limit_threads, seed_everything
from shared.logging import resolve_run_dir, start_run
from wanda.data import c4_calibration, pydoc_bytes, random_windows, split_stream, wikitext2_test
from wanda.eval import perplexity, zero_shot
from wanda.models import cached_tiny_model, load_model, load_tokenizer
from wanda.prune import owl_sparsities, prune, sparsity_report

PROJECT_DIR = Path(__file__).resolve().parents[1]


def resolve_path(path: str | None) -> Path | None:
    """A path as given when it exists or is absolute, else relative to the project folder."""
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_absolute() or p.exists() else PROJECT_DIR / p


def build(cfg: DictConfig, device: torch.device):
    """(model, tokenizer or None, calibration ids (n, seqlen), evaluation ids (T,), seqlen)."""
    m, d = cfg.model, cfg.data
    if m.kind == "tiny":
        if d.name != "pydoc":
            raise ValueError("model=tiny is byte-level: use data=pydoc")
        train_ids, test_ids = split_stream(pydoc_bytes(), d.train_frac)
        model, _ = cached_tiny_model(resolve_path(m.cache_dir), train_ids, OmegaConf.to_container(m.arch),
                                     OmegaConf.to_container(m.train), progress=cfg.progress)
        model.to(device)
        calib = random_windows(train_ids, d.nsamples, m.seqlen, seed=cfg.seed)
        return model, None, calib, test_ids, m.seqlen
    if m.kind != "hf":
        raise ValueError(f"model.kind={m.kind!r}: use tiny or hf")
    if d.name != "c4_wikitext":
        raise ValueError("a hub model (model.kind=hf) is calibrated on C4 and evaluated on WikiText-2: "
                         "use data=c4_wikitext")
    path = str(resolve_path(m.path)) if m.path.startswith((".", "/", "~")) else m.path
    model = load_model(path, dtype=m.dtype, device=device, device_map=m.device_map)
    tok = load_tokenizer(path)
    seqlen = m.seqlen or model.config.max_position_embeddings
    calib = c4_calibration(tok, d.nsamples, seqlen, seed=cfg.seed, path=d.calib_path)
    test_ids = wikitext2_test(tok, path=d.eval_path)
    return model, tok, calib, test_ids, seqlen


def export_24(model, pattern: str, test_ids, seqlen: int, batch_size: int) -> dict:
    """Convert 2:4-pruned linears to semi-structured sparse tensors and re-measure perplexity (CUDA only)."""
    from wanda.export import to_semi_structured

    if pattern != "2:4":
        raise ValueError(f"export_semi_structured needs setting.pattern='2:4' (got {pattern!r}): only 2:4 maps "
                         "onto sparse tensor cores; unstructured and 4:8 sparsity give no speedup")
    if next(model.parameters()).device.type != "cuda":
        raise ValueError("export_semi_structured needs a CUDA GPU (device=cuda) and fp16/bf16 weights")
    n = to_semi_structured(model)
    return {"export/semi_structured_linears": n,
            "test/ppl_semi_structured": perplexity(model, test_ids, seqlen, batch_size)}


def run(cfg: DictConfig) -> float:
    """One row of a table: prune ``cfg.model`` with ``cfg.method`` at ``cfg.setting``; returns test/ppl."""
    limit_threads()
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    device = get_device(cfg.device)
    meth, setting = cfg.method, cfg.setting
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        model, tok, calib, test_ids, seqlen = build(cfg, device)
        summary = {"data/calib_shape": list(calib.shape), "data/eval_tokens": int(test_ids.numel()),
                   "data/seqlen": seqlen}
        if cfg.eval_dense and meth.name != "dense":
            summary["test/ppl_dense"] = perplexity(model, test_ids, seqlen, cfg.eval_batch_size, cfg.progress)
        t0 = time.time()
        if meth.name == "dense":
            report = sparsity_report(model)
        else:
            sparsity = setting.sparsity
            if meth.owl.enabled:
                sparsity = owl_sparsities(model, calib, setting.sparsity, meth.owl.outlier_m, meth.owl.lam,
                                          cfg.calib_batch_size, cfg.offload)
                summary["method/owl_block_sparsity"] = sparsity
            report = prune(model, calib, method=meth.algorithm, sparsity=sparsity, pattern=setting.pattern,
                           group=meth.group, variant=meth.variant, batch_size=cfg.calib_batch_size,
                           offload=cfg.offload, blocksize=meth.blocksize, percdamp=meth.percdamp,
                           progress=cfg.progress)
        summary["prune/seconds"] = time.time() - t0
        summary["achieved/sparsity"] = report["overall"]
        (run_dir / "sparsity.json").write_text(json.dumps(report, indent=2))
        summary["test/ppl"] = perplexity(model, test_ids, seqlen, cfg.eval_batch_size, cfg.progress)
        rec.log({"test/ppl": summary["test/ppl"], "achieved/sparsity": report["overall"]}, step=0)
        if cfg.zero_shot.enabled:
            if tok is None:
                raise ValueError("zero_shot needs a tokenizer: use a hub model (model.kind=hf)")
            summary.update(zero_shot(model, tok, list(cfg.zero_shot.tasks), cfg.zero_shot.limit,
                                     include_path=cfg.zero_shot.include_path))
        if cfg.save_pruned:
            model.save_pretrained(run_dir / "pruned")
            if tok is not None:
                tok.save_pretrained(run_dir / "pruned")
        if cfg.export_semi_structured:  # after saving: the sparse tensors do not save_pretrained
            summary.update(export_24(model, setting.pattern, test_ids, seqlen, cfg.eval_batch_size))
        rec.finish(summary)
    return float(summary[cfg.optimized_metric])


def evaluate_saved(cfg: DictConfig) -> dict:
    """Perplexity and achieved sparsity of a saved model; writes eval.json beside it."""
    limit_threads()
    path = resolve_path(cfg.model_path)
    model = load_model(str(path), dtype=cfg.dtype, device=get_device(cfg.device))
    seqlen = cfg.seqlen or model.config.max_position_embeddings
    if cfg.data == "pydoc":
        ids = split_stream(pydoc_bytes())[1]
    elif cfg.data == "wikitext2":
        ids = wikitext2_test(load_tokenizer(str(path)), path=cfg.eval_path)
    else:
        raise ValueError(f"data={cfg.data!r}: use pydoc or wikitext2")
    out = {"test/ppl": perplexity(model, ids, seqlen, cfg.batch_size),
           "achieved/sparsity": sparsity_report(model)["overall"], "seqlen": seqlen}
    (path / "eval.json").write_text(json.dumps(out, indent=2))
    return out
