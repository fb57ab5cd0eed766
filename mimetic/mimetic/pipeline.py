"""The only module that reads a config: seed, build model and data, apply the init, train, record, resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mimetic import data as D
from mimetic.diagnostics import attention_diagnostics
from mimetic.fit import accuracy, classification_loss, epochs_to_reach, lm_loss, perplexity, train
from mimetic.models import apply_init, build_gpt, build_vit
from shared.device import autocast_dtype, get_device, limit_threads, seed_everything
from shared.logging import resolve_run_dir, start_run

PROJECT_DIR = Path(__file__).resolve().parents[1]
Z_STREAM = 7919  # the init's Z comes from its own generator (seed + this): model weights and data order are
#                  identical between the default and mimetic arms of one seed


def resolve_path(path: str) -> Path:
    """A path as given, or relative to the project folder (so runs work from any cwd)."""
    p = Path(str(path)).expanduser()
    return p if p.is_absolute() or p.exists() else PROJECT_DIR / p


def amp_dtype(amp: str, device: torch.device):
    """``amp``: auto (bf16/fp16 on CUDA, none on CPU) | bf16 | fp16 | none."""
    if amp == "auto":
        return autocast_dtype(device)
    table = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if amp not in table:
        raise ValueError(f"amp={amp!r}: use auto, bf16, fp16 or none")
    return table[amp]


def build_model(m: DictConfig, d: DictConfig) -> torch.nn.Module:
    """The model of ``model`` (kind vit | gpt) for the data ``data``."""
    if m.kind == "vit":
        if d.name == "text":
            raise ValueError("model.kind=vit with data=text: use model=gpt_small for language data")
        return build_vit(d.img_size, m.patch_size, d.in_chans, d.num_classes, m.embed_dim, m.depth, m.num_heads,
                         m.mlp_ratio, m.pos_embed, m.class_token, m.global_pool, m.drop_path_rate,
                         patch_embed_init=m.get("patch_embed_init", "timm"))  # older runs' configs lack it
    if m.kind == "gpt":
        if d.name != "text":
            raise ValueError(f"model.kind=gpt needs data=wikitext103 (a token stream), got data.name={d.name}")
        return build_gpt(D.vocab_size(d.tokenizer), m.n_positions, m.n_embd, m.n_layer, m.n_head, m.dropout)
    raise ValueError(f"model.kind={m.kind!r}: use vit or gpt")


def build_data(d: DictConfig, seed: int, block: int | None = None, train: bool = True) -> tuple:
    """(train batches, evaluation batches as a list or re-iterable, n_train, n_test) of ``data``;
    ``train=False`` skips the training split where that saves work (tokenising, dataset scans): None, 0."""
    if d.name == "digits":
        xtr, ytr, xte, yte = D.digits(d.n_train, d.split_seed)
        return (D.TensorBatches(xtr, ytr, d.batch_size, seed, roll=d.roll),
                list(D.TensorBatches(xte, yte, d.eval_batch_size, seed, shuffle=False).epoch(0)), len(xtr), len(xte))
    if d.name == "random":
        xtr, ytr = D.random_images(d.n_train, d.img_size, d.in_chans, d.num_classes, seed)
        xte, yte = D.random_images(d.n_test, d.img_size, d.in_chans, d.num_classes, seed + 1)
        return (D.TensorBatches(xtr, ytr, d.batch_size, seed),
                list(D.TensorBatches(xte, yte, d.eval_batch_size, seed, shuffle=False).epoch(0)), len(xtr), len(xte))
    if d.name in D.VISION:
        root = resolve_path(d.root)
        tf_train = D.vision_transform(True, d.img_size, d.mean, d.std, d.auto_augment, d.hflip, d.re_prob,
                                      d.crop_pct, d.interpolation, d.scale, d.ratio)
        tf_test = D.vision_transform(False, d.img_size, d.mean, d.std, None, 0.0, 0.0, d.crop_pct, d.interpolation)
        tr = D.vision_dataset(d.name, root, True, tf_train, d.download) if train else None
        te = D.vision_dataset(d.name, root, False, tf_test, d.download)
        pin = torch.cuda.is_available()
        return (D.LoaderBatches(tr, d.batch_size, seed, d.workers, pin_memory=pin) if train else None,
                D.LoaderBatches(te, d.eval_batch_size, seed, d.workers, shuffle=False, drop_last=False,
                                pin_memory=pin).epoch(0), len(tr) if train else 0, len(te))
    if d.name == "text":
        root = resolve_path(d.root)
        files = (("train", d.train_file),) * train + (("test", d.test_file),)
        toks = {s: D.load_tokens(root / f, d.tokenizer) for s, f in files}
        return (D.TokenBlocks(toks["train"], block, d.batch_size, seed) if train else None,
                list(D.TokenBlocks(toks["test"], block, d.eval_batch_size, seed, shuffle=False).epoch(0)),
                len(toks["train"]) if train else 0, len(toks["test"]))
    raise ValueError(f"data.name={d.name!r}: use digits, random, text or one of {sorted(D.VISION)}")


def init_summary(model: torch.nn.Module) -> dict:
    """Mean (over layers and heads) diagonal of W_q W_k^T and W_v W_proj right after the init."""
    diag = attention_diagnostics(model)
    return {"init/qk_diag_mean": float(np.mean([h for r in diag for h in r["qk_diag_mean"]])),
            "init/vo_diag_mean": float(np.mean([r["vo_diag_mean"] for r in diag])),
            "init/layers": diag}


def run(cfg: DictConfig) -> float:
    """One training run; writes metrics.json (+ ckpt.pt, curve) into the run dir and returns
    ``cfg.optimized_metric``. Rerunning with the same ``run_dir`` resumes from the last checkpoint."""
    limit_threads()
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    device = get_device(cfg.device)
    amp = amp_dtype(cfg.amp, device)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        model = build_model(cfg.model, cfg.data)
        i = cfg.init
        if cfg.model.kind == "gpt" and i.name.startswith("torch"):
            raise ValueError(f"init={i.name} resets nn.Linear layers, but GPT-2 uses Conv1D (only its lm_head, tied "
                             "to the embeddings, is a Linear): use init=default or init=mimetic for the LM")
        done = apply_init(model, i.name, i.alpha1, i.beta1, i.alpha2, i.beta2,
                          generator=torch.Generator().manual_seed(int(cfg.seed) + Z_STREAM), svd=i.svd)
        init_stats = init_summary(model)
        (run_dir / "init_diagnostics.json").write_text(json.dumps(init_stats.pop("init/layers"), indent=1))
        summary = {**done, **init_stats, "model/n_params": sum(p.numel() for p in model.parameters())}
        lm = cfg.model.kind == "gpt"
        batches, test, n_train, n_test = build_data(cfg.data, cfg.seed, cfg.model.n_positions if lm else None)
        summary.update({"data/n_train": n_train, "data/n_test": n_test})
        if lm:
            loss_fn = lm_loss
            evaluate = lambda mdl: perplexity(mdl, test, device, amp)  # noqa: E731
        else:
            mixup = None
            if cfg.data.get("mixup", 0) > 0 or cfg.data.get("cutmix", 0) > 0:
                from timm.data import Mixup

                mixup = Mixup(mixup_alpha=cfg.data.mixup, cutmix_alpha=cfg.data.cutmix,
                              label_smoothing=cfg.train.label_smoothing, num_classes=cfg.data.num_classes)
            loss_fn = lambda mdl, b: classification_loss(mdl, b, cfg.train.label_smoothing, mixup)  # noqa: E731
            evaluate = lambda mdl: accuracy(mdl, test, device, amp)  # noqa: E731
        t = cfg.train
        out = train(model, batches, loss_fn, evaluate, epochs=t.epochs, lr=t.lr, min_lr=t.min_lr,
                    warmup_epochs=t.warmup_epochs, weight_decay=t.weight_decay, betas=tuple(t.betas), eps=t.eps,
                    clip_grad=t.clip_grad, device=device, amp_dtype=amp, eval_every=t.eval_every,
                    ckpt_path=run_dir / "ckpt.pt", ckpt_every=t.ckpt_every, stop_after_epoch=t.stop_after_epoch,
                    log=rec.log, progress=t.progress)
        if out["stopped"]:
            # As if the job were killed after a checkpoint: no summary; rerun in this run dir to resume.
            rec.finish(status="interrupted", summary={"train/epochs_done": out["epochs_done"]})
            return float("nan")
        curve = out["curve"]
        last = curve[-1]
        summary.update({"train/final_loss": out["final_loss"], "train/seconds": out["seconds"],
                        "train/examples_per_s": out["examples"] / max(out["seconds"], 1e-9),
                        "train/resumed_from_epoch": out["resumed_from"], "train/epochs": t.epochs})
        key = "ppl" if lm else "acc"
        evald = [r for r in curve if key in r]
        summary[f"test/{key}"] = last[key]
        summary[f"test/{key}_curve"] = [[r["epoch"], r[key]] for r in evald]
        if lm:
            summary["test/best_ppl"] = min(r["ppl"] for r in evald)
            summary["test/loss"] = last["loss"]
        else:
            summary["test/best_acc"] = max(r["acc"] for r in evald)
            for thr in cfg.report.acc_thresholds:
                summary[f"test/epochs_to_{thr:g}"] = epochs_to_reach(evald, "acc", thr)
        rec.finish(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    value = summary.get(cfg.optimized_metric)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def evaluate_run(cfg: DictConfig) -> dict:
    """Re-evaluate a finished run from its config.yaml and ckpt.pt on its test split, with the trained model's
    attention diagnostics (the paper's Fig. 1 quantities, after training); writes eval.json into the run dir."""
    run_dir = resolve_path(cfg.run_dir)
    if not (run_dir / "config.yaml").exists() or not (run_dir / "ckpt.pt").exists():
        raise FileNotFoundError(f"{run_dir} holds no config.yaml + ckpt.pt: pass run_dir=<a train.py run directory>")
    rcfg = OmegaConf.load(run_dir / "config.yaml")
    limit_threads()
    device = get_device(cfg.device)
    amp = amp_dtype(rcfg.amp, device)
    model = build_model(rcfg.model, rcfg.data)
    model.load_state_dict(torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False)["model"])
    model.to(device)
    lm = rcfg.model.kind == "gpt"
    _, test, _, n_test = build_data(rcfg.data, rcfg.seed, rcfg.model.n_positions if lm else None, train=False)
    res = (perplexity if lm else accuracy)(model, test, device, amp)
    out = {f"test/{k}": v for k, v in res.items()} | {"data/n_test": n_test}
    diag = attention_diagnostics(model)
    out["trained/qk_diag_mean"] = float(np.mean([h for r in diag for h in r["qk_diag_mean"]]))
    out["trained/vo_diag_mean"] = float(np.mean([r["vo_diag_mean"] for r in diag]))
    out["trained/layers"] = diag
    (run_dir / "eval.json").write_text(json.dumps(out, indent=2))
    return out
