"""Roll-call votes -> time windows -> voting communities -> matched identities -> observed flows.

The recipe of spec section 4 [reconstructed; the paper's own preprocessing is not known to us]:
  1. split roll calls into windows (calendar months; windows with too few votes join the previous one),
  2. find communities per window: k-means or spectral clustering of the deputies' vote vectors, Louvain on
     the co-voting graph, or the official factions/groups,
  3. match communities across consecutive windows (Hungarian on membership overlap) so that identity
     persists; unmatched communities are born with a new id,
  4. the observed flow F_t counts deputies moving i -> j between windows t and t+1 (present in both).
Pair features known when predicting t -> t+1 (memberships at t+1 are NOT used): same identity, vote
similarity of the two communities' centroids in window t, the previous transition probability, log sizes.

Vote codes (``rada9.npz``): 1 yes, -1 no, 0 abstain, 2 did not vote, 3 absent, 4 other, -9 not listed.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from sinkhorn_flow.data import Transitions, flows_from_memberships, make_transitions, row_normalise

COMMUNITY_METHODS = ("kmeans", "spectral", "louvain", "factions")
NOT_LISTED, ABSENT, OTHER = -9, 3, 4
RADA_HELP = (
    "The Rada 9th-convocation roll calls ship beside a papers-repro checkout, in <checkout>/../shared/data/rada9.npz "
    "(arrays V, F, ts, mps, facs; see that folder's README). Point data.path at it, or at the parliament's "
    "own export plenary_vote_results-skl<N>.tsv from https://data.rada.gov.ua/ogd/zal/ppz/skl<N>/ (any "
    "convocation), or at a long CSV (vote_id, timestamp, deputy, faction, vote)."
)


def load_rollcalls(path: str | Path) -> dict[str, np.ndarray]:
    """Load roll calls as arrays (V, F, ts, mps, facs) from an npz, the Rada's open-data export (.tsv, see
    ``load_rada_opendata``) or a long CSV (``load_rollcall_csv``); a missing file says where to get it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"roll-call data not found at {path.resolve()}. {RADA_HELP}")
    if path.suffix == ".tsv":
        return load_rada_opendata(path)
    if path.suffix == ".csv":
        return load_rollcall_csv(path)
    with np.load(path, allow_pickle=False) as z:
        missing = {"V", "ts"} - set(z.files)
        if missing:
            raise ValueError(f"{path} lacks array(s) {sorted(missing)}; expected V (votes x deputies), ts, "
                             "and optionally F, mps, facs")
        return {k: z[k] for k in z.files}


