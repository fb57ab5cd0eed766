"""Approximate exploitability (Table 3's measure): a DQN best responder trained against a fixed agent (a blueprint,
or the sampled planner that searches at every move), one per seat; exploitability ~ mean of the two best-response
values (NashConv / 2 in a zero-sum game; a learned best response gives a lower bound of the exact value).

The best responder sees OpenSpiel's information-state tensor of its seat and acts among the legal actions;
everything else (chance, the fixed agent) is the environment. Our own DQN: an MLP, a replay of transitions,
a target network, epsilon decaying linearly, squared-error loss, illegal actions masked in acting and in the targets.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def _agent_action(agent, state, rng) -> int:
    if state.is_chance_node():
        outcomes = state.chance_outcomes()
        return int(outcomes[rng.choice(len(outcomes), p=np.array([p for _, p in outcomes]))][0])
    if hasattr(agent, "act"):
        return int(agent.act(state))
    probs = agent.action_probabilities(state)
    acts = list(probs)
    p = np.array([probs[a] for a in acts], dtype=np.float64)
    return int(acts[rng.choice(len(acts), p=p / p.sum())])


class BestResponseEnv:
    """The game from seat ``player``'s side with ``opponent`` (``act(state)`` or an OpenSpiel policy) fixed."""

    def __init__(self, game, opponent, player: int, seed: int = 0):
        self.game, self.opponent, self.player = game, opponent, player
        self.rng = np.random.default_rng(seed)
        self.n_actions = game.num_distinct_actions()
        self.obs_dim = game.information_state_tensor_size()

    def _advance(self):
        while not self.state.is_terminal() and (self.state.is_chance_node()
                                                or self.state.current_player() != self.player):
            self.state.apply_action(_agent_action(self.opponent, self.state, self.rng))

    def _obs(self):
        obs = np.asarray(self.state.information_state_tensor(self.player), dtype=np.float32)
        legal = np.zeros(self.n_actions, dtype=bool)
        legal[self.state.legal_actions()] = True
        return obs, legal

    def reset(self):
        """A new game, advanced to the best responder's first decision. Games where the seat never acts are skipped
        (none in the configured games; in a game with such episodes the value is conditional on acting)."""
        for _ in range(10000):
            self.state = self.game.new_initial_state()
            self._advance()
            if not self.state.is_terminal():
                return self._obs()
        raise RuntimeError(f"seat {self.player} did not act in 10000 games of {self.game}: its best-response value is "
                           "the game's value under the opponent, no learning needed")

    def step(self, action: int):
        """(obs, legal, reward, done): the reward is the seat's return at the end of the game."""
        self.state.apply_action(int(action))
        self._advance()
        if self.state.is_terminal():
            return (np.zeros(self.obs_dim, np.float32), np.ones(self.n_actions, bool),
                    float(self.state.returns()[self.player]), True)
        obs, legal = self._obs()
        return obs, legal, 0.0, False


@dataclass
class DQNConfig:
    """The best responder's hyperparameters (our choices; the paper's BR setup is [verify])."""

    steps: int = 20000
    hidden: int = 128
    lr: float = 1e-3
    batch_size: int = 128
    buffer: int = 50000
    gamma: float = 1.0
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_fraction: float = 0.5
    target_every: int = 500
    learn_start: int = 500
    eval_episodes: int = 2000


def _mlp(i: int, h: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, o))


