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


def blueprint_probs(blueprint, states, n_actions: int) -> np.ndarray:
    """``[n, A]``: the blueprint at each state (one batched call for a network blueprint with ``batch_probs``)."""
    from open_spiel.python import policy as osp

    from update_equivalence.blueprint import legal_mask

    if hasattr(blueprint, "batch_probs"):
        return blueprint.batch_probs(states)
    if isinstance(blueprint, osp.UniformRandomPolicy):
        return legal_mask(states, n_actions).astype(np.float64)  # rows are normalised by the sampler
    out = np.zeros((len(states), n_actions))
    for i, st in enumerate(states):
        for a, p in blueprint.action_probabilities(st).items():
            out[i, a] = p
    return out


def rollouts(states, blueprint, rng, n_actions: int) -> np.ndarray:
    """Returns ``[n, players]`` of one playout of ``blueprint`` (and chance) from each state to the end, all playouts
    in lockstep (one blueprint call per step over every live game)."""
    from update_equivalence.blueprint import sample_rows

    states = [s.clone() for s in states]
    while True:
        for s in states:
            while s.is_chance_node():
                s.apply_action(_act(s, None, rng))
        live = [s for s in states if not s.is_terminal()]
        if not live:
            return np.array([s.returns() for s in states])
        for s, a in zip(live, sample_rows(blueprint_probs(blueprint, live, n_actions), rng)):
            s.apply_action(int(a))


def observation(state, player: int):
    """What ``player`` observes at ``state``: its observation string and, where the game has one, its observation
    tensor. Both are needed: Hanabi's string omits the last move (playing either of two identical cards reads
    the same) while its tensor records it."""
    game = state.get_game()
    t = bytes(np.asarray(state.observation_tensor(player), np.float32)) if game.get_type(
    ).provides_observation_tensor else b""
    return state.observation_string(player), t


def observation_record(state, player: int) -> list:
    """The searcher's observation at every state of ``state``'s history: its perfect-recall information in games
    without information-state strings (Hanabi), where the number of steps is public."""
    game = state.get_game()
    s = game.new_initial_state()
    out = [observation(s, player)]
    for a in state.history():
        s.apply_action(a)
        out.append(observation(s, player))
    return out


def enumerate_belief(game, state, player: int, blueprint, max_size: int = 200_000):
    """The posterior over histories given the searcher's observations (:func:`observation_record`, strings and
    tensors): every history from the root with chance's and the other players' blueprint probabilities, the
    searcher's own actions forced, pruned as soon as the searcher's observation differs. Exact when the
    observations are the searcher's whole information (Hanabi's are). Returns (states, probabilities)."""
    record, history = observation_record(state, player), state.history()
    n_actions = game.num_distinct_actions()
    actual = game.new_initial_state()
    frontier, w = [game.new_initial_state()], np.ones(1)
    for d, a_true in enumerate(history):
        mine = not actual.is_chance_node() and actual.current_player() == player
        others = [i for i, s in enumerate(frontier) if not s.is_chance_node() and s.current_player() != player]
        probs = blueprint_probs(blueprint, [frontier[i] for i in others], n_actions) if others else None
        row = {i: k for k, i in enumerate(others)}
        nxt, nw = [], []
        for i, s in enumerate(frontier):
            if s.is_chance_node():
                branches = s.chance_outcomes()
            elif s.current_player() == player:
                branches = [(a_true, 1.0)] if mine and a_true in s.legal_actions() else []
            else:
                p = probs[row[i]]
                branches = [] if mine else [(a, p[a] / p.sum()) for a in np.flatnonzero(p > 0)]
            for a, pa in branches:
                c = s.child(int(a))
                if not c.is_terminal() and observation(c, player) == record[d + 1]:
                    nxt.append(c)
                    nw.append(w[i] * pa)
        if not nxt:
            raise RuntimeError("no history with the blueprint's support matches the searcher's observations")
        if len(nxt) > max_size:
            raise ValueError(f"the belief holds more than {max_size} histories at step {d}: use a smaller game "
                             "variant or belief=rejection")
        frontier, w = nxt, np.asarray(nw) / np.sum(nw)  # renormalised per step: no underflow on long games
        actual.apply_action(a_true)
    return frontier, w


