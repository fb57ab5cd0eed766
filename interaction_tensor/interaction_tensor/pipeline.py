"""The only module that reads a config. Studies:

- ``framework`` (mini A): closed forms of the dominant/rare feature model vs its Monte-Carlo simulation over the
  Fig. 4 sweeps (each sweep varies one parameter; the coupled sweeps vary (t_r, t_d) or (n_r, n_d) together);
  writes the sweeps as JSON and a plot of agreement vs accuracy (the GDE line).
- ``ensemble`` (mini B and C): train M small MLPs (each on its own random subset of the training set, or seeds
  only), then test error vs pairwise disagreement, CACE and the GDE bound; with ``data.name=digits`` also the
  interaction tensor of their penultimate activations and its statistics (feature frequency, frequency vs number
  of models, dominant/rare split, confidence vs number of features, shared features vs shared errors), plotted.
  ``data.name=synthetic``: the feature model's data (rare points reported apart).
- ``member`` (paper scale, a Slurm array over seeds): one ResNet18 on CIFAR-10; saves its activations, logits and
  predictions on the evaluation points as ``member_<seed>.pt`` under ``member.out_dir``.
- ``analyze`` (paper scale): GDE, CACE, Omega and its statistics (on the test points) from a folder of members;
  optionally writes the GDE-breaking distribution (our construction: within train and within test, the points
  with the fewest dominant features (a quantile) plus a fraction of the others) for a second ensemble
  (``member.subset``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from shared.device import get_device, seed_everything
from shared.logging import read_run, resolve_run_dir, start_run

STUDIES = ("framework", "ensemble", "member", "analyze")
PARAMS = ("p_d", "t_d", "n_d", "k_d", "t_r", "n_r", "k_r")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def run_framework(cfg, rec, run_dir) -> dict:
    from interaction_tensor.framework import framework_accuracy, framework_agreement, replicate_spread

    f = cfg.framework
    if f.mc_replicates < 2:
        raise ValueError("framework.mc_replicates must be >= 2 (their spread is the Monte-Carlo's uncertainty)")
    base = {k: f.base[k] for k in PARAMS}
    seeds = [cfg.seed * 1000 + r for r in range(f.mc_replicates)]
    sweeps, worst_acc, worst_agr, worst_sd = {}, 0.0, 0.0, 0.0
    for name, sweep in f.sweeps.items():
        rows = []
        for values in zip(*[sweep[k] for k in sweep]):
            p = base | dict(zip(sweep.keys(), values))
            acc = float(framework_accuracy(**p, classes=f.classes))
            agr = float(framework_agreement(**p, classes=f.classes))
            sim = replicate_spread(p, f.classes, f.mc_models, f.mc_points, seeds)
            rows.append(p | {"acc": acc, "agr": agr, "mc_acc": sim["acc"], "mc_agr": sim["agr"],
                             "mc_acc_sd": sim["acc_sd"], "mc_agr_sd": sim["agr_sd"], "gap": (1 - agr) - (1 - acc)})
            worst_acc = max(worst_acc, abs(sim["acc"] - acc))
            worst_agr = max(worst_agr, abs(sim["agr"] - agr))
            worst_sd = max(worst_sd, sim["acc_sd"], sim["agr_sd"])
        sweeps[name] = rows
    (Path(run_dir) / "sweeps.json").write_text(json.dumps(sweeps, indent=1))
    plt = _plt()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(3.2 * len(sweeps), 3.2), squeeze=False)
    for ax, (name, rows) in zip(axes[0], sweeps.items()):
        ax.plot([0.5, 1], [0.5, 1], "k:", lw=1, label="GDE: agreement = accuracy")
        ax.plot([r["acc"] for r in rows], [r["agr"] for r in rows], "o-", ms=3, label="closed form")
        ax.plot([r["mc_acc"] for r in rows], [r["mc_agr"] for r in rows], "x", ms=5, label="Monte-Carlo")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("test accuracy", fontsize=8)
        ax.set_ylabel("agreement", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(Path(run_dir) / "framework.png", dpi=120)
    plt.close(fig)
    gaps = [r["gap"] for rows in sweeps.values() for r in rows]
    return {"framework/max_abs_diff_acc": worst_acc, "framework/max_abs_diff_agr": worst_agr,
            "framework/max_mc_seed_sd": worst_sd, "framework/min_gap": float(min(gaps)),
            "framework/max_gap": float(max(gaps)), "framework/points": len(gaps)}


def _data(cfg):
    d = cfg.data
    if d.name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        dg = load_digits()
        xtr, xte, ytr, yte = train_test_split(dg.data / 16.0, dg.target, test_size=d.test_frac,
                                              stratify=dg.target, random_state=d.split_seed)
        t = torch.tensor
        return (t(xtr, dtype=torch.float32), t(ytr), t(xte, dtype=torch.float32), t(yte), None, 10)
    if d.name == "synthetic":
        from interaction_tensor.synthetic import feature_model_data

        s = d.synthetic
        kw = dict(p_d=s.p_d, t_d=s.t_d, n_d=s.n_d, t_r=s.t_r, n_r=s.n_r, classes=s.classes, dim=s.dim,
                  noise=s.noise, directions_seed=d.split_seed)
        xtr, ytr, _ = feature_model_data(s.n_train, seed=10_000 + d.split_seed, **kw)
        xte, yte, dom = feature_model_data(s.n_test, seed=20_000 + d.split_seed, **kw)
        return xtr, ytr, xte, yte, dom, s.classes
    raise ValueError(f"data.name={d.name!r}: digits | synthetic")


def _tail_and_corr(freq, n_models):
    """(share of all feature-point incidences held by the 10% most frequent features, corr(frequency, models))."""
    order = torch.argsort(freq, descending=True)
    top = max(1, int(round(0.1 * len(freq))))
    share = float(freq[order][:top].sum() / freq.sum().clamp_min(1e-12))
    corr = float(torch.corrcoef(torch.stack([freq, n_models]))[0, 1]) if len(freq) > 2 else float("nan")
    return share, corr


def noise_baseline(shape, o, seed: int) -> dict:
    """The same statistics on Gaussian-noise activations of the same shape and the same Omega settings: what the
    pipeline gives when the models share no features."""
    from interaction_tensor import interaction_tensor

    g = torch.Generator().manual_seed(seed)
    it = interaction_tensor(torch.randn(*shape, generator=g), o.k, o.gamma_corr, o.corr_kind, o.exclude_self,
                            o.gamma_data, o.data_kind, o.sign_mode)
    n_models = it.learned.sum(0).double()
    freq = it.omega.sum(1).double().sum(0) / n_models.clamp_min(1)
    top10, corr = _tail_and_corr(freq, n_models)
    return {"omega/noise_features": int(it.n_features), "omega/noise_top10pct_share": top10,
            "omega/noise_corr_freq_models": corr}


def _margins(stats: dict) -> dict:
    """How far the real ensemble's statistics sit above the noise baseline's."""
    return {f"omega/{k}_over_noise": stats[f"omega/{k}"] - stats[f"omega/noise_{k}"]
            for k in ("top10pct_share", "corr_freq_models")}


def omega_statistics(it, pred, probs, y) -> dict:
    """The paper's observations (Sec. 4) as numbers: feature frequency (long tail), frequency vs number of models
    that learned the feature, the dominant/rare split, confidence vs number of features, shared features vs shared
    errors."""
    omega = it.omega  # [M, N, T]
    n_models = it.learned.sum(0).double()
    # a feature's frequency: points that show it, averaged over the models that learned it (counting points under
    # *any* model would grow with the number of models by construction)
    freq = omega.sum(1).double().sum(0) / n_models.clamp_min(1)
    top10, corr = _tail_and_corr(freq, n_models)
    dominant = n_models > it.learned.shape[0] / 2
    n_feat = omega.sum(2).double().mean(0)  # features per point, averaged over models
    conf = probs.max(-1).values.mean(0).double()  # ensemble-average confidence per point
    lo = n_feat <= n_feat.quantile(0.25)
    M = omega.shape[0]
    err = pred != y[None]
    jac, both = [], []
    for a in range(M):
        for b in range(a + 1, M):
            la, lb = it.learned[a], it.learned[b]
            jac.append(float((la & lb).sum() / (la | lb).sum().clamp_min(1)))
            both.append(float((err[a] & err[b]).sum() / (err[a] | err[b]).sum().clamp_min(1)))
    return {"omega/features": int(omega.shape[2]), "omega/top10pct_share": top10,
            "omega/freq_max": int(freq.max()), "omega/freq_median": float(freq.median()),
            "omega/corr_freq_models": corr, "omega/dominant_features": int(dominant.sum()),
            "omega/dominant_freq_mean": float(freq[dominant].mean()) if dominant.any() else float("nan"),
            "omega/rare_freq_mean": float(freq[~dominant].mean()) if (~dominant).any() else float("nan"),
            "omega/conf_few_features": float(conf[lo].mean()), "omega/conf_other": float(conf[~lo].mean()),
            "omega/err_few_features": float(err[:, lo].double().mean()),
            "omega/err_other": float(err[:, ~lo].double().mean()),
            "omega/corr_shared_features_errors": float(np.corrcoef(jac, both)[0, 1]) if len(jac) > 2 else float("nan"),
            "_freq": freq.tolist(), "_n_models": n_models.tolist(), "_n_feat": n_feat.tolist(),
            "_conf": conf.tolist(), "_jac": jac, "_both": both, "_models": M}


def _plot_omega(stats, path):
    plt = _plt()
    fig, ax = plt.subplots(1, 4, figsize=(13, 3))
    f = sorted(stats["_freq"], reverse=True)
    ax[0].bar(range(len(f)), f, width=1.0)
    ax[0].set(title="feature frequency (long tail)", xlabel="feature (sorted)", ylabel="points with it")
    nm, fr = stats["_n_models"], stats["_freq"]
    dom = [m > stats["_models"] / 2 for m in nm]  # learned by more than half of the models (as the statistics)
    ax[1].scatter([m for m, d in zip(nm, dom) if not d], [f for f, d in zip(fr, dom) if not d], s=6, label="rare")
    ax[1].scatter([m for m, d in zip(nm, dom) if d], [f for f, d in zip(fr, dom) if d], s=6, label="dominant")
    ax[1].set(title="frequency vs models learning it", xlabel="models", ylabel="points")
    ax[1].legend(fontsize=7)
    ax[2].scatter(stats["_n_feat"], stats["_conf"], s=4, alpha=0.5)
    ax[2].set(title="confidence vs features per point", xlabel="features (mean over models)", ylabel="confidence")
    ax[3].scatter(stats["_jac"], stats["_both"], s=8)
    ax[3].set(title="shared features vs shared errors", xlabel="Jaccard of learned features",
              ylabel="Jaccard of errors")
    for a in ax:
        a.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_ensemble(cfg, rec, run_dir) -> dict:
    from interaction_tensor import cace, disagreement, interaction_tensor, test_error
    from interaction_tensor.ensemble import evaluate, train_ensemble
    from interaction_tensor.gde import iid_gap

    xtr, ytr, xte, yte, dom, K = _data(cfg)
    e = cfg.ensemble
    trained = train_ensemble(xtr, ytr, e.n_models, tuple(e.hidden), e.epochs, e.lr, e.batch, cfg.seed,
                             e.subsample, K, cfg.progress)
    ev = evaluate(trained["layers"], xte)
    pred, y = ev["pred"].numpy(), yte.numpy()
    err, dis = test_error(pred, y), disagreement(pred)
    c, gap = cace(pred, y, K), iid_gap(pred, y, K)
    out = {"gde/test_error": err, "gde/disagreement": dis, "gde/dis_over_err": dis / err if err > 0 else float("nan"),
           "gde/cace": c, "gde/iid_gap": gap, "gde/cace_slack": c - abs(gap), "data/train": int(len(ytr)),
           "data/test": int(len(yte)), "data/models": int(e.n_models)}
    if dom is not None and (~dom).any():
        r = (~dom).numpy()
        out |= {"gde/rare_error": test_error(pred[:, r], y[r]), "gde/rare_disagreement": disagreement(pred[:, r]),
                "gde/dominant_error": test_error(pred[:, ~r], y[~r]),
                "gde/dominant_disagreement": disagreement(pred[:, ~r])}
    if cfg.omega.enabled:
        o = cfg.omega
        it = interaction_tensor(ev["acts"], o.k, o.gamma_corr, o.corr_kind, o.exclude_self, o.gamma_data,
                                o.data_kind, o.sign_mode)
        stats = omega_statistics(it, ev["pred"], ev["probs"], yte) | noise_baseline(ev["acts"].shape, o, cfg.seed)
        stats |= _margins(stats)
        _plot_omega(stats, Path(run_dir) / "omega.png")
        torch.save({"omega": it.omega, "assign": it.assign, "acts": ev["acts"], "pred": ev["pred"], "y": yte},
                   Path(run_dir) / "artefacts.pt")
        out |= {k: v for k, v in stats.items() if not k.startswith("_")}
    return out


def _device(cfg) -> torch.device:
    return get_device(cfg.get("device", "auto"))  # auto | cpu | cuda | cuda:N; cuda without a GPU is a named error


def run_member(cfg, rec, run_dir) -> dict:
    from interaction_tensor.members import extract, load_images, train_member

    d, mb = cfg.data, cfg.member
    device = _device(cfg)
    data = load_images(d.name, d.root, d.download, d.get("n_random", 64))
    subset = None
    test_idx = torch.arange(len(data[3]))
    if mb.subset:
        blob = torch.load(mb.subset, weights_only=False)
        subset, test_idx = blob["train_idx"], blob["test_idx"]
    net = train_member(data, cfg.seed, mb.epochs, mb.lr, mb.momentum, mb.weight_decay, mb.batch, mb.schedule,
                       Path(run_dir) / "checkpoint.pt", device, subset, cfg.progress, mb.max_steps)
    x_eval = torch.cat([data[0], data[2]]) if mb.extract_on == "all" else data[2][test_idx]
    y_eval = torch.cat([data[1], data[3]]) if mb.extract_on == "all" else data[3][test_idx]
    out = extract(net, x_eval, device) | {"y": y_eval, "seed": cfg.seed, "extract_on": mb.extract_on,
                                          "n_train": len(data[1]), "test_idx": test_idx}
    out_dir = Path(mb.out_dir or run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"member_{cfg.seed}.pt.tmp"
    torch.save(out, tmp)
    tmp.replace(out_dir / f"member_{cfg.seed}.pt")
    is_test = torch.arange(len(y_eval)) >= (len(data[1]) if mb.extract_on == "all" else 0)
    return {"member/test_error": float((out["pred"][is_test] != y_eval[is_test]).float().mean()),
            "member/points": int(len(y_eval))}


def run_analyze(cfg, rec, run_dir) -> dict:
    from interaction_tensor import cace, disagreement, interaction_tensor, test_error
    from interaction_tensor.gde import iid_gap

    a = cfg.analyze
    files = sorted(Path(a.members_dir).glob("member_*.pt")) if a.members_dir else []
    if len(files) < 2:
        raise FileNotFoundError(f"analyze.members_dir={a.members_dir} holds {len(files)} member_*.pt files (need "
                                ">= 2): train them first (study=member, a Slurm array over seeds)")
    ms = [torch.load(f, weights_only=False) for f in files]
    ref = ms[0]
    for f, m in zip(files, ms):
        if len(m["y"]) != len(ref["y"]) or m["extract_on"] != ref["extract_on"] or \
                not torch.equal(m["test_idx"], ref["test_idx"]):
            raise ValueError(f"{f} was evaluated on other points than {files[0]}: extract every member the same way")
    y = ref["y"]
    n_train = ref["n_train"] if ref["extract_on"] == "all" else 0
    test = torch.arange(len(y)) >= n_train
    pred = torch.stack([m["pred"] for m in ms])
    n_classes = int(y.max()) + 1
    p, yt = pred[:, test].numpy(), y[test].numpy()
    err, dis = test_error(p, yt), disagreement(p)
    c, gap = cace(p, yt, n_classes), iid_gap(p, yt, n_classes)
    out = {"gde/test_error": err, "gde/disagreement": dis, "gde/dis_over_err": dis / err if err > 0 else float("nan"),
           "gde/cace": c, "gde/iid_gap": gap, "gde/cace_slack": c - abs(gap), "data/models": len(ms),
           "data/test": int(test.sum())}
    o = cfg.omega
    # Omega and its statistics on the evaluation (test) points only, as the paper
    acts = torch.stack([m["acts"][test] for m in ms])
    it = interaction_tensor(acts, o.k, o.gamma_corr, o.corr_kind, o.exclude_self, o.gamma_data, o.data_kind,
                            o.sign_mode)
    probs = torch.stack([m["logits"][test].softmax(-1) for m in ms])
    stats = omega_statistics(it, pred[:, test], probs, y[test]) | noise_baseline(acts.shape, o, cfg.seed)
    stats |= _margins(stats)
    _plot_omega(stats, Path(run_dir) / "omega.png")
    out |= {k: v for k, v in stats.items() if not k.startswith("_")}
    if a.write_subset:
        if n_train == 0:
            raise ValueError("analyze.write_subset needs members extracted on train + test (member.extract_on=all)")
        # our construction: a point's score is the number of dominant features it shows, averaged over the models;
        # Omega is built on train + test for this, and the rarest-scoring quantile is taken *within* each split
        # (the models saw the training points, so the two splits are ranked separately)
        full = interaction_tensor(torch.stack([m["acts"] for m in ms]), o.k, o.gamma_corr, o.corr_kind,
                                  o.exclude_self, o.gamma_data, o.data_kind, o.sign_mode)
        n_learn = full.learned.sum(0).double()
        freq = full.omega.sum(1).double().sum(0) / n_learn.clamp_min(1)
        dominant = freq >= freq.median()
        score = full.omega[:, :, dominant].sum(-1).double().mean(0)  # [points]
        g = torch.Generator().manual_seed(cfg.seed)
        keep = torch.zeros(len(y), dtype=torch.bool)
        for part in (~test, test):
            idx = torch.nonzero(part).squeeze(1)
            rare = score[idx] <= score[idx].quantile(a.rare_quantile)
            keep[idx] = rare | (torch.rand(len(idx), generator=g) < a.keep_dominant)
        idx = torch.nonzero(keep).squeeze(1)
        blob = {"train_idx": idx[idx < n_train], "test_idx": idx[idx >= n_train] - n_train,
                "keep_dominant": a.keep_dominant, "rare_quantile": a.rare_quantile}
        Path(a.write_subset).parent.mkdir(parents=True, exist_ok=True)
        torch.save(blob, a.write_subset)
        out |= {"gde_break/train_points": int(len(blob["train_idx"])),
                "gde_break/test_points": int(len(blob["test_idx"]))}
    return out


def run(cfg: DictConfig) -> float:
    """One run; returns ``cfg.optimized_metric``."""
    if cfg.study not in STUDIES:
        raise ValueError(f"study={cfg.study!r}: one of {STUDIES}")
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    run_dir = resolve_run_dir(cfg)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        t0 = time.perf_counter()
        runner = {"framework": run_framework, "ensemble": run_ensemble, "member": run_member,
                  "analyze": run_analyze}[cfg.study]
        summary = runner(cfg, rec, run_dir)
        summary["time/seconds"] = time.perf_counter() - t0
        rec.finish(summary)
    return float(summary.get(cfg.optimized_metric, float("nan")))


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py)."""
    rec = read_run(cfg.run_dir)
    return {"study": rec["config"]["study"], **rec["metrics"]}
