"""Trained blueprints for games too large for tables (Phantom Tic-Tac-Toe, 3x3 Abrupt Dark Hex, Hanabi): a
masked-softmax MLP over OpenSpiel's information-state tensor (the observation tensor where a game has none, as in
Hanabi) plus a one-hot of the seat, trained by self-play with our own PPO.

``method="mmd"`` is our reading of MMD's deep form (Sokota et al. 2023; the paper's blueprints are RLlib agents we do
not copy): PPO's clipped surrogate (the proximal term) plus ``alpha`` times the entropy and ``magnet_kl`` times the
reverse KL to a magnet network that is refreshed from the policy every ``magnet_every`` iterations. ``method="ppo"``
drops the magnet term. Returns are Monte-Carlo returns-to-go (gamma 1): the seat's final return minus what it had
when it acted.

``NetPolicy`` is an OpenSpiel policy (``action_probabilities``) with a batched ``batch_probs(states)`` that the
sampled planner's rollouts use: one forward pass per rollout step over every live game.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def _uses_infostate(game) -> bool:
    return bool(game.get_type().provides_information_state_tensor)


def feature_size(game) -> int:
    base = game.information_state_tensor_size() if _uses_infostate(game) else game.observation_tensor_size()
    return base + game.num_players()


def features(states, game) -> np.ndarray:
    """``[n, feature_size]``: each state's tensor for its current player, then the seat one-hot."""
    infostate, n_players = _uses_infostate(game), game.num_players()
    out = np.zeros((len(states), feature_size(game)), dtype=np.float32)
    for i, s in enumerate(states):
        p = s.current_player()
        out[i, :-n_players] = s.information_state_tensor(p) if infostate else s.observation_tensor(p)
        out[i, out.shape[1] - n_players + p] = 1.0
    return out


def legal_mask(states, n_actions: int) -> np.ndarray:
    m = np.zeros((len(states), n_actions), dtype=bool)
    for i, s in enumerate(states):
        m[i, s.legal_actions()] = True
    return m


def sample_rows(probs: np.ndarray, rng) -> np.ndarray:
    """One categorical draw per row of ``probs`` (rows need not be normalised; zero entries are never drawn)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.argmax(cum > u[:, None], axis=1)


class PolicyNet(nn.Module):
    """MLP trunk, a logits head (illegal actions masked) and a value head."""

    def __init__(self, n_in: int, n_actions: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        mods, d = [], n_in
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU()]
            d = hidden
        self.trunk = nn.Sequential(*mods)
        self.logits = nn.Linear(d, n_actions)
        self.value = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor, legal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities, value). Illegal actions get a logit of -1e9 (probability exactly 0 in float32), not
        -inf: 0 * -inf would put NaNs into the entropy's and KL's gradients."""
        h = self.trunk(x)
        logits = self.logits(h).masked_fill(~legal, -1e9)
        return torch.log_softmax(logits, dim=-1), self.value(h).squeeze(-1)


