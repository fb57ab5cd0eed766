"""The only module that reads a config: one run of a study, ``learn`` (one learner on one task, test error,
violation and satisfaction) or ``rademacher`` (the cone class's complexity at one alpha: closed form vs brute
force vs sin(alpha) times the unconstrained value; the two-layer Monte Carlo), metrics.json in the run dir."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from shared.device import seed_everything
from shared.logging import read_run, resolve_run_dir, start_run

STUDIES = ("learn", "rademacher")


def build_task(d: DictConfig, seed: int):
    """The task of ``data.source``: synthetic (generated from ``seed``) or wrench (files under ``data.root``)."""
    from epac.data import load_wrench, make_synthetic

    if d.source == "synthetic":
        return make_synthetic(d.kind, d.n_labeled, d.k, d.n_test, d.d, d.m, d.noise, d.expl_noise, d.partial,
                              d.alpha, d.angle_true, d.loss, seed)
    if d.source == "wrench":
        if d.root is None:
            raise ValueError("data.source=wrench needs data.root=<folder holding the WRENCH dataset folders>")
        kw = OmegaConf.to_container(d.keywords)
        return load_wrench(d.root, d.dataset, {int(c): list(w) for c, w in kw.items()}, d.n_labeled, d.k,
                           d.max_features, d.strength, seed)
    raise ValueError(f"data.source={d.source!r}: synthetic or wrench")


def run(cfg: DictConfig) -> float:
    """One run of ``cfg.study``; returns ``cfg.optimized_metric``."""
    if cfg.study not in STUDIES:
        raise ValueError(f"study={cfg.study!r}: one of {STUDIES}")
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU here" notice on every run
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        t0 = time.perf_counter()
        summary = learn(cfg, run_dir) if cfg.study == "learn" else rademacher(cfg.rademacher, cfg.seed)
        summary["time/seconds"] = time.perf_counter() - t0
        rec.finish(summary)
    return float(summary.get(cfg.optimized_metric, float("nan")))


def learn(cfg: DictConfig, run_dir: Path) -> dict:
    """Train ``method`` on the task; resumable from run_dir/checkpoint.msgpack."""
    import jax

    from epac.learners import train
    from epac.models import make_model

    task = build_task(cfg.data, cfg.seed)
    model = make_model(cfg.model.kind, list(cfg.model.hidden), cfg.model.activation, cfg.model.use_bias)
    method = dict(cfg.method)
    name = method.pop("name")
    o = cfg.optim
    res = train(name, model, task, steps=o.steps, lr=o.lr, weight_decay=o.weight_decay, chunk=o.chunk, tol=o.tol,
                progress=o.progress, seed=cfg.seed, checkpoint=str(Path(run_dir) / "checkpoint.msgpack"), **method)
    (Path(run_dir) / "history.json").write_text(json.dumps(res.history))
    return {**res.metrics, "data/n_labeled": task.n, "data/k": len(task.x_u), "env/jax": jax.__version__,
            "env/backend": jax.default_backend()}


def rademacher(r: DictConfig, seed: int) -> dict:
    """``rademacher.kind``: linear (closed form, brute force in ``brute_d`` dimensions, sin(alpha) reference) or
    twolayer (Monte Carlo over sampled nets)."""
    from epac import rademacher as rad

    rng = np.random.default_rng(seed)
    a = float(r.alpha)
    if r.kind == "linear":
        X = rng.standard_normal((r.n, r.d))
        w_prime = rng.standard_normal(r.d)
        closed = rad.rademacher_linear_cone(X, w_prime, a, 1.0, r.draws, seed)
        free = rad.rademacher_linear(X, 1.0, r.draws, seed)
        Xb, wb = rng.standard_normal((r.n, r.brute_d)), rng.standard_normal(r.brute_d)
        z = rad._sign_means(Xb, r.brute_draws, seed)
        gap = abs(rad.cone_sup(z, wb, a).mean() - rad.cone_sup_bruteforce(z, wb, a, 1.0, r.brute_dirs, seed).mean())
        return {"rad/closed_form": closed, "rad/unconstrained": free, "rad/sin_alpha": np.sin(min(a, np.pi / 2)) * free,
                "rad/sin_gap": abs(closed - np.sin(min(a, np.pi / 2)) * free), "rad/brute_gap": float(gap)}
    if r.kind == "twolayer":
        X, Xu = rng.standard_normal((r.n, r.d)), rng.standard_normal((r.k, r.d))
        u = rng.standard_normal((r.m, r.d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        out = rad.rademacher_twolayer_mc(X, Xu, u, rng.standard_normal(r.m), [a], r.nets, (0.0, r.max_scale),
                                         r.draws, seed)
        return {"rad/twolayer_mc": out[a], "rad/twolayer_unconstrained": out["inf"]}
    raise ValueError(f"rademacher.kind={r.kind!r}: linear or twolayer")


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py)."""
    rec = read_run(cfg.run_dir)
    c = rec["config"]
    return {"study": c["study"], "method": c["method"]["name"], "data": c["data"], **rec["metrics"]}
