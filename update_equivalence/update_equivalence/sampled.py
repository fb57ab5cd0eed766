"""Sampled update-equivalent planning for games too large to solve (Phantom Tic-Tac-Toe, 3x3 Abrupt Dark Hex):
a belief over histories by rejection sampling against the searcher's own information, rollouts of the blueprint,
and the update at the decision point only (the paper's Algorithm 1 with MMD's update; spec 2.2-2.3).

OpenSpiel does not implement ``ResampleFromInfostate`` for these games, so histories are drawn from the root with
chance and the other players following the blueprint, the searcher's own recorded actions forced, and rejected as
soon as the searcher's information-state string differs from the one it actually had. Accepted histories are
exact samples of P_pi(h | s) (the searcher's own action probabilities are common to all of them).
"""
from __future__ import annotations

import time

import numpy as np

from update_equivalence.update import update


def own_record(state, player: int) -> list[tuple[str, int]]:
    """The searcher's (information-state string, action) at each of its past decisions along ``state``'s history,
    then its current string with action -1: what the searcher itself knows (its strings encode its observations)."""
    game = state.get_game()
    s = game.new_initial_state()
    out = []
    for a in state.history():
        if not s.is_chance_node() and s.current_player() == player:
            out.append((s.information_state_string(player), a))
        s.apply_action(a)
    out.append((state.information_state_string(player), -1))
    return out


def _sample_action(rng, probs: dict) -> int:
    actions = list(probs)
    p = np.fromiter(probs.values(), dtype=np.float64, count=len(actions))
    return actions[int(rng.choice(len(actions), p=p / p.sum()))]


def _act(state, blueprint, rng) -> int:
    if state.is_chance_node():
        return _sample_action(rng, dict(state.chance_outcomes()))
    return _sample_action(rng, blueprint.action_probabilities(state))


def sample_histories(game, record, player: int, blueprint, n: int, rng, max_tries: int = 20000) -> list:
    """``n`` states consistent with the searcher's ``record`` (see :func:`own_record`), drawn by rejection."""
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > max_tries * n:
            raise RuntimeError(f"no history consistent with the searcher's information in {max_tries * n} tries: "
                               "raise max_tries or use a belief model")
        s, k, ok = game.new_initial_state(), 0, True
        while True:
            if not s.is_chance_node() and not s.is_terminal() and s.current_player() == player:
                if s.information_state_string(player) != record[k][0]:
                    ok = False
                    break
                if record[k][1] == -1:  # the current decision point
                    break
                s.apply_action(record[k][1])
                k += 1
            elif s.is_terminal():
                ok = False
                break
            else:
                s.apply_action(_act(s, blueprint, rng))
        if ok:
            out.append(s)
    return out


def rollout(state, blueprint, rng) -> np.ndarray:
    """Returns of one playout of ``blueprint`` (and chance) from ``state`` to the end."""
    s = state.clone()
    while not s.is_terminal():
        s.apply_action(_act(s, blueprint, rng))
    return np.asarray(s.returns())


class SampledPlanner:
    """Update-equivalent search at the decision point actually reached: q(a) estimated on ``n_particles``
    histories from the searcher's belief x ``n_rollouts`` blueprint playouts per legal action, then
    ``update(pi_blueprint(s), q, eta, alpha)`` (MMDS; alpha = 0: MDS; eta = inf: greedy Monte-Carlo search).
    ``time_budget_s`` (optional) keeps drawing particles until the budget is spent (at least ``n_particles``).
    ``act`` plays argmax of the updated policy when ``play="argmax"`` (the paper's Hanabi choice), else samples it.
    A move whose belief cannot be sampled (``max_tries`` rejections) plays the blueprint and counts a fallback."""

    def __init__(self, game, blueprint, eta: float, alpha: float = 0.0, n_particles: int = 10, n_rollouts: int = 4,
                 time_budget_s: float | None = None, play: str = "sample", max_tries: int = 20000, seed: int = 0):
        if play not in ("sample", "argmax"):
            raise ValueError(f"play={play!r}: sample or argmax")
        self.game, self.blueprint, self.eta, self.alpha = game, blueprint, eta, alpha
        self.n_particles, self.n_rollouts, self.budget = n_particles, n_rollouts, time_budget_s
        self.play, self.max_tries = play, max_tries
        self.rng = np.random.default_rng(seed)
        self.n_actions = game.num_distinct_actions()
        self.fallbacks = 0  # moves where no consistent history was found: the blueprint was played

    def policy(self, state) -> np.ndarray:
        """The updated policy ``[A]`` at ``state``'s current player's decision point."""
        t0, player = time.perf_counter(), state.current_player()
        record = own_record(state, player)
        legal = np.zeros(self.n_actions, dtype=bool)
        legal[state.legal_actions()] = True
        pi = np.zeros(self.n_actions)
        for a, p in self.blueprint.action_probabilities(state).items():
            pi[a] = p
        total, count = np.zeros(self.n_actions), 0
        while count < self.n_particles or (self.budget is not None and time.perf_counter() - t0 < self.budget):
            try:
                (h,) = sample_histories(self.game, record, player, self.blueprint, 1, self.rng, self.max_tries)
            except RuntimeError:  # a belief the blueprint makes (nearly) impossible: play the blueprint, count it
                self.fallbacks += 1
                self.last_particles, self.last_seconds = count, time.perf_counter() - t0
                return pi

            for a in np.flatnonzero(legal):
                child = h.child(int(a))
                total[a] += sum(rollout(child, self.blueprint, self.rng)[player] for _ in range(self.n_rollouts))
            count += 1
        q = total / (count * self.n_rollouts)
        self.last_particles, self.last_seconds = count, time.perf_counter() - t0
        return update(pi, q, self.eta, self.alpha, None, legal)

    def action_probabilities(self, state, player_id=None) -> dict:
        """OpenSpiel's policy interface: {action: probability} of the updated policy."""
        p = self.policy(state)
        return {int(a): float(p[a]) for a in state.legal_actions()}

    def act(self, state) -> int:
        """The action the searcher plays."""
        p = self.policy(state)
        if self.play == "argmax":
            return int(np.argmax(p))
        return int(self.rng.choice(self.n_actions, p=p))


def head_to_head(game, agent, opponent, games: int, seed: int = 0) -> dict:
    """``agent`` (with ``act(state)``) against ``opponent`` (an OpenSpiel policy), seats alternating; the
    agent's mean return with a 95% normal interval, and the agent's seconds per move."""
    rng = np.random.default_rng(seed)
    rets, secs, moves = [], 0.0, 0
    for g in range(games):
        seat = g % game.num_players()
        s = game.new_initial_state()
        while not s.is_terminal():
            if s.is_chance_node() or s.current_player() != seat:
                s.apply_action(_act(s, opponent, rng))
            else:
                t0 = time.perf_counter()
                s.apply_action(agent.act(s))
                secs += time.perf_counter() - t0
                moves += 1
        rets.append(s.returns()[seat])
    r = np.asarray(rets)
    half = 1.96 * r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else float("nan")
    return {"mean": float(r.mean()), "ci95": float(half), "games": games, "sec_per_move": secs / max(moves, 1)}
