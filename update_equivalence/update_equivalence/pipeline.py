"""The only module that reads a config: one run of a study (exact search in a small game, the common-payoff
soundness study, the sampled planner head to head, approximate exploitability by a best responder, self-play of
searching agents in a common-payoff game, or the training of a deep blueprint), metrics.json with the OpenSpiel
version and game string."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, open_dict

from shared.device import seed_everything
from shared.logging import read_run, resolve_run_dir, start_run
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

STUDIES = ("exact", "common_payoff", "sampled", "best_response", "selfplay", "blueprint")


def openspiel_version() -> str:
    """The installed OpenSpiel version (tensor sizes of PTTT/ADH changed in 2024: recorded in every run)."""
    from importlib import metadata

    return metadata.version("open_spiel")


def build_blueprint(game, b: DictConfig, tabular_uniform: bool = True):
    """The blueprint of ``blueprint.kind``: uniform, ``mmd`` (tabular MMD iterations), ``cfr`` (CFR+ average) or
    ``net`` (a deep blueprint trained by ``study=blueprint``, read from ``blueprint.path``). The uniform blueprint is
    a table for exact planning, OpenSpiel's ``UniformRandomPolicy`` for the sampled planner (large games)."""
    if b.kind == "uniform":
        if tabular_uniform:
            return uniform_policy(game)
        from open_spiel.python import policy as osp

        return osp.UniformRandomPolicy(game)
    if b.kind == "net":
        from update_equivalence.blueprint import NetPolicy

        if b.path is None:
            raise ValueError("blueprint.kind=net needs blueprint.path=<run_dir>/blueprint.pt from a run of "
                             f"`python train.py study=blueprint game={game}`")
        return NetPolicy.load(b.path, game, b.device)
    if b.kind == "mmd":
        learner = MMDLearner(game, b.eta, b.alpha, magnet_lr=b.magnet_lr)
        for _ in range(b.iterations):
            learner.step()
        return learner.policy
    if b.kind == "cfr":
        return cfr_policy(game, b.iterations)
    raise ValueError(f"blueprint.kind={b.kind!r}: uniform, mmd, cfr or net")


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
            summary.update(best_response_study(cfg, game, eta, alpha, run_dir))
        elif cfg.study == "selfplay":
            summary.update(selfplay_study(cfg, game, eta, alpha))
        elif cfg.study == "blueprint":
            summary.update(blueprint_study(cfg, game, run_dir))
        else:
            blueprint = build_blueprint(game, cfg.blueprint, tabular_uniform=False)
            s_planner, s_games = np.random.SeedSequence(cfg.seed).spawn(2)  # independent streams
            planner = _planner(cfg, game, blueprint, eta, alpha, s_planner)
            h2h = head_to_head(game, planner, blueprint, cfg.sampled.games, s_games)
            summary.update({"h2h/mean": h2h["mean"], "h2h/ci95": h2h["ci95"], "h2h/games": h2h["games"],
                            "speed/sec_per_move": h2h["sec_per_move"], "search/fallbacks": planner.fallbacks})
        summary["time/seconds"] = time.perf_counter() - t0
        rec.finish(summary)
    return float(summary.get(cfg.optimized_metric, float("nan")))


def _planner(cfg: DictConfig, game, blueprint, eta: float, alpha: float, seed) -> SampledPlanner:
    c = cfg.sampled
    return SampledPlanner(game, blueprint, eta, alpha, c.n_particles, c.n_rollouts, c.time_budget_s, c.play,
                          seed=seed, belief=c.belief)


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


def best_response_study(cfg: DictConfig, game, eta: float, alpha: float, run_dir: Path) -> dict:
    """Approximate exploitability of ``br.opponent``: exact_search (small games: the exact planner's policy, whose
    exact exploitability is reported beside), sampled_search (the sampled planner, searching at every move: Table
    3's setting) or blueprint."""
    import pyspiel

    from update_equivalence.best_response import DQNConfig, approximate_exploitability

    if game.num_players() != 2 or game.get_type().utility != pyspiel.GameType.Utility.ZERO_SUM:
        raise ValueError(f"best_response measures exploitability of two-player zero-sum games; {game} is not one")
    b = cfg.br
    if b.opponent == "blueprint":
        agent = build_blueprint(game, cfg.blueprint, tabular_uniform=False)
    elif b.opponent == "exact_search":
        agent = exact_search_policy(game, build_blueprint(game, cfg.blueprint), eta, alpha,
                                    tie_break=cfg.method.tie_break)
    elif b.opponent == "sampled_search":
        blueprint = build_blueprint(game, cfg.blueprint, tabular_uniform=False)
        agent = _planner(cfg, game, blueprint, eta, alpha, np.random.SeedSequence(cfg.seed).spawn(3)[2])
    else:
        raise ValueError(f"br.opponent={b.opponent!r}: exact_search, sampled_search or blueprint")
    dqn = DQNConfig(steps=b.steps, hidden=b.hidden, lr=b.lr, batch_size=b.batch_size, buffer=b.buffer,
                    target_every=b.target_every, learn_start=b.learn_start, eval_episodes=b.eval_episodes)
    out = approximate_exploitability(game, agent, dqn, cfg.seed, b.device, b.progress, checkpoint_dir=run_dir,
                                     ckpt_every=b.ckpt_every)
    if b.opponent != "sampled_search" and b.exact_eval:
        out["exact/exploitability"] = exploitability(game, agent)
    return out


