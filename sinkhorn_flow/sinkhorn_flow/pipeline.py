"""The only module that reads a config: build data and method, train, evaluate, record, checkpoint."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from shared.device import get_device, limit_threads, seed_everything
from shared.logging import resolve_run_dir, start_run
from sinkhorn_flow import baselines
from sinkhorn_flow.data import Transitions, drifting_blobs
from sinkhorn_flow.fit import evaluate, evaluate_model, predict, train_model
from sinkhorn_flow.model import SinkhornFlow, fit_standardiser
from sinkhorn_flow.rollcalls import flows_from_rollcalls, load_rollcalls

PROJECT_DIR = Path(__file__).resolve().parents[1]
FIXED = ("fixed_ot", "emd", "independent", "persistence")


def resolve_path(path: str) -> Path:
    """A data path as given, or relative to the project folder (so runs work from any cwd)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or p.exists() else PROJECT_DIR / p


def build_data(cfg: DictConfig) -> tuple[Transitions, dict]:
    """The transitions of ``cfg.data`` (float64) and the raw info of the source."""
    if cfg.name == "synthetic":
        return drifting_blobs(n_agents=cfg.n_agents, n_communities=cfg.n_communities, n_steps=cfg.n_steps,
                              sigma_drift=cfg.sigma_drift, sigma_agent=cfg.sigma_agent, pull=cfg.pull,
                              temperature=cfg.temperature, history=cfg.history, seed=cfg.seed)
    if cfg.name == "rollcalls":
        raw = load_rollcalls(resolve_path(cfg.path))
        return flows_from_rollcalls(raw, communities=cfg.communities, k=cfg.k, seed=cfg.seed,
                                    min_votes=cfg.min_votes, min_participation=cfg.min_participation,
                                    history=cfg.history)
    raise ValueError(f"data.name={cfg.name!r}: use synthetic or rollcalls")


def split(data: Transitions, train_frac: float) -> tuple[Transitions, Transitions]:
    """Split by time: the first ceil(train_frac * T) transitions train, the rest test."""
    n_train = int(np.ceil(train_frac * len(data)))
    if not 0 < n_train < len(data):
        raise ValueError(f"data.train_frac={train_frac} leaves no train or no test transitions (T={len(data)})")
    return data[:n_train], data[n_train:]


def _features(method: DictConfig, data: Transitions) -> list[str]:
    unknown = set(method.drop_features) - set(data.feature_names)
    if unknown:
        raise ValueError(f"method.drop_features {sorted(unknown)} not among the data's features {data.feature_names}")
    names = [n for n in data.feature_names if n not in method.drop_features]
    if method.marginals == "predicted" and "log_b" in names:
        raise ValueError("method.marginals=predicted but the feature log_b reveals the next marginal: "
                         "add log_b to method.drop_features")
    return names


def run_learned(cfg: DictConfig, tr: Transitions, te: Transitions, run, run_dir: Path) -> dict:
    """Train the Sinkhorn-Flow / softmax network and evaluate it; returns the summary metrics."""
    m = cfg.method
    names = _features(m, tr)
    mean, std = fit_standardiser(tr.select_features(names), tr.mask)
    model = SinkhornFlow(len(names), scorer=cfg.model.scorer, hidden=cfg.model.hidden,
                         n_iters_train=m.n_iters_train, n_iters_eval=m.n_iters_eval, eps=m.eps,
                         backward=m.backward, marginals=m.marginals, feature_mean=mean, feature_std=std)
    model.to(tr.a.device)
    t0 = time.time()
    info = train_model(model, tr, names, steps=cfg.train.steps, lr=cfg.train.lr, ckpt_path=run_dir / "ckpt.pt",
                       ckpt_every=cfg.train.ckpt_every, stop_after=cfg.train.stop_after, log=run.log,
                       progress=cfg.train.progress)
    if info["stopped"]:
        return {"stopped": True, **info}
    out = {"train/seconds": time.time() - t0, "train/final_loss": info["final_loss"],
           "train/resumed_from_step": info["resumed_from"],
           "model/n_params": sum(p.numel() for p in model.parameters()), "model/features": names}
    for split_name, d in (("train", tr), ("test", te)):
        out.update({f"{split_name}/{k}": v for k, v in evaluate_model(model, d, names).items()})
    model.eval()
    with torch.no_grad():
        np.save(run_dir / "test_flow_pred.npy", predict(model, te, names).exp().cpu().numpy())
    return out