def train_best_response(env: BestResponseEnv, hp: DQNConfig, seed: int = 0, device="cpu", progress: bool = False,
                        checkpoint=None, ckpt_every: int = 10000) -> nn.Module:
    """DQN against the fixed opponent of ``env``; returns the Q-network. With ``checkpoint`` (a path) the whole
    learner (networks, optimiser, the filled replay, step, random states, the env's stream) is saved at the first
    episode end after every ``ckpt_every`` steps, and a run finds and resumes it. Resuming at an episode start makes
    it exact against a policy opponent; a searching opponent's own random stream restarts (same distribution)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device)
    q = _mlp(env.obs_dim, hp.hidden, env.n_actions).to(dev)
    tgt = _mlp(env.obs_dim, hp.hidden, env.n_actions).to(dev)
    tgt.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=hp.lr)
    n = hp.buffer
    O, O2 = np.zeros((n, env.obs_dim), np.float32), np.zeros((n, env.obs_dim), np.float32)
    A, R, D = np.zeros(n, np.int64), np.zeros(n, np.float32), np.zeros(n, np.float32)
    L2 = np.zeros((n, env.n_actions), bool)
    ptr, size, start, last_save = 0, 0, 0, 0
    sig = {"hp": asdict(hp), "seed": seed, "player": env.player, "game": str(env.game)}
    if checkpoint is not None and Path(checkpoint).exists():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if ck["signature"] != sig:
            raise ValueError(f"{checkpoint} belongs to another best-response run: use a fresh run_dir")
        q.load_state_dict(ck["q"])
        tgt.load_state_dict(ck["tgt"])
        opt.load_state_dict(ck["opt"])
        size, ptr, start = ck["size"], ck["ptr"], ck["t"]
        for arr, saved in zip((O, O2, A, R, D, L2), ck["replay"]):
            arr[:size] = saved
        rng.bit_generator.state, env.rng.bit_generator.state = ck["rng"], ck["env_rng"]
        torch.set_rng_state(ck["torch_rng"])
        last_save = start
    obs, legal = env.reset()
    for t in tqdm(range(start, hp.steps), desc="best response", disable=not progress, initial=start,
                  total=hp.steps):
        eps = max(hp.eps_end, hp.eps_start - (hp.eps_start - hp.eps_end) * t / (hp.eps_fraction * hp.steps))
        if rng.random() < eps:
            a = int(rng.choice(np.flatnonzero(legal)))
        else:
            with torch.no_grad():
                qa = q(torch.as_tensor(obs, device=dev)).cpu().numpy()
            a = int(np.flatnonzero(legal)[np.argmax(qa[legal])])
        obs2, legal2, r, done = env.step(a)
        O[ptr], A[ptr], R[ptr], O2[ptr], D[ptr], L2[ptr] = obs, a, r, obs2, float(done), legal2
        ptr, size = (ptr + 1) % n, min(size + 1, n)
        env_before_reset = dict(env.rng.bit_generator.state) if done else None
        obs, legal = (env.reset() if done else (obs2, legal2))
        if t >= hp.learn_start and size >= hp.batch_size:
            idx = rng.integers(size, size=hp.batch_size)
            o, o2 = torch.as_tensor(O[idx], device=dev), torch.as_tensor(O2[idx], device=dev)
            with torch.no_grad():
                nq = tgt(o2).masked_fill(~torch.as_tensor(L2[idx], device=dev), -1e9).max(1).values
                y = torch.as_tensor(R[idx], device=dev) + hp.gamma * (1 - torch.as_tensor(D[idx], device=dev)) * nq
            pred = q(o).gather(1, torch.as_tensor(A[idx], device=dev)[:, None]).squeeze(1)
            # squared error: the responder needs the mean return of each action; a Huber loss (DQN's usual choice)
            # is flat between the outcomes of a two-point return (e.g. +-2 in Kuhn) and leaves values biased
            loss = nn.functional.mse_loss(pred, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if t % hp.target_every == 0:
                tgt.load_state_dict(q.state_dict())
        if done and checkpoint is not None and t + 1 - last_save >= ckpt_every and t + 1 < hp.steps:
            # after step t's update, with the env's stream as it was before the new episode: a resumed run replays
            # that reset and goes on exactly
            _save_learner(checkpoint, sig, q, tgt, opt, (O, O2, A, R, D, L2), size, ptr, t + 1, rng,
                          env_before_reset)
            last_save = t + 1
    return q


def _save_learner(path, sig, q, tgt, opt, replay, size, ptr, t, rng, env_rng_state):
    tmp = Path(str(path) + ".tmp")
    torch.save({"signature": sig, "q": q.state_dict(), "tgt": tgt.state_dict(), "opt": opt.state_dict(),
                "replay": [a[:size].copy() for a in replay], "size": size, "ptr": ptr, "t": t,
                "rng": rng.bit_generator.state, "env_rng": env_rng_state,
                "torch_rng": torch.get_rng_state()}, tmp)
    tmp.replace(path)


def evaluate_best_response(env: BestResponseEnv, q: nn.Module, episodes: int, device="cpu") -> tuple[float, float]:
    """Mean return of the greedy best responder and its 95% normal half-width."""
    dev = torch.device(device)
    rets = []
    for _ in range(episodes):
        obs, legal = env.reset()
        done = False
        while not done:
            with torch.no_grad():
                qa = q(torch.as_tensor(obs, device=dev)).cpu().numpy()
            obs, legal, r, done = env.step(int(np.flatnonzero(legal)[np.argmax(qa[legal])]))
        rets.append(r)
    r = np.asarray(rets)
    return float(r.mean()), float(1.96 * r.std(ddof=1) / np.sqrt(len(r)))


def approximate_exploitability(game, agent, hp: DQNConfig, seed: int = 0, device="cpu",
                               progress: bool = False, checkpoint_dir=None, ckpt_every: int = 10000) -> dict:
    """Best-response values of a DQN responder in each seat against ``agent`` and their mean (a lower bound of the
    exact exploitability, NashConv / 2, of a two-player zero-sum game). With ``checkpoint_dir`` each seat's learner
    checkpoints (``br_p<seat>.pt``) and a finished seat's value is kept (``br_p<seat>.json``): a killed job
    resumes where it stopped."""
    import json

    out = {}
    streams = np.random.SeedSequence(seed).spawn(2 * game.num_players())  # env and learner streams per seat
    for seat in range(game.num_players()):
        done = Path(checkpoint_dir) / f"br_p{seat}.json" if checkpoint_dir else None
        if done is not None and done.exists():
            out.update(json.loads(done.read_text()))
            continue
        env = BestResponseEnv(game, agent, seat, streams[2 * seat])
        ck = Path(checkpoint_dir) / f"br_p{seat}.pt" if checkpoint_dir else None
        q = train_best_response(env, hp, int(streams[2 * seat + 1].generate_state(1)[0]), device, progress, ck,
                                ckpt_every)
        out[f"br/value_p{seat}"], out[f"br/ci95_p{seat}"] = evaluate_best_response(env, q, hp.eval_episodes, device)
        if done is not None:
            done.write_text(json.dumps({k: out[k] for k in (f"br/value_p{seat}", f"br/ci95_p{seat}")}))
    out["approx/exploitability"] = float(np.mean([out[f"br/value_p{s}"] for s in range(game.num_players())]))
    return out