class NetPolicy:
    """A trained blueprint as an OpenSpiel policy (``action_probabilities(state)``), usable by OpenSpiel's own tools
    (``exploitability`` on small games) and by the sampled planner (``batch_probs``)."""

    def __init__(self, game, net: PolicyNet, device="cpu"):
        self.game, self.net, self.device = game, net.to(device).eval(), torch.device(device)
        self.n_actions = game.num_distinct_actions()
        self.player_ids = list(range(game.num_players()))

    @torch.no_grad()
    def batch_probs(self, states) -> np.ndarray:
        """``[n, A]`` action probabilities of each state's current player, one forward pass."""
        x = torch.as_tensor(features(states, self.game), device=self.device)
        legal = torch.as_tensor(legal_mask(states, self.n_actions), device=self.device)
        logp, _ = self.net(x, legal)
        return logp.exp().double().cpu().numpy()

    def action_probabilities(self, state, player_id=None) -> dict:
        p = self.batch_probs([state])[0]
        return {int(a): float(p[a]) for a in state.legal_actions()}

    def save(self, path, hp: BlueprintConfig | None = None, extra: dict | None = None):
        """Weights plus what is needed to rebuild the net and check the game when loading."""
        torch.save({"state_dict": self.net.state_dict(), "game": str(self.game), "arch": self.arch,
                    "hp": asdict(hp) if hp else None, **(extra or {})}, path)

    @property
    def arch(self) -> dict:
        return {"n_in": self.net.trunk[0].in_features, "n_actions": self.net.logits.out_features,
                "hidden": self.net.trunk[0].out_features, "layers": len(self.net.trunk) // 2}

    @classmethod
    def load(cls, path, game, device="cpu") -> NetPolicy:
        """A blueprint saved by :meth:`save` (or a training checkpoint) for ``game``; clear errors otherwise."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no blueprint at {path}: train one with `python train.py study=blueprint "
                                    f"game={game}` and pass blueprint.path=<run_dir>/blueprint.pt")
        ck = torch.load(path, map_location="cpu", weights_only=False)
        if ck["game"] != str(game):
            raise ValueError(f"{path} was trained for {ck['game']}, not {game}: pass the matching game")
        if ck["arch"]["n_in"] != feature_size(game):
            raise ValueError(f"{path} expects {ck['arch']['n_in']} input features but this OpenSpiel gives "
                             f"{feature_size(game)} for {game} (the 2024 tensor change?): retrain the blueprint")
        net = PolicyNet(**ck["arch"])
        net.load_state_dict(ck["state_dict"])
        return cls(game, net, device)


@dataclass
class BlueprintConfig:
    """Self-play training of a deep blueprint (our choices; the paper's RLlib settings are not ours to copy)."""

    method: str = "mmd"          # mmd (magnet KL + entropy) | ppo (entropy only)
    iterations: int = 200        # self-play batches
    games_per_iter: int = 256    # games per batch, played in lockstep
    hidden: int = 256            # MLP width
    layers: int = 2              # hidden layers
    lr: float = 3e-4             # Adam
    epochs: int = 4              # passes over each batch
    minibatch: int = 1024        # transitions per gradient step
    clip: float = 0.2            # PPO ratio clip
    alpha: float = 0.01          # entropy weight (mmd: the regularisation temperature)
    magnet_kl: float = 0.05      # mmd: weight of KL(pi || magnet)
    magnet_every: int = 20       # mmd: iterations between magnet refreshes
    value_coef: float = 0.5      # value-loss weight
    max_grad_norm: float = 1.0   # gradient clipping


def selfplay_batch(game, policy: NetPolicy, n_games: int, rng) -> dict:
    """``n_games`` self-play games in lockstep (one batched forward per step); every decision as arrays."""
    states = [game.new_initial_state() for _ in range(n_games)]
    obs, legal, act, logp, player, before, gid = [], [], [], [], [], [], []
    while True:
        for s in states:
            while s.is_chance_node():
                outs = s.chance_outcomes()
                s.apply_action(outs[int(sample_rows(np.array([[p for _, p in outs]]), rng)[0])][0])
        live = [i for i, s in enumerate(states) if not s.is_terminal()]
        if not live:
            break
        batch = [states[i] for i in live]
        if any(s.is_simultaneous_node() for s in batch):
            raise ValueError(f"{game} has simultaneous moves: the self-play trainer handles turn-based games")
        x, m = features(batch, game), legal_mask(batch, policy.n_actions)
        with torch.no_grad():
            lp, _ = policy.net(torch.as_tensor(x, device=policy.device), torch.as_tensor(m, device=policy.device))
        lp = lp.double().cpu().numpy()
        a = sample_rows(np.exp(lp), rng)
        for j, i in enumerate(live):
            s = states[i]
            p = s.current_player()
            player.append(p)
            before.append(s.returns()[p])
            gid.append(i)
            s.apply_action(int(a[j]))
        obs.append(x)
        legal.append(m)
        act.append(a)
        logp.append(lp[np.arange(len(a)), a])
    final = np.array([s.returns() for s in states])
    gid, player = np.array(gid), np.array(player)
    return {"obs": np.concatenate(obs), "legal": np.concatenate(legal), "action": np.concatenate(act),
            "logp": np.concatenate(logp), "rtg": final[gid, player] - np.array(before), "player": player,
            "returns": final}


def _checkpoint(path, policy, opt, magnet, it, rng, hp, history, seed):
    tmp = Path(str(path) + ".tmp")
    policy.save(tmp, hp, {"optimizer": opt.state_dict(), "magnet": magnet.state_dict(), "iteration": it,
                          "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(), "history": history,
                          "seed": seed})
    tmp.replace(path)


def train_blueprint(game, hp: BlueprintConfig, seed: int = 0, checkpoint=None, device="cpu", progress=False,
                    callback=None) -> tuple[NetPolicy, list]:
    """Self-play training; returns the policy and per-iteration stats. With ``checkpoint`` (a path) the state is
    saved after every iteration and a run finds and resumes it (bitwise on the CPU)."""
    if hp.method not in ("mmd", "ppo"):
        raise ValueError(f"blueprint method={hp.method!r}: mmd or ppo")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = PolicyNet(feature_size(game), game.num_distinct_actions(), hp.hidden, hp.layers)
    policy = NetPolicy(game, net, device)
    magnet = copy.deepcopy(policy.net).requires_grad_(False)
    opt = torch.optim.Adam(policy.net.parameters(), lr=hp.lr)
    start, history = 0, []
    if checkpoint is not None and Path(checkpoint).exists():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if ck["game"] != str(game) or ck["hp"] != asdict(hp) or ck.get("seed") != seed:
            raise ValueError(f"{checkpoint} belongs to another run (game, seed or blueprint settings differ): "
                             "use a fresh run_dir")
        policy.net.load_state_dict(ck["state_dict"])
        magnet.load_state_dict(ck["magnet"])
        opt.load_state_dict(ck["optimizer"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"])
        start, history = ck["iteration"], ck["history"]
    dev = policy.device
    for it in tqdm(range(start, hp.iterations), desc="blueprint", disable=not progress, initial=start,
                   total=hp.iterations):
        policy.net.eval()
        b = selfplay_batch(game, policy, hp.games_per_iter, rng)
        policy.net.train()
        x, m = torch.as_tensor(b["obs"], device=dev), torch.as_tensor(b["legal"], device=dev)
        a, old = torch.as_tensor(b["action"], device=dev), torch.as_tensor(b["logp"], device=dev, dtype=torch.float32)
        ret = torch.as_tensor(b["rtg"], device=dev, dtype=torch.float32)
        n = len(a)
        with torch.no_grad():  # advantages from the value net before this batch's updates, fixed for its epochs
            adv_all = ret - policy.net(x, m)[1]
        for _ in range(hp.epochs):
            for idx in torch.randperm(n, device=dev).split(hp.minibatch):
                logp, v = policy.net(x[idx], m[idx])
                adv = adv_all[idx]
                ratio = (logp.gather(1, a[idx, None]).squeeze(1) - old[idx]).exp()
                surr = torch.min(ratio * adv, ratio.clamp(1 - hp.clip, 1 + hp.clip) * adv).mean()
                p = logp.exp()
                plogp = torch.where(m[idx], p * logp, torch.zeros_like(p))
                entropy = -plogp.sum(1).mean()
                loss = -surr - hp.alpha * entropy + hp.value_coef * (v - ret[idx]).pow(2).mean()
                if hp.method == "mmd":
                    with torch.no_grad():
                        mlogp, _ = magnet(x[idx], m[idx])
                    kl = torch.where(m[idx], p * (logp - mlogp), torch.zeros_like(p)).sum(1).mean()
                    loss = loss + hp.magnet_kl * kl
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(policy.net.parameters(), hp.max_grad_norm)
                opt.step()
        if hp.method == "mmd" and (it + 1) % hp.magnet_every == 0:
            magnet.load_state_dict(policy.net.state_dict())
        history.append({"iteration": it + 1, "mean_return_p0": float(b["returns"][:, 0].mean()),
                        "decisions": int(n), "entropy": float(entropy.detach())})
        if callback is not None:
            callback(policy, history[-1])
        if checkpoint is not None:
            _checkpoint(checkpoint, policy, opt, magnet, it + 1, rng, hp, history, seed)
    policy.net.eval()
    return policy, history