def load_rollcall_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Long-format roll calls (one row per deputy and vote) -> the npz arrays.

    Columns: ``vote_id, timestamp`` (POSIX seconds or ISO date-time), ``deputy``, ``faction``, ``vote`` with
    vote one of yes/no/abstain/did_not_vote/absent (or the Rada's За/Проти/Утримався/Не голосував/Відсутній).
    Convert the parliament's open-data export (data.rada.gov.ua) to this shape; its exact layout changes
    between releases, so we do not parse it directly.
    """
    import csv

    codes = {"yes": 1, "за": 1, "no": -1, "проти": -1, "abstain": 0, "утримався": 0, "утрималась": 0,
             "did_not_vote": 2, "не голосував": 2, "не голосувала": 2, "absent": ABSENT, "відсутній": ABSENT,
             "відсутня": ABSENT}
    rows = list(csv.DictReader(open(path, newline="", encoding="utf-8")))
    need = {"vote_id", "timestamp", "deputy", "faction", "vote"}
    if not rows or need - set(rows[0]):
        raise ValueError(f"{path}: need columns {sorted(need)}, found {sorted(rows[0]) if rows else 'no rows'}")
    vote_ids = sorted({r["vote_id"] for r in rows}, key=lambda v: (len(v), v))
    mps = np.array(sorted({r["deputy"] for r in rows}))
    facs = np.array(sorted({r["faction"] for r in rows}))
    vi = {v: i for i, v in enumerate(vote_ids)}
    mi = {m: i for i, m in enumerate(mps)}
    fi = {f: i for i, f in enumerate(facs)}
    V = np.full((len(vote_ids), len(mps)), NOT_LISTED, np.int8)
    F = np.full(V.shape, -1, np.int8)
    ts = np.zeros(len(vote_ids))
    for r in rows:
        t, j = vi[r["vote_id"]], mi[r["deputy"]]
        V[t, j] = codes.get(r["vote"].strip().lower(), OTHER)
        F[t, j] = fi[r["faction"]]
        stamp = r["timestamp"]
        ts[t] = float(stamp) if stamp.replace(".", "", 1).isdigit() else dt.datetime.fromisoformat(stamp).timestamp()
    order = np.argsort(ts, kind="stable")
    return {"V": V[order], "F": F[order], "ts": ts[order], "mps": mps, "facs": facs}


# The Rada's open-data roll-call export (data.rada.gov.ua, "plenary_vote_results-skl<N>.tsv" under
# ogd/zal/ppz/skl<N>/): one row per roll call with date_agenda, id_event, ... and a "results" column
# "deputy_id:faction_id:vote_code|..." with 1 = yes (За), 2 = no, 3 = abstain, 4 = did not vote, 0 = absent.
RADA_TSV_CODES = {"1": 1, "2": -1, "3": 0, "4": 2, "0": ABSENT}


def _parse_day(s: str) -> float:
    s = s.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(s[:19], fmt).replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognised date {s!r} in the roll-call export")


def load_rada_opendata(path: str | Path) -> dict[str, np.ndarray]:
    """The Verkhovna Rada's own open-data roll-call export (``plenary_vote_results-skl9.tsv`` of
    data.rada.gov.ua/ogd/zal/ppz/skl9/; download it yourself) -> the npz arrays (V, F, ts, mps, facs).

    Columns are read by header name (``date_agenda``, ``id_event``, ``results``); ``mps`` and ``facs`` hold the
    portal's deputy and faction ids (names are in its plenary_deputies-skl9.json). Roll calls are ordered by
    (date, id_event); ``ts`` is the date at 00:00 UTC plus one second per earlier roll call of that day.
    """
    import csv

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: download plenary_vote_results-skl<N>.tsv from "
                                "https://data.rada.gov.ua/ogd/zal/ppz/skl<N>/ and pass its path")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    need = {"date_agenda", "id_event", "results"}
    if not rows or need - set(rows[0]):
        raise ValueError(f"{path}: expected the Rada export's columns {sorted(need)}, found "
                         f"{sorted(rows[0]) if rows else 'no rows'}")
    rows = [r for r in rows if r["results"] and r["results"].strip()]
    events = []
    for r in rows:
        triples = [e.split(":") for e in r["results"].strip().split("|") if e.count(":") == 2]
        events.append((_parse_day(r["date_agenda"]), int(r["id_event"]), triples))
    events.sort(key=lambda e: (e[0], e[1]))
    mps = np.array(sorted({d for _, _, tr in events for d, _, _ in tr}, key=lambda x: (len(x), x)))
    facs = np.array(sorted({f for _, _, tr in events for _, f, _ in tr}, key=lambda x: (len(x), x)))
    mi, fi = {m: i for i, m in enumerate(mps)}, {f: i for i, f in enumerate(facs)}
    V = np.full((len(events), len(mps)), NOT_LISTED, np.int8)
    F = np.full(V.shape, -1, np.int8)
    for t, (_, _, triples) in enumerate(events):
        if not triples:
            continue
        d, f, c = zip(*triples)
        cols = np.fromiter((mi[x] for x in d), dtype=np.int64)
        V[t, cols] = [RADA_TSV_CODES.get(x, OTHER) for x in c]
        F[t, cols] = [fi[x] for x in f]
    days = np.array([e[0] for e in events])
    first = np.searchsorted(days, days, side="left")  # events are sorted: index of the day's first event
    ts = days + (np.arange(len(days)) - first)  # the day, plus one second per earlier roll call that day
    return {"V": V, "F": F, "ts": ts, "mps": mps, "facs": facs}


def monthly_windows(ts: np.ndarray, min_votes: int = 50) -> np.ndarray:
    """Window index per roll call: calendar months (UTC), a month with fewer than ``min_votes`` roll calls
    merged into the previous window (the first one into the next)."""
    months = np.array([dt.datetime.fromtimestamp(t, dt.UTC).year * 12 + dt.datetime.fromtimestamp(t, dt.UTC).month
                       for t in ts])
    uniq, win = np.unique(months, return_inverse=True)
    counts = np.bincount(win)
    target = np.arange(len(uniq))
    for w in range(len(uniq)):  # a handful of months
        if counts[w] < min_votes:
            target[w] = target[w - 1] if w > 0 else (w + 1 if len(uniq) > 1 else w)
    target = np.unique(target, return_inverse=True)[1]
    return target[win]


def vote_vectors(V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(deputies x roll calls) vectors: +1 yes, -1 no/abstain/did not vote, 0 absent/other/not listed;
    and the per-deputy share of roll calls with a recorded choice (participation)."""
    x = np.zeros(V.shape, dtype=np.float64)
    x[V == 1] = 1.0
    x[(V == -1) | (V == 0) | (V == 2)] = -1.0
    return x.T, (x != 0).mean(0)


