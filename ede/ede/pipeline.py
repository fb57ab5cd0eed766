"""The only module that reads a config: build the CMDP and the learner, run the batch, record the curves."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ede.tabular import TabularCMDP, run_policy_gradient, run_q_learning
from shared.device import seed_everything
from shared.logging import resolve_run_dir, start_run


def build_env(e: DictConfig) -> TabularCMDP:
    """The CMDP of ``env``."""
    return TabularCMDP(size=e.size, goal=tuple(e.goal), train_start=tuple(e.train_start),
                       test_start=tuple(e.test_start), step_reward=e.step_reward, goal_reward=e.goal_reward,
                       horizon=e.horizon)


def run(cfg: DictConfig) -> float:
    """One learner, ``cfg.runs`` runs: suboptimality curves (mean, std over runs) and the final values."""
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    m = cfg.method
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        env = build_env(cfg.env)
        t0 = time.time()
        if m.name in ("epsilon", "ucb"):
            out = run_q_learning(env, cfg.episodes, cfg.runs, m.name, epsilon=m.epsilon or 0.0,
                                 ucb_c=m.ucb_c or 0.0, alpha=m.alpha, gamma=m.gamma, eval_every=cfg.eval_every,
                                 seed=cfg.seed)
        elif m.name == "pg":
            out = run_policy_gradient(env, cfg.episodes, cfg.runs, lr=m.lr, entropy=m.entropy, gamma=m.gamma,
                                      eval_every=cfg.eval_every, seed=cfg.seed)
        else:
            raise ValueError(f"method.name={m.name!r}: use epsilon, ucb or pg")
        secs = time.time() - t0
        w = max(1, int(cfg.final_window))
        summary = {"train/seconds": secs, "data/runs": cfg.runs, "data/episodes": cfg.episodes,
                   "env/optimal_train": env.optimal_return(env.train_start),
                   "env/optimal_test": env.optimal_return(env.test_start)}
        for split in ("train", "test"):
            curve = out[split]  # [runs, evals]
            final = curve[:, -w:].mean(1)
            summary[f"{split}/final_subopt"] = float(final.mean())
            summary[f"{split}/final_subopt_std"] = float(final.std(ddof=1)) if len(final) > 1 else 0.0
            summary[f"{split}/solved_frac"] = float((np.abs(curve[:, -1]) < 1e-9).mean())
            summary[f"{split}/curve_mean"] = curve.mean(0).tolist()
            summary[f"{split}/curve_std"] = curve.std(0).tolist()
        summary["episodes_evaluated"] = out["episodes"].tolist()
        for i, ep in enumerate(out["episodes"]):
            rec.log({"train/subopt": float(out["train"][:, i].mean()), "test/subopt": float(out["test"][:, i].mean())},
                    step=int(ep))
        rec.finish(summary)
    return summary[cfg.optimized_metric]


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py): the tabular study keeps no checkpoint, its result is its curves."""
    run_dir = Path(cfg.run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} holds no metrics.json: pass run_dir=<a finished train.py run directory>")
    rec = json.loads((run_dir / "metrics.json").read_text())
    rcfg = OmegaConf.create(rec["config"])
    return {"method": rcfg.method.name, **{k: v for k, v in rec["metrics"].items() if not isinstance(v, list)}}