def selfplay_study(cfg: DictConfig, game, eta: float, alpha: float) -> dict:
    """Common-payoff self-play (Hanabi): every seat runs the same planner (multi-agent search, each searcher's
    estimates taken under the common blueprint) vs the blueprint playing itself, sampling its actions (the gain's
    reference) and playing its argmax (what an argmax-playing searcher adds beyond argmax play); mean scores with
    95% CIs."""
    import pyspiel

    from update_equivalence.sampled import ArgmaxPolicy, selfplay

    if game.get_type().utility != pyspiel.GameType.Utility.IDENTICAL:
        raise ValueError(f"{game} is not a common-payoff game: study=selfplay scores cooperative play (Hanabi)")
    blueprint = build_blueprint(game, cfg.blueprint, tabular_uniform=False)
    s_planner, s_search, s_base, s_argmax = np.random.SeedSequence(cfg.seed).spawn(4)
    planner = _planner(cfg, game, blueprint, eta, alpha, s_planner)
    base = selfplay(game, blueprint, cfg.selfplay.games, s_base)
    greedy_bp = selfplay(game, ArgmaxPolicy(blueprint, game.num_distinct_actions()), cfg.selfplay.games, s_argmax)
    srch = selfplay(game, planner, cfg.selfplay.games, s_search, progress=cfg.selfplay.progress)
    return {"selfplay/blueprint": base["mean"], "selfplay/blueprint_ci95": base["ci95"],
            "selfplay/blueprint_argmax": greedy_bp["mean"], "selfplay/blueprint_argmax_ci95": greedy_bp["ci95"],
            "selfplay/search": srch["mean"], "selfplay/search_ci95": srch["ci95"],
            "selfplay/gain": srch["mean"] - base["mean"], "selfplay/games": cfg.selfplay.games,
            "speed/sec_per_move": srch["sec_per_move"], "search/fallbacks": planner.fallbacks}


def blueprint_study(cfg: DictConfig, game, run_dir: Path) -> dict:
    """Self-play training of a deep blueprint (checkpointed each iteration; a rerun in the same run_dir resumes),
    saved as ``run_dir/blueprint.pt``; its head-to-head score against the uniform policy, and its exact
    exploitability where the game is small enough (``train_blueprint.exact_eval``)."""
    from open_spiel.python import policy as osp

    from update_equivalence.blueprint import BlueprintConfig, train_blueprint

    t = cfg.train_blueprint
    hp = BlueprintConfig(method=t.method, iterations=t.iterations, games_per_iter=t.games_per_iter, hidden=t.hidden,
                         layers=t.layers, lr=t.lr, epochs=t.epochs, minibatch=t.minibatch, clip=t.clip,
                         alpha=t.alpha, magnet_kl=t.magnet_kl, magnet_every=t.magnet_every,
                         value_coef=t.value_coef, max_grad_norm=t.max_grad_norm)
    policy, history = train_blueprint(game, hp, cfg.seed, Path(run_dir) / "checkpoint.pt", t.device, t.progress)
    policy.save(Path(run_dir) / "blueprint.pt", hp, {"history": history})
    out = {"blueprint/iterations": hp.iterations, "blueprint/decisions": int(sum(h["decisions"] for h in history)),
           "blueprint/final_return_p0": history[-1]["mean_return_p0"] if history else float("nan")}
    if t.eval_games:
        u = osp.UniformRandomPolicy(game)
        h2h = head_to_head(game, policy, u, t.eval_games, np.random.SeedSequence(cfg.seed).spawn(4)[3])
        out.update({"blueprint/h2h_uniform": h2h["mean"], "blueprint/h2h_uniform_ci95": h2h["ci95"]})
    if t.exact_eval:
        out["blueprint/exploitability"] = exploitability(game, policy)
    return out


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py)."""
    rec = read_run(cfg.run_dir)
    c = rec["config"]
    return {"study": c["study"], "game": c["game"], "method": c["method"], **rec["metrics"]}
