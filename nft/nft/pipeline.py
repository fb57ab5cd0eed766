"""The only module that reads a config: ``study=classify`` trains one model (mlp | statnet | nfn | nft) to classify
SIRENs by what they draw, from their weights, and reports test accuracy on the held-out SIRENs and on the same
SIRENs with random hidden-neuron permutations (one per SIREN), plus how often the two predictions agree."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from shared.device import seed_everything
from shared.logging import resolve_run_dir, start_run

MODELS = ("mlp", "statnet", "nfn", "nft")


def build_model(m: DictConfig, widths, n_classes: int):
    from nft.models import NFN, NFT, MLPBaseline, StatNet

    if m.name == "mlp":
        n_params = sum(widths[i] * widths[i + 1] + widths[i + 1] for i in range(len(widths) - 1))
        return MLPBaseline(n_params, n_classes, m.hidden, m.layers)
    if m.name == "statnet":
        return StatNet(len(widths) - 1, n_classes, m.hidden)
    if m.name == "nfn":
        return NFN(widths, n_classes, m.channels, m.depth, m.fourier_m, m.fourier_scale, m.head_hidden, m.dropout)
    if m.name == "nft":
        return NFT(widths, n_classes, m.channels, m.depth, m.heads, m.ff_factor, m.fourier_m, m.fourier_scale,
                   m.head_hidden, m.dropout)
    raise ValueError(f"model.name={m.name!r}: one of {MODELS}")


def _batches(x, y, size, gen=None):
    n = len(y)
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for s in range(0, n, size):
        j = idx[s:s + size]
        yield x.map(lambda t, j=j: t[j]), y[j]


@torch.no_grad()
def predict(model, x, batch: int = 512) -> torch.Tensor:
    model.eval()
    return torch.cat([model(xb) for xb, _ in _batches(x, torch.zeros(x.batch), batch)])


def run(cfg: DictConfig) -> float:
    """One run; returns ``cfg.optimized_metric``."""
    from nft.data import digits_zoo
    from nft.weight_space import random_hidden_permutations

    if cfg.study != "classify":
        raise ValueError(f"study={cfg.study!r}: classify (Inr2Array, generalisation prediction and editing are "
                         "not implemented yet)")
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    z = cfg.zoo
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        t0 = time.perf_counter()
        zoo = digits_zoo(list(z.classes) if z.classes else None, z.copies, tuple(z.hidden), z.steps, z.lr,
                         z.w0_first, z.w0_hidden, z.test_frac, z.split_seed, z.cache_dir, cfg.progress)
        t_fit = time.perf_counter() - t0
        (xtr, ytr), (xte, yte) = zoo["train"], zoo["test"]
        # per-layer scalar standardisation from the training SIRENs: keeps exact permutation invariance
        stats = [(t.mean(), t.std()) for t in xtr.weights + xtr.biases]
        L = xtr.n_layers

        def norm(x):
            ws = tuple((w - stats[i][0]) / stats[i][1] for i, w in enumerate(x.weights))
            bs = tuple((b - stats[L + i][0]) / stats[L + i][1] for i, b in enumerate(x.biases))
            return type(x)(ws, bs)

        xtr, xte = norm(xtr), norm(xte)
        model = build_model(cfg.model, zoo["widths"], zoo["n_classes"])
        o = cfg.optim
        opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        gen = torch.Generator().manual_seed(cfg.seed)
        ck, start = Path(run_dir) / "checkpoint.pt", 0
        sig = {k: OmegaConf.to_container(cfg[k]) for k in ("zoo", "model", "optim")} | {"seed": cfg.seed}
        sig["optim"].pop("epochs")  # more epochs extend a run; anything else makes it another run
        if ck.exists():  # a killed run resumes from its last finished epoch
            blob = torch.load(ck, weights_only=False)
            if blob.get("signature") != sig:
                raise ValueError(f"{ck} belongs to another run (zoo, model, optimiser settings or seed differ): use "
                                 "a fresh run_dir")
            model.load_state_dict(blob["model"])
            opt.load_state_dict(blob["opt"])
            gen.set_state(blob["gen"])
            torch.set_rng_state(blob["torch_rng"])
            start = blob["epoch"]
        t1 = time.perf_counter()
        for epoch in tqdm(range(start, o.epochs), desc=cfg.model.name, disable=not cfg.progress, initial=start,
                          total=o.epochs):
            model.train()
            for xb, yb in _batches(xtr, ytr, o.batch_size, gen):
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}: lower optim.lr ({o.lr})")
                opt.zero_grad()
                loss.backward()
                opt.step()
            rec.log({"train/loss": loss.item()}, step=epoch + 1)
            tmp = ck.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                        "torch_rng": torch.get_rng_state(), "epoch": epoch + 1, "signature": sig}, tmp)
            tmp.replace(ck)
        t_train = time.perf_counter() - t1
        perms = random_hidden_permutations(zoo["widths"], batch=xte.batch,
                                           generator=torch.Generator().manual_seed(10_000 + cfg.seed))
        logits, logits_p = predict(model, xte), predict(model, xte.permute(perms))
        pred, pred_p = logits.argmax(1), logits_p.argmax(1)
        summary = {"test/acc": float((pred == yte).float().mean()),
                   "test/acc_permuted": float((pred_p == yte).float().mean()),
                   "test/perm_agreement": float((pred == pred_p).float().mean()),
                   "test/perm_max_logit_diff": float((logits - logits_p).abs().max()),
                   "train/acc": float((predict(model, xtr).argmax(1) == ytr).float().mean()),
                   "data/train_sirens": int(xtr.batch), "data/test_sirens": int(xte.batch),
                   "data/classes": zoo["n_classes"], "data/fit_mse": zoo["fit_mse"],
                   "model/params": int(sum(p.numel() for p in model.parameters())),
                   "time/zoo_seconds": t_fit, "time/train_seconds": t_train}
        summary["time/seconds"] = time.perf_counter() - t0
        rec.finish(summary)
    return float(summary.get(cfg.optimized_metric, float("nan")))


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py)."""
    run_dir = Path(cfg.run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} holds no metrics.json: pass run_dir=<a finished train.py run directory>")
    rec = json.loads((run_dir / "metrics.json").read_text())
    return {"model": rec["config"]["model"]["name"], **rec["metrics"]}