def run_fixed(cfg: DictConfig, tr: Transitions, te: Transitions) -> dict:
    """A non-learned baseline (eps of fixed-cost OT tuned on the training split)."""
    m, out = cfg.method, {}
    if m.name == "fixed_ot":
        eps, kls = baselines.tune_eps(tr.cost, tr.a, tr.b, tr.flow, tr.mask, grid=tuple(m.eps_grid),
                                      n_iters=m.n_iters)
        out["method/eps_tuned"] = eps
        out["method/train_kl_by_eps"] = {str(k): v for k, v in kls.items()}
        predict_fn = lambda d: baselines.fixed_cost_ot(d.cost, d.a, d.b, eps, d.mask, m.n_iters)  # noqa: E731
    elif m.name == "emd":
        predict_fn = lambda d: baselines.emd(d.cost, d.a, d.b)  # noqa: E731
    elif m.name == "independent":
        predict_fn = lambda d: baselines.independent(d.a, d.b)  # noqa: E731
    elif m.name == "persistence":
        predict_fn = lambda d: baselines.persistence(d.prev_trans[:, 0], d.a, d.b, m.smoothing)  # noqa: E731
    else:
        raise ValueError(f"method.name={m.name!r} is not a known baseline {FIXED}")
    for split_name, d in (("train", tr), ("test", te)):
        out.update({f"{split_name}/{k}": v for k, v in evaluate(predict_fn(d), d).items()})
    np.save(Path(cfg.run_dir) / "test_flow_pred.npy", predict_fn(te).exp().cpu().numpy())
    return out


def run(cfg: DictConfig) -> float:
    """One run: seed, data, method, metrics.json in the run dir. Returns ``cfg.optimized_metric``."""
    limit_threads()
    seed_everything(cfg.seed)
    if cfg.method.kind not in ("learned", "fixed"):
        raise ValueError(f"method.kind={cfg.method.kind!r}: use learned or fixed")
    run_dir = resolve_run_dir(cfg)
    device = get_device(cfg.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        data, _ = build_data(cfg.data)
        tr, te = (d.to(device=device, dtype=dtype) for d in split(data, cfg.data.train_frac))
        summary = {"data/n_train": len(tr), "data/n_test": len(te),
                   "data/max_communities": int((data.a > 0).sum(-1).max())}
        if cfg.method.kind == "learned":
            out = run_learned(cfg, tr, te, rec, run_dir)
            if out.get("stopped"):
                # As if the job were killed after a checkpoint: no summary; rerun in this run dir to resume.
                rec.finish(status="interrupted", summary={"train/steps_done": out["steps_done"]})
                return float("nan")
        else:
            out = run_fixed(cfg, tr, te)
        summary.update(out)
        rec.finish(summary)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    value = summary.get(cfg.optimized_metric)
    return float(value) if value is not None else float("nan")


def evaluate_run(cfg: DictConfig) -> dict:
    """Re-evaluate a finished learned run from its config.yaml and ckpt.pt (optionally with another
    number of evaluation iterations); writes eval.json into the run dir."""
    run_dir = resolve_path(cfg.run_dir)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir} holds no config.yaml: pass run_dir=<a train.py run directory>")
    rcfg = OmegaConf.load(run_dir / "config.yaml")
    if rcfg.method.kind != "learned" or not (run_dir / "ckpt.pt").exists():
        raise ValueError(f"{run_dir} is not a finished learned run (method.kind={rcfg.method.kind}, needs ckpt.pt)")
    limit_threads()
    data, _ = build_data(rcfg.data)
    dtype = {"float32": torch.float32, "float64": torch.float64}[rcfg.dtype]
    tr, te = (d.to(dtype=dtype) for d in split(data, rcfg.data.train_frac))
    names = _features(rcfg.method, tr)
    model = SinkhornFlow(len(names), scorer=rcfg.model.scorer, hidden=rcfg.model.hidden,
                         n_iters_train=rcfg.method.n_iters_train,
                         n_iters_eval=cfg.n_iters_eval if cfg.n_iters_eval is not None else rcfg.method.n_iters_eval,
                         eps=rcfg.method.eps, marginals=rcfg.method.marginals)
    model.load_state_dict(torch.load(run_dir / "ckpt.pt", weights_only=False)["model"])
    model.to(dtype=dtype)
    data_split = {"train": tr, "test": te}[cfg.split]
    out = {f"{cfg.split}/{k}": v for k, v in evaluate_model(model, data_split, names).items()}
    out["n_iters_eval"] = model.n_iters_eval
    (run_dir / "eval.json").write_text(json.dumps(out, indent=2))
    return out
