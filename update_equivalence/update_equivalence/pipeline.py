"""The only module that reads a config: one run of a study (exact search in a small game, the common-payoff
soundness study, or the sampled planner head to head), metrics.json with the OpenSpiel version and game string."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, open_dict

from shared.device import seed_everything
from shared.logging import resolve_run_dir, start_run
from update_equivalence.exact import (
    MMDLearner,
    cfr_policy,
    exact_search_policy,
    exploitability,
    game_tree,
    load_game,
    uniform_policy,
)
from update_equivalence.sampled import SampledPlanner, head_to_head
from update_equivalence.update import update

STUDIES = ("exact", "common_payoff", "sampled", "best_response")


def openspiel_version() -> str:
    """The installed OpenSpiel version (tensor sizes of PTTT/ADH changed in 2024: recorded in every run)."""
    from importlib import metadata

    return metadata.version("open_spiel")


def build_blueprint(game, b: DictConfig):
    """The blueprint of ``blueprint.kind``: uniform, ``mmd`` (tabular MMD iterations) or ``cfr`` (CFR+ average)."""
    if b.kind == "uniform":
        return uniform_policy(game)
    if b.kind == "mmd":
        learner = MMDLearner(game, b.eta, b.alpha, magnet_lr=b.magnet_lr)
        for _ in range(b.iterations):
            learner.step()
        return learner.policy
    if b.kind == "cfr":
        return cfr_policy(game, b.iterations)
    raise ValueError(f"blueprint.kind={b.kind!r}: uniform, mmd or cfr")


def run(cfg: DictConfig) -> float:
    """One run of ``cfg.study``; returns ``cfg.optimized_metric``."""
    if cfg.study not in STUDIES:
        raise ValueError(f"study={cfg.study!r}: one of {STUDIES}")
    game = load_game(cfg.game)
    seed_everything(cfg.seed)
    m = cfg.method
    if m.name not in ("mmds", "mds", "greedy"):
        raise ValueError(f"method.name={m.name!r}: mmds, mds or greedy")
    if m.name == "greedy":  # argmax q, no magnet: the run records the step it actually takes
        with open_dict(cfg):
            cfg.method.eta, cfg.method.alpha = float("inf"), 0.0
    if m.name == "mds" and float(m.alpha) != 0:
        raise ValueError(f"method=mds is plain mirror descent: alpha must be 0 (got {m.alpha}); use method=mmds")
    eta, alpha = float(m.eta), float(m.alpha)
    run_dir = resolve_run_dir(cfg)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        t0 = time.perf_counter()
        summary = {"env/openspiel": openspiel_version(), "env/game": str(game)}
        if cfg.study == "exact":
            blueprint = build_blueprint(game, cfg.blueprint)
            searched = exact_search_policy(game, blueprint, eta, alpha, tie_break=m.tie_break)
            base, new = exploitability(game, blueprint), exploitability(game, searched)
            summary.update({"blueprint/exploitability": base, "search/exploitability": new,
                            "delta/exploitability": new - base, "data/infostates": int(game_tree(game).legal.shape[0]),
                            "data/histories": int(game_tree(game).n)})
        elif cfg.study == "common_payoff":
            summary.update(common_payoff_study(game, eta, cfg.common.blueprints, cfg.common.concentration,
                                               m.tie_break, cfg.seed))
        elif cfg.study == "best_response":
            summary.update(best_response_study(cfg, game, eta, alpha))
        else:
            from open_spiel.python import policy as osp

            if cfg.blueprint.kind != "uniform":
                raise ValueError("the sampled planner's blueprint here is uniform (the paper's Table 3 setting); "
                                 "trained blueprints for PTTT/ADH3 are not implemented yet")
            blueprint = osp.UniformRandomPolicy(game)
            s_planner, s_games = np.random.SeedSequence(cfg.seed).spawn(2)  # independent streams
            planner = SampledPlanner(game, blueprint, eta, alpha, cfg.sampled.n_particles, cfg.sampled.n_rollouts,
                                     cfg.sampled.time_budget_s, cfg.sampled.play, seed=s_planner)
            h2h = head_to_head(game, planner, blueprint, cfg.sampled.games, s_games)
            summary.update({"h2h/mean": h2h["mean"], "h2h/ci95": h2h["ci95"], "h2h/games": h2h["games"],
                            "speed/sec_per_move": h2h["sec_per_move"], "search/fallbacks": planner.fallbacks})
        summary["time/seconds"] = time.perf_counter() - t0
        rec.finish(summary)
    return float(summary.get(cfg.optimized_metric, float("nan")))


def common_payoff_study(game, eta: float, n: int, concentration: float, tie_break: str, seed: int) -> dict:
    """Theorem 1 made executable: ``n`` random blueprints (Dirichlet over each infostate's legal actions); the
    simultaneous update at every infostate with step ``eta`` (inf: greedy); fraction improving / worsening the
    exact common return and the mean gain."""
    import pyspiel

    if game.get_type().utility != pyspiel.GameType.Utility.IDENTICAL:
        raise ValueError(f"{game} is not a common-payoff game: the common_payoff study needs identical payoffs")
    tree = game_tree(game)
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n):
        pi = rng.dirichlet(np.full(tree.n_actions, concentration), size=tree.legal.shape[0]) * tree.legal
        pi /= pi.sum(1, keepdims=True)
        q, _ = tree.action_values(pi)
        new = update(pi, q, eta, 0.0, None, tree.legal, tie_break)
        gains.append(tree.expected_returns(new)[0] - tree.expected_returns(pi)[0])
    g = np.asarray(gains)
    return {"common/improved_frac": float((g > 1e-12).mean()), "common/worsened_frac": float((g < -1e-12).mean()),
            "common/mean_gain": float(g.mean()), "common/min_gain": float(g.min()), "data/blueprints": n}


def best_response_study(cfg: DictConfig, game, eta: float, alpha: float) -> dict:
    """Approximate exploitability of ``br.opponent``: exact_search (small games: the exact planner's policy, whose
    exact exploitability is reported beside), sampled_search (the sampled planner, searching at every move: Table
    3's setting) or blueprint."""
    import pyspiel
    from open_spiel.python import policy as osp

    from update_equivalence.best_response import DQNConfig, approximate_exploitability

    if game.num_players() != 2 or game.get_type().utility != pyspiel.GameType.Utility.ZERO_SUM:
        raise ValueError(f"best_response measures exploitability of two-player zero-sum games; {game} is not one")
    b = cfg.br
    if b.opponent == "blueprint":
        uniform = cfg.blueprint.kind == "uniform"
        agent = osp.UniformRandomPolicy(game) if uniform else build_blueprint(game, cfg.blueprint)
    elif b.opponent == "exact_search":
        agent = exact_search_policy(game, build_blueprint(game, cfg.blueprint), eta, alpha,
                                    tie_break=cfg.method.tie_break)
    elif b.opponent == "sampled_search":
        if cfg.blueprint.kind != "uniform":
            raise ValueError("the sampled planner's blueprint here is uniform (Table 3's setting)")
        agent = SampledPlanner(game, osp.UniformRandomPolicy(game), eta, alpha, cfg.sampled.n_particles,
                               cfg.sampled.n_rollouts, cfg.sampled.time_budget_s, cfg.sampled.play,
                               seed=np.random.SeedSequence(cfg.seed).spawn(3)[2])
    else:
        raise ValueError(f"br.opponent={b.opponent!r}: exact_search, sampled_search or blueprint")
    dqn = DQNConfig(steps=b.steps, hidden=b.hidden, lr=b.lr, batch_size=b.batch_size, buffer=b.buffer,
                    target_every=b.target_every, learn_start=b.learn_start, eval_episodes=b.eval_episodes)
    out = approximate_exploitability(game, agent, dqn, cfg.seed, b.device, b.progress)
    if b.opponent != "sampled_search":
        out["exact/exploitability"] = exploitability(game, agent)
    return out


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py)."""
    run_dir = Path(cfg.run_dir)
    if not (run_dir / "metrics.json").exists():
        raise FileNotFoundError(f"{run_dir} holds no metrics.json: pass run_dir=<a finished train.py run directory>")
    rec = json.loads((run_dir / "metrics.json").read_text())
    c = rec["config"]
    return {"study": c["study"], "game": c["game"], "method": c["method"], **rec["metrics"]}