def communities_in_window(V: np.ndarray, F: np.ndarray | None, method: str, k: int, seed: int,
                          min_participation: float = 0.2) -> np.ndarray:
    """Community label per deputy in one window (-1: not present), from roll calls ``V`` (votes x deputies)."""
    if method not in COMMUNITY_METHODS:
        raise ValueError(f"communities={method!r}; use one of {COMMUNITY_METHODS}")
    x, part = vote_vectors(V)
    present = part >= min_participation
    labels = np.full(V.shape[1], -1, dtype=np.int64)
    if method == "factions":
        if F is None:
            raise ValueError("communities=factions needs the faction array F in the data")
        f = np.where(F < 0, F.max() + 1, F)  # most common listed faction in the window
        counts = np.apply_along_axis(np.bincount, 0, f, minlength=F.max() + 2)[:-1]
        labels[present] = counts.argmax(0)[present]
        return labels
    xp = x[present]
    if method == "kmeans":
        from sklearn.cluster import KMeans

        labels[present] = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(xp)
    elif method == "spectral":
        from sklearn.cluster import SpectralClustering

        agree = np.clip(_cosine(xp, xp), 0, None)
        labels[present] = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed).fit_predict(agree)
    else:
        import networkx as nx

        agree = np.clip(_cosine(xp, xp), 0, None)
        np.fill_diagonal(agree, 0)
        g = nx.from_numpy_array(agree)
        comms = nx.community.louvain_communities(g, weight="weight", seed=seed)
        lab = np.empty(len(xp), dtype=np.int64)
        for c, members in enumerate(sorted(comms, key=len, reverse=True)):
            lab[list(members)] = c
        labels[present] = lab
    return labels


def _cosine(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    nx_ = np.linalg.norm(x, axis=1, keepdims=True)
    ny_ = np.linalg.norm(y, axis=1, keepdims=True)
    return (x / np.maximum(nx_, 1e-12)) @ (y / np.maximum(ny_, 1e-12)).T


def match_communities(labels: np.ndarray) -> np.ndarray:
    """Relabel windows (W, N) so that identities persist: Hungarian matching of window w+1's communities to
    window w's on membership overlap; an unmatched (or overlap-free) community gets a new id."""
    out = np.full_like(labels, -1)
    out[0] = labels[0]
    next_id = labels[0].max() + 1
    for w in range(1, labels.shape[0]):
        prev, cur = out[w - 1], labels[w]
        ids_prev, ids_cur = np.unique(prev[prev >= 0]), np.unique(cur[cur >= 0])
        both = (prev >= 0) & (cur >= 0)
        overlap = np.zeros((len(ids_cur), len(ids_prev)))
        np.add.at(overlap, (np.searchsorted(ids_cur, cur[both]), np.searchsorted(ids_prev, prev[both])), 1)
        r, c = linear_sum_assignment(-overlap)
        mapping = {}
        for i, j in zip(r, c):
            if overlap[i, j] > 0:
                mapping[ids_cur[i]] = ids_prev[j]
        for i in ids_cur:
            if i not in mapping:
                mapping[i] = next_id
                next_id += 1
        lut = np.full(cur.max() + 2, -1)
        for src, dst in mapping.items():
            lut[src] = dst
        out[w] = np.where(cur >= 0, lut[cur], -1)
    return out


def flows_from_rollcalls(data: dict, communities: str = "kmeans", k: int = 6, seed: int = 0,
                         min_votes: int = 50, min_participation: float = 0.2,
                         history: int = 1) -> tuple[Transitions, dict]:
    """The whole recipe on a roll-call dict (``load_rollcalls``). Returns (transitions, info) with info
    holding the window of each roll call, the matched memberships (W, N) and the flows (W-1, K, K)."""
    V, ts = data["V"], data["ts"]
    F = data.get("F")
    win = monthly_windows(ts, min_votes)
    n_win = win.max() + 1
    if n_win < 3:
        raise ValueError(f"only {n_win} windows: need at least 3 for a train/test split of transitions")
    raw = np.stack([communities_in_window(V[win == w], None if F is None else F[win == w], communities, k,
                                          seed + w, min_participation) for w in range(n_win)])
    member = match_communities(raw)
    n_comm = int(member.max()) + 1
    flows = flows_from_memberships(member, n_comm)
    # Pair features use only window t (and earlier): memberships at t+1 are what we predict.
    x = [vote_vectors(V[win == w])[0] for w in range(n_win)]
    sim = np.zeros((n_win - 1, n_comm, n_comm))
    for w in range(n_win - 1):  # one small matrix product per window
        onehot = np.zeros((len(member[w]), n_comm))
        present = member[w] >= 0
        onehot[np.flatnonzero(present), member[w][present]] = 1
        cent = onehot.T @ x[w] / np.maximum(onehot.sum(0)[:, None], 1)
        sim[w] = _cosine(cent, cent)
    prev = np.concatenate([np.zeros((1, n_comm, n_comm)), row_normalise(flows[:-1])])
    a, b = flows.sum(-1), flows.sum(-2)
    same = np.broadcast_to(np.eye(n_comm), sim.shape)
    feats = np.stack([same, sim, np.log(prev + 1e-2),
                      np.broadcast_to(np.log(np.maximum(a, 1e-6))[:, :, None], sim.shape),
                      np.broadcast_to(np.log(np.maximum(b, 1e-6))[:, None, :], sim.shape)], -1)
    names = ["same", "sim", "log_prev", "log_a", "log_b"]
    trans = make_transitions(flows, feats, names, cost=1.0 - sim, history=history)
    return trans, {"window": win, "memberships": member, "flows": flows, "n_windows": n_win}
