"""The only module that reads a config: build the CMDP and the learner, run the batch, record the curves."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ede.agent import EDEAgent, Replay
from ede.envs import ProcgenVec, make_procgen
from ede.loop import GridLevels, evaluate, train
from ede.metrics import normalize
from ede.networks import EDENetwork, ImpalaCNN, MLPTrunk
from ede.tabular import TabularCMDP, run_policy_gradient, run_q_learning
from shared.device import get_device, seed_everything
from shared.logging import resolve_run_dir, start_run


def build_env(e: DictConfig) -> TabularCMDP:
    """The CMDP of ``env``."""
    return TabularCMDP(size=e.size, goal=tuple(e.goal), train_start=tuple(e.train_start),
                       test_start=tuple(e.test_start), step_reward=e.step_reward, goal_reward=e.goal_reward,
                       horizon=e.horizon)


TABULAR, DEEP = ("epsilon", "ucb", "pg"), ("ede", "qrdqn")


def run(cfg: DictConfig) -> float:
    """One run: the tabular study (env.kind=tabular, method epsilon|ucb|pg) or the deep agent (env.kind
    grid_levels|procgen, method ede|qrdqn). Writes metrics.json; returns ``cfg.optimized_metric``."""
    kind, name = cfg.env.kind, cfg.method.name
    if (kind == "tabular") != (name in TABULAR) or name not in TABULAR + DEEP:
        raise ValueError(f"method={name} does not run on env={kind}: the tabular env takes method=epsilon|ucb|pg, "
                         "grid_levels and procgen take method=ede|qrdqn")
    if kind != "tabular":
        return run_deep(cfg)
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
        else:  # pg (run() has checked the name)
            out = run_policy_gradient(env, cfg.episodes, cfg.runs, lr=m.lr, entropy=m.entropy, gamma=m.gamma,
                                      eval_every=cfg.eval_every, seed=cfg.seed)
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


def build_deep_envs(e: DictConfig, seed: int):
    """(train env, test env) of ``env``: GridLevels on the CPU, Procgen (200 levels / the full distribution)."""
    if e.kind == "grid_levels":
        return (GridLevels(e.n_envs, [tuple(c) for c in e.train_levels], seed, e.horizon),
                GridLevels(e.n_envs, [tuple(c) for c in e.test_levels], seed + 1, e.horizon))
    if e.kind == "procgen":
        return (ProcgenVec(make_procgen(e.game, e.n_envs, e.num_levels, 0, e.distribution_mode, seed)),
                ProcgenVec(make_procgen(e.game, e.n_envs, 0, 0, e.distribution_mode, seed + 1)))
    raise ValueError(f"env.kind={e.kind!r}: use tabular, grid_levels or procgen")


def run_deep(cfg: DictConfig) -> float:
    """EDE or QR-DQN: train on the training levels, then evaluate on training and test levels."""
    import torch

    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    m, d = cfg.method, cfg.deep
    device = get_device(d.device)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        env, test_env = build_deep_envs(cfg.env, cfg.seed)
        image = len(env.obs_shape) == 3
        trunk = ImpalaCNN(env.obs_shape[0]) if image else MLPTrunk(env.obs_shape[0])
        net = EDENetwork(trunk, env.n_actions, m.heads, m.quantiles, m.hidden)
        agent = EDEAgent(net, lr=m.lr, adam_eps=m.adam_eps, batch_size=m.batch_size, target_update=m.target_update,
                         device=device, generator=torch.Generator().manual_seed(cfg.seed))
        replay = Replay(m.replay_steps, env.n, env.obs_shape, torch.uint8 if image else torch.float32, m.n_step,
                        m.gamma)
        t0 = time.time()
        out = train(agent, env, replay, d.steps, explore=m.explore, phi=m.phi, lam=m.lam, alpha=m.alpha,
                    start_steps=m.start_steps, train_freq=m.train_freq, eps_decay=m.eps_decay,
                    normalize_rewards=m.normalize_rewards, ckpt_path=run_dir / "ckpt.pt", ckpt_every=d.ckpt_every,
                    stop_after=d.stop_after, log=rec.log, seed=cfg.seed)
        if out["stopped"]:
            rec.finish(status="interrupted", summary={"train/steps_done": out["steps_done"]})
            return float("nan")
        secs = time.time() - t0
        summary = {"train/seconds": secs, "train/updates": out["updates"], "train/last_loss": out["last_loss"],
                   "train/resumed_from": out["resumed_from"],
                   "train/env_steps_per_s": (d.steps - out["resumed_from"]) * env.n / max(secs, 1e-9)}
        for split, e in (("train", env), ("test", test_env)):
            ret = evaluate(agent, e, d.eval_episodes, m.eval_eps, cfg.seed + 7)
            summary[f"{split}/return"] = float(ret.mean())
            summary[f"{split}/return_std"] = float(ret.std())
            if cfg.env.kind == "procgen":
                summary[f"{split}/normalized"] = float(normalize(ret, cfg.env.game).mean())
        rec.finish(summary)
    return summary.get(cfg.optimized_metric, summary["test/return"])


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py): the tabular study keeps no checkpoint, its result is its curves."""
    run_dir = Path(cfg.run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} holds no metrics.json: pass run_dir=<a finished train.py run directory>")
    rec = json.loads((run_dir / "metrics.json").read_text())
    rcfg = OmegaConf.create(rec["config"])
    return {"method": rcfg.method.name, **{k: v for k, v in rec["metrics"].items() if not isinstance(v, list)}}