class SampledPlanner:
    """Update-equivalent search at the decision point actually reached: q(a) estimated on ``n_particles``
    histories from the searcher's belief x ``n_rollouts`` blueprint playouts per legal action (all playouts of a
    round in lockstep), then ``update(pi_blueprint(s), q, eta, alpha)`` (MMDS; alpha = 0: MDS; eta = inf: greedy
    Monte-Carlo search, SPARTA-style). ``belief``: ``rejection`` (against the searcher's information-state strings;
    PTTT, ADH3) or ``enumerate`` (the exact posterior from observation strings, :func:`enumerate_belief`; Hanabi).
    ``time_budget_s`` (optional) adds rounds of ``n_particles`` particles until the budget is spent.
    ``act`` plays argmax of the updated policy when ``play="argmax"`` (the paper's Hanabi choice), else samples it.
    A move whose belief cannot be sampled (``max_tries`` rejections) plays the blueprint and counts a fallback."""

    def __init__(self, game, blueprint, eta: float, alpha: float = 0.0, n_particles: int = 10, n_rollouts: int = 4,
                 time_budget_s: float | None = None, play: str = "sample", max_tries: int = 20000, seed: int = 0,
                 belief: str = "rejection"):
        if play not in ("sample", "argmax"):
            raise ValueError(f"play={play!r}: sample or argmax")
        if belief not in ("rejection", "enumerate"):
            raise ValueError(f"belief={belief!r}: rejection or enumerate")
        if belief == "rejection" and not game.get_type().provides_information_state_string:
            raise ValueError(f"{game} has no information-state strings (Hanabi): use belief=enumerate")
        self.game, self.blueprint, self.eta, self.alpha = game, blueprint, eta, alpha
        self.n_particles, self.n_rollouts, self.budget = n_particles, n_rollouts, time_budget_s
        self.play, self.max_tries, self.belief = play, max_tries, belief
        self.rng = np.random.default_rng(seed)
        self.n_actions = game.num_distinct_actions()
        self.fallbacks = 0  # moves where no consistent history was found: the blueprint was played

    def _particles(self, state, player, cache):
        if self.belief == "enumerate":
            if "belief" not in cache:
                cache["belief"] = enumerate_belief(self.game, state, player, self.blueprint)
            states, w = cache["belief"]
            return [states[i] for i in self.rng.choice(len(states), size=self.n_particles, p=w)]
        if "record" not in cache:
            cache["record"] = own_record(state, player)
        return sample_histories(self.game, cache["record"], player, self.blueprint, self.n_particles, self.rng,
                                self.max_tries)

    def policy(self, state) -> np.ndarray:
        """The updated policy ``[A]`` at ``state``'s current player's decision point."""
        t0, player = time.perf_counter(), state.current_player()
        legal = np.zeros(self.n_actions, dtype=bool)
        legal[state.legal_actions()] = True
        pi = blueprint_probs(self.blueprint, [state], self.n_actions)[0]
        pi = pi / pi.sum()
        acts = np.flatnonzero(legal)
        total, count, cache = np.zeros(self.n_actions), 0, {}
        while count == 0 or (self.budget is not None and time.perf_counter() - t0 < self.budget):
            try:
                particles = self._particles(state, player, cache)
            except RuntimeError:  # a belief the blueprint makes (nearly) impossible
                if count:  # a later round under a time budget: keep the rounds already estimated
                    break
                self.fallbacks += 1  # no estimate at all: play the blueprint, count it
                self.last_particles, self.last_seconds = count, time.perf_counter() - t0
                return pi
            children = [h.child(int(a)) for h in particles for a in acts for _ in range(self.n_rollouts)]
            ret = rollouts(children, self.blueprint, self.rng, self.n_actions)[:, player]
            total[acts] += ret.reshape(len(particles), len(acts), self.n_rollouts).sum((0, 2))
            count += len(particles)
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


class ArgmaxPolicy:
    """Plays the most probable action of ``policy``: the no-search baseline for planners with ``play="argmax"``."""

    def __init__(self, policy, n_actions: int):
        self.policy, self.n_actions = policy, n_actions

    def act(self, state) -> int:
        return int(np.argmax(blueprint_probs(self.policy, [state], self.n_actions)[0]))


def _move(agent, state, rng) -> int:
    """An agent's move: ``act(state)`` (a planner) or a draw from an OpenSpiel policy."""
    return int(agent.act(state)) if hasattr(agent, "act") else _act(state, agent, rng)


def head_to_head(game, agent, opponent, games: int, seed: int = 0) -> dict:
    """``agent`` (a planner with ``act(state)`` or an OpenSpiel policy) against ``opponent`` (an OpenSpiel policy),
    seats alternating; the agent's mean return with a 95% normal interval, and the agent's seconds per move."""
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
                s.apply_action(_move(agent, s, rng))
                secs += time.perf_counter() - t0
                moves += 1
        rets.append(s.returns()[seat])
    return _summary(rets, games, secs / max(moves, 1))


def selfplay(game, agent, games: int, seed: int = 0, progress: bool = False) -> dict:
    """Every seat played by ``agent`` (a planner or an OpenSpiel policy); player 0's mean return (the common score
    of a cooperative game) with a 95% normal interval, and seconds per move."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    rets, secs, moves = [], 0.0, 0
    for _ in tqdm(range(games), desc="self-play", disable=not progress):
        s = game.new_initial_state()
        while not s.is_terminal():
            if s.is_chance_node():
                s.apply_action(_act(s, None, rng))
            else:
                t0 = time.perf_counter()
                s.apply_action(_move(agent, s, rng))
                secs += time.perf_counter() - t0
                moves += 1
        rets.append(s.returns()[0])
    return _summary(rets, games, secs / max(moves, 1))


def _summary(rets, games: int, sec_per_move: float) -> dict:
    r = np.asarray(rets, dtype=np.float64)
    half = 1.96 * r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else float("nan")
    return {"mean": float(r.mean()), "ci95": float(half), "games": games, "sec_per_move": sec_per_move}
