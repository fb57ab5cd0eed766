"""The only module that reads a config: the tabular study (batched runs, curves) and the deep runs (env, agent,
training, final evaluation, metrics)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from ede.agent import EDEAgent, Replay
from ede.envs import ACHIEVEMENTS, CrafterVec, ProcgenVec, make_procgen
from ede.loop import GridLevels, evaluate, train
from ede.metrics import crafter_score, normalize
from ede.networks import EDENetwork, ImpalaCNN, MLPTrunk, NatureCNN
from ede.ppo import ActorCritic, PPOAgent, evaluate_ppo, train_ppo
from ede.tabular import TabularCMDP, run_policy_gradient, run_q_learning
from shared.device import get_device, seed_everything
from shared.logging import read_run, resolve_run_dir, start_run


def build_env(e: DictConfig) -> TabularCMDP:
    """The CMDP of ``env``."""
    return TabularCMDP(size=e.size, goal=tuple(e.goal), train_start=tuple(e.train_start),
                       test_start=tuple(e.test_start), step_reward=e.step_reward, goal_reward=e.goal_reward,
                       horizon=e.horizon)


def run(cfg: DictConfig) -> float:
    """One run: the tabular study (env.kind=tabular, method.family=tabular: epsilon|ucb|pg), a value-based deep
    agent (method.family=value: EDE, QR-DQN, DQN and the Fig. 4 variants) or PPO (method.family=ppo) on
    env.kind=grid_levels|procgen|crafter. Writes metrics.json; returns ``cfg.optimized_metric``."""
    kind, fam = cfg.env.kind, cfg.method.family
    if fam not in ("tabular", "value", "ppo"):
        raise ValueError(f"method.family={fam!r}: tabular, value or ppo")
    if (kind == "tabular") != (fam == "tabular"):
        raise ValueError(f"method={cfg.method.name} does not run on env={kind}: the tabular env takes "
                         "method=epsilon|ucb|pg, grid_levels/procgen/crafter take the deep methods (ede, qrdqn, "
                         "dqn, ..., ppo)")
    if kind != "tabular":
        return run_deep(cfg)
    if cfg.method.name not in ("epsilon", "ucb", "pg"):
        raise ValueError(f"method.name={cfg.method.name!r}: the tabular learners are epsilon, ucb and pg")
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
        else:  # pg
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
    """(train env, test env) of ``env``: GridLevels on the CPU, Procgen (200 levels / the full distribution),
    Crafter (one world distribution: the test env is a second set of seeds)."""
    if e.kind == "grid_levels":
        return (GridLevels(e.n_envs, [tuple(c) for c in e.train_levels], seed, e.horizon),
                GridLevels(e.n_envs, [tuple(c) for c in e.test_levels], seed + 1, e.horizon))
    if e.kind == "procgen":
        return (ProcgenVec(make_procgen(e.game, e.n_envs, e.num_levels, 0, e.distribution_mode, seed)),
                ProcgenVec(make_procgen(e.game, e.n_envs, 0, 0, e.distribution_mode, seed + 1)))
    if e.kind == "crafter":
        return (CrafterVec(e.n_envs, seed * 1000, e.frame_stack, e.size, e.length),
                CrafterVec(e.n_envs, seed * 1000 + 500, e.frame_stack, e.size, e.length))
    raise ValueError(f"env.kind={e.kind!r}: use tabular, grid_levels, procgen or crafter")


def _trunk(env, kind: str):
    if len(env.obs_shape) == 1:
        return MLPTrunk(env.obs_shape[0])
    return NatureCNN(env.obs_shape[0], env.obs_shape[1]) if kind == "crafter" else ImpalaCNN(env.obs_shape[0])


def build_agent(cfg: DictConfig, env, trunk, device):
    """The PPO agent or the value-based agent (EDE, QR-DQN, DQN, the Fig. 4 variants) of ``cfg.method``."""
    import torch

    m = cfg.method
    if m.family == "ppo":
        return PPOAgent(ActorCritic(trunk, env.n_actions, m.hidden), lr=m.lr, adam_eps=m.adam_eps, gamma=m.gamma,
                        lam=m.gae_lambda, clip=m.clip, ent_coef=m.ent_coef, vf_coef=m.vf_coef,
                        max_grad_norm=m.max_grad_norm, epochs=m.epochs, minibatches=m.minibatches, device=device,
                        seed=cfg.seed)
    net = EDENetwork(trunk, env.n_actions, m.heads, m.quantiles, m.hidden, m.noisy)
    return EDEAgent(net, lr=m.lr, adam_eps=m.adam_eps, batch_size=m.batch_size, target_update=m.target_update,
                    train_trunk_all=m.train_trunk_all, device=device,
                    generator=torch.Generator().manual_seed(cfg.seed), loss=m.loss, target=m.target,
                    amp=cfg.deep.amp)


def run_deep(cfg: DictConfig) -> float:
    """Train a deep agent on the training levels, then evaluate it on training and test levels (Procgen: also
    min-max normalised; Crafter: the score over the training episodes' achievements)."""
    import torch

    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    m, d = cfg.method, cfg.deep
    device = get_device(d.device)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        env, test_env = build_deep_envs(cfg.env, cfg.seed)
        trunk = _trunk(env, cfg.env.kind)
        t0 = time.time()
        agent = build_agent(cfg, env, trunk, device)
        if m.family == "ppo":
            out = train_ppo(agent, env, d.steps, m.n_steps, m.normalize_rewards, run_dir / "ckpt.pt",
                            d.stop_after, rec.log, d.progress)
            out["updates"] = agent.updates
        else:
            image = len(env.obs_shape) == 3
            stack = cfg.env.get("frame_stack", 1)
            replay_dev = device if d.replay_device == "auto" else torch.device(d.replay_device)
            replay = Replay(m.replay_steps, env.n, env.obs_shape, torch.uint8 if image else torch.float32, m.n_step,
                            m.gamma, frame_stack=stack, device=replay_dev)
            out = train(agent, env, replay, d.steps, explore=m.explore, phi=m.phi, lam=m.lam, alpha=m.alpha,
                        tee=m.tee, start_steps=m.start_steps, random_start=m.random_start, train_freq=m.train_freq,
                        eps_decay=m.eps_decay,
                        normalize_rewards=m.normalize_rewards, reward_clip=m.reward_clip,
                        ckpt_path=run_dir / "ckpt.pt", ckpt_every=d.ckpt_every, stop_after=d.stop_after,
                        log=rec.log, seed=cfg.seed, progress=d.progress)
        if out["stopped"]:
            for e in (env, test_env):
                getattr(e, "close", lambda: None)()
            rec.finish(status="interrupted", summary={"train/steps_done": out["steps_done"]})
            return float("nan")
        secs = time.time() - t0
        ep = out["episode_returns"]
        summary = {"train/seconds": secs, "train/updates": int(out["updates"]), "train/last_loss": out["last_loss"],
                   "train/resumed_from": out["resumed_from"], "train/episodes": len(ep),
                   "train/episode_return": float(np.mean(ep[-100:])) if ep else float("nan"),
                   "train/env_steps_per_s": (d.steps - out["resumed_from"]) * env.n / max(secs, 1e-9)}
        if cfg.env.kind == "crafter":
            rates = achievement_rates(env.achievements)
            summary["crafter/score"] = crafter_score(list(rates.values()))
            summary.update({f"crafter/{k}": v for k, v in rates.items()})
        eval_envs = {"train": env, "test": test_env}
        if cfg.env.kind == "procgen" and d.eval_episodes > 0:
            # Procgen ignores reset(): a fresh env on the training levels, so no episode is counted half-played
            env.close()
            e = cfg.env
            eval_envs["train"] = env = ProcgenVec(make_procgen(e.game, e.n_envs, e.num_levels, 0, e.distribution_mode,
                                                               cfg.seed + 2))
        for split, e in eval_envs.items():
            if d.eval_episodes <= 0:
                continue
            if m.family == "ppo":
                ret = evaluate_ppo(agent, e, d.eval_episodes, cfg.seed + 7)
            else:
                ret = evaluate(agent, e, d.eval_episodes, m.eval_eps, cfg.seed + 7)
            summary[f"{split}/return"] = float(ret.mean())
            summary[f"{split}/return_std"] = float(ret.std())
            if cfg.env.kind == "procgen":
                summary[f"{split}/normalized"] = float(normalize(ret, cfg.env.game).mean())
        for e in (env, test_env):
            getattr(e, "close", lambda: None)()
        rec.finish(summary)
    return summary.get(cfg.optimized_metric, summary.get("test/return", float("nan")))


def achievement_rates(achievements: list[set]) -> dict:
    """Success rate in percent of each of Crafter's 22 achievements over the given episodes (unlocked at least
    once in the episode), the input of the Crafter score."""
    n = max(len(achievements), 1)
    return {k: 100.0 * sum(k in a for a in achievements) / n for k in ACHIEVEMENTS}


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py); with ``episodes > 0`` a deep run's checkpoint is evaluated again
    on that many training-level and test-level episodes (e.g. the paper's 1000 test episodes)."""
    import torch

    run_dir = Path(cfg.run_dir)
    rec = read_run(run_dir)
    rcfg = OmegaConf.create(rec["config"])
    shown = {"method": rcfg.method.name, **{k: v for k, v in rec["metrics"].items() if not isinstance(v, list)}}
    if cfg.get("episodes", 0) <= 0:
        return shown
    if rcfg.env.kind == "tabular":
        raise ValueError("episodes=N re-evaluates deep runs; the tabular study keeps no checkpoint (its result is "
                         "its curves)")
    if not (run_dir / "ckpt.pt").exists():
        raise FileNotFoundError(f"{run_dir / 'ckpt.pt'} is missing: the run kept no checkpoint to evaluate")
    device = get_device(cfg.get("device", "auto"))
    env, test_env = build_deep_envs(rcfg.env, rcfg.seed)
    agent = build_agent(rcfg, env, _trunk(env, rcfg.env.kind), device)
    st = torch.load(run_dir / "ckpt.pt", map_location="cpu", weights_only=False, mmap=True)  # the replay stays on disk
    agent.net.load_state_dict(st["net"])
    out = {"method": rcfg.method.name, "episodes": cfg.episodes}
    for split, e in (("train", env), ("test", test_env)):
        if rcfg.method.family == "ppo":
            ret = evaluate_ppo(agent, e, cfg.episodes, cfg.seed)
        else:
            ret = evaluate(agent, e, cfg.episodes, rcfg.method.eval_eps, cfg.seed)
        out[f"{split}/return"], out[f"{split}/return_std"] = float(ret.mean()), float(ret.std())
        if rcfg.env.kind == "procgen":
            out[f"{split}/normalized"] = float(normalize(ret, rcfg.env.game).mean())
    for e in (env, test_env):
        getattr(e, "close", lambda: None)()
    return out
