"""A game's whole tree as flat numpy arrays, for exact (infinite-budget) planning and evaluation of small games.

Nodes are stored in depth-first preorder (a parent before its children). Each decision node points to its
information state's row of OpenSpiel's ``TabularPolicy`` (so policies are ``[n_infostates, A]`` arrays in that
ordering); chance edges carry their probabilities; terminal nodes their returns. Reach probabilities are one
forward pass over depth levels, values one backward pass, action values q(s, a) one scatter-add.
"""
from __future__ import annotations

import numpy as np

CHANCE, TERMINAL = -1, -2


class GameTree:
    """The flat tree of ``game`` (a ``pyspiel.Game``) with infostates indexed like ``TabularPolicy(game)``."""

    def __init__(self, game, max_nodes: int = 5_000_000):
        from open_spiel.python import policy as osp

        self.game = game
        self.tabular = osp.TabularPolicy(game)
        self.n_players = game.num_players()
        self.n_actions = game.num_distinct_actions()
        self.legal = self.tabular.legal_actions_mask.astype(bool)
        self.info_player = np.zeros(len(self.tabular.state_lookup), dtype=np.int64)
        parent, edge_action, player, info, chance_p, returns, depth = [], [], [], [], [], [], []
        stack = [(game.new_initial_state(), -1, -1, 1.0, 0)]
        while stack:
            state, par, act, cp, d = stack.pop()
            idx = len(parent)
            if idx >= max_nodes:
                raise ValueError(f"{game} has more than {max_nodes} histories: exact planning is for small games "
                                 "(use the sampled planner)")
            parent.append(par)
            edge_action.append(act)
            chance_p.append(cp)
            depth.append(d)
            if state.is_terminal():
                player.append(TERMINAL)
                info.append(-1)
                returns.append(state.returns())
                continue
            returns.append([0.0] * self.n_players)
            if state.is_chance_node():
                player.append(CHANCE)
                info.append(-1)
                children = [(state.child(a), idx, a, p, d + 1) for a, p in state.chance_outcomes()]
            else:
                p = state.current_player()
                player.append(p)
                s = self.tabular.state_index(state)
                info.append(s)
                self.info_player[s] = p
                children = [(state.child(a), idx, a, 1.0, d + 1) for a in state.legal_actions()]
            stack.extend(reversed(children))
        self.parent = np.array(parent)
        self.action = np.array(edge_action)
        self.player = np.array(player)
        self.info = np.array(info)
        self.chance_p = np.array(chance_p)
        self.returns = np.array(returns, dtype=np.float64)
        self.depth = np.array(depth)
        self.n = len(parent)
        self.levels = [np.flatnonzero(self.depth == k) for k in range(self.depth.max() + 1)]

    def policy_array(self, policy) -> np.ndarray:
        """``[n_infostates, A]`` probabilities of an OpenSpiel policy (a ``TabularPolicy`` of this game is read
        directly; any other policy is queried at one state of every infostate), validated."""
        from open_spiel.python import policy as osp

        if isinstance(policy, np.ndarray):
            arr = policy.astype(np.float64)
        elif isinstance(policy, osp.TabularPolicy) and policy.state_lookup == self.tabular.state_lookup:
            arr = np.asarray(policy.action_probability_array, dtype=np.float64)
        else:
            arr = np.zeros_like(self.legal, dtype=np.float64)
            for key, s in self.tabular.state_lookup.items():
                state = self.tabular.states[s]
                try:
                    probs = policy.action_probabilities(state)
                except (KeyError, IndexError) as e:
                    raise ValueError(f"the blueprint does not cover infostate {key!r} ({e!r})") from None
                for a, p in probs.items():
                    arr[s, a] = p
        if arr.shape != self.legal.shape:
            raise ValueError(f"policy array {arr.shape} does not match the game's infostates x actions "
                             f"{self.legal.shape}")
        if np.any(arr < -1e-12):
            raise ValueError(f"the policy has negative probabilities (min {arr.min():.3g})")
        if np.any(arr[~self.legal] > 1e-12):
            raise ValueError("the policy puts mass on illegal actions")
        if not np.allclose(arr.sum(1), 1.0, atol=1e-6):
            bad = int(np.argmax(np.abs(arr.sum(1) - 1)))
            raise ValueError(f"the policy is not normalised at infostate {self.tabular.states[bad]!r} "
                             f"(sum {arr[bad].sum():.6g})")
        return arr

    def edge_probs(self, pi: np.ndarray) -> np.ndarray:
        """Probability of the edge into every node (1 at the root) under policy array ``pi``."""
        p = self.chance_p.copy()
        dec = self.parent >= 0
        par = self.parent[dec]
        is_dec = self.player[par] >= 0
        idx = np.flatnonzero(dec)[is_dec]
        p[idx] = pi[self.info[self.parent[idx]], self.action[idx]]
        return p

    def reach(self, pi: np.ndarray) -> np.ndarray:
        """``[N, n_players + 1]`` reach-probability factors of every node: each player's own, then chance's."""
        r = np.ones((self.n, self.n_players + 1))
        ep = self.edge_probs(pi)
        for lvl in self.levels[1:]:
            par = self.parent[lvl]
            r[lvl] = r[par]
            who = self.player[par]
            col = np.where(who == CHANCE, self.n_players, who)
            r[lvl, col] *= ep[lvl]
        return r

    def values(self, pi: np.ndarray) -> np.ndarray:
        """``[N, n_players]`` expected returns of every node when everyone plays ``pi``."""
        v = self.returns.copy()
        ep = self.edge_probs(pi)
        for lvl in reversed(self.levels[1:]):
            v_par = np.zeros_like(v)
            np.add.at(v_par, self.parent[lvl], ep[lvl, None] * v[lvl])
            internal = np.unique(self.parent[lvl])
            v[internal] = v_par[internal]
        return v

    def action_values(self, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(q ``[n_infostates, A]``, cf_reach ``[n_infostates]``): q(s, a) = sum_h cf(h) Q(h, a) / sum_h cf(h) over
        the histories h of infostate s, with cf(h) the reach of the other players and chance (the belief
        P_pi(h | s) of the acting player, who plays to reach s); Q(h, a) the acting player's expected return of
        playing a at h and pi afterwards. q = 0 where no history of s is reachable by the others (cf = 0)."""
        r, v = self.reach(pi), self.values(pi)
        dec = self.player >= 0
        cf = np.prod(r, axis=1)
        own = r[np.arange(self.n), np.where(dec, self.player, 0)]
        cf = np.where(dec, np.divide(cf, own, out=np.zeros_like(cf), where=own > 0), 0.0)
        # own may be 0 (the player never plays to h): recompute the others' product directly there
        zero_own = dec & (own == 0)
        if zero_own.any():
            mask = np.ones_like(r[zero_own], dtype=bool)
            mask[np.arange(zero_own.sum()), self.player[zero_own]] = False
            cf[zero_own] = np.prod(np.where(mask, r[zero_own], 1.0), axis=1)
        child = np.flatnonzero(self.parent >= 0)
        par = self.parent[child]
        keep = self.player[par] >= 0
        child, par = child[keep], par[keep]
        n_info = self.legal.shape[0]
        num = np.zeros((n_info, self.n_actions))
        np.add.at(num, (self.info[par], self.action[child]), cf[par] * v[child, self.player[par]])
        den = np.zeros(n_info)
        np.add.at(den, self.info[dec], cf[dec])
        q = np.divide(num, den[:, None], out=np.zeros_like(num), where=den[:, None] > 0)
        return q, den

    def expected_returns(self, pi: np.ndarray) -> np.ndarray:
        """Each player's expected return at the root under ``pi``."""
        return self.values(pi)[0]
