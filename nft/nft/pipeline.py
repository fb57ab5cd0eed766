"""The only module that reads a config. Studies:

- ``classify``: classify SIRENs by what they draw, from their weights (mlp | statnet | nfn | nfn_hnp | nft); test
  accuracy with the best-validation epoch, on the held-out SIRENs and on the same SIRENs with random hidden-neuron
  permutations (one per SIREN), and how often the two predictions agree.
- ``inr2array``: train Inr2Array (NFT encoder -> latent array -> hypernetwork decoder, function-space
  autoencoding), then a transformer classifier on the frozen latents; reconstruction MSE, test accuracy, and the
  latents' change under hidden-neuron permutations.
- ``fit_zoo``: fit one (copy, shard) of a SIREN zoo (a Slurm array job) and cache it.
- ``predict_gen``: predict CNNs' test accuracy from their weights (toy digits zoo or the Small CNN Zoo), Kendall's
  tau on the held-out networks and on hidden-permuted ones.
- ``editing``: a network outputs a weight edit (x 0.01) that makes a SIREN draw a transformed image (dilate, erode,
  gradient, sharpen, contrast); test MSE to the transformed images.

Every training phase checkpoints after each epoch and resumes a killed run (another run's checkpoint is refused);
the best-validation state is what gets tested."""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from shared.device import get_device, seed_everything
from shared.logging import read_run, resolve_run_dir, start_run

STUDIES = ("classify", "inr2array", "fit_zoo", "predict_gen", "editing")
MODELS = ("mlp", "statnet", "nfn", "nfn_hnp", "nft")


def _device(cfg) -> torch.device:
    return get_device(cfg.get("device", "auto"))  # auto | cpu | cuda | cuda:N; cuda without a GPU is a named error


def build_model(m: DictConfig, widths, n_out: int, n_params: int, filters=None):
    """mlp | statnet | nfn | nfn_hnp | nft, for SIRENs (MLPs) or CNNs (``filters``)."""
    from nft.models import NFN, NFT, MLPBaseline, StatNet

    if m.name == "mlp":
        return MLPBaseline(n_params, n_out, m.hidden, m.layers)
    if m.name == "statnet":
        return StatNet(len(widths) - 1, n_out, m.hidden)
    if m.name in ("nfn", "nfn_hnp"):
        return NFN(widths, n_out, m.channels, m.depth, m.fourier_m, m.fourier_scale, m.head_hidden, m.dropout,
                   mode="np" if m.name == "nfn" else "hnp", filters=filters)
    if m.name == "nft":
        return NFT(widths, n_out, m.channels, m.depth, m.heads, m.ff_factor, m.fourier_m, m.fourier_scale,
                   m.head_hidden, m.dropout, filters=filters)
    raise ValueError(f"model.name={m.name!r}: one of {MODELS} (study=inr2array uses model=inr2array)")


def _index(x, j):
    """Rows ``j`` of a batch: a tensor or WeightSpaceFeatures, or a tuple of them."""
    if isinstance(x, tuple):
        return tuple(_index(t, j) for t in x)
    return x[j] if torch.is_tensor(x) else x.map(lambda t: t[j])


def _size(x) -> int:
    if isinstance(x, tuple):
        return _size(x[0])
    return len(x) if torch.is_tensor(x) else x.batch


def _batches(data, size, gen=None):
    n = _size(data)
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for s in range(0, n, size):
        yield _index(data, idx[s:s + size])


@torch.no_grad()
def _apply(fn, x, batch: int = 512, device="cpu") -> torch.Tensor:
    """fn over ``x`` in batches, on ``device``; results gathered on the CPU."""
    return torch.cat([fn(_to(xb, device)).cpu() for xb in _batches(x, batch)])


def _to(x, device):
    if isinstance(x, tuple):
        return tuple(_to(t, device) for t in x)
    return x.to(device)


def _normaliser(xtr):
    """Per-tensor scalar standardisation from the training networks: keeps exact permutation invariance."""
    stats = [(t.mean(), t.std()) for t in xtr.weights + xtr.biases]
    L = xtr.n_layers

    def norm(x):
        return type(x)(tuple((w - stats[i][0]) / stats[i][1] for i, w in enumerate(x.weights)),
                       tuple((b - stats[L + i][0]) / stats[L + i][1] for i, b in enumerate(x.biases)))

    return norm


def _schedule(o, total_steps: int):
    """Linear warm-up over ``o.warmup_steps`` then ``o.schedule``: constant | cosine (to 0 at the last step)."""
    def f(step):
        if step < o.warmup_steps:
            return (step + 1) / o.warmup_steps
        if o.schedule == "cosine":
            t = (step - o.warmup_steps) / max(1, total_steps - o.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return 1.0
    if o.schedule not in ("constant", "cosine"):
        raise ValueError(f"optim.schedule={o.schedule!r}: constant | cosine")
    return f


def fit_epochs(name: str, model, train, loss_fn, val_fn, o, run_dir, signature: dict, seed: int, rec,
               progress: bool, device, optim_path=("optim",), step_offset: int = 0) -> dict:
    """Train ``model`` for ``o.epochs`` passes over ``train`` (AdamW, warm-up + schedule), scoring ``val_fn(model)``
    (higher is better; NaN counts as worst) after every epoch; checkpoint ``checkpoint_<name>.pt`` each epoch (a
    killed run resumes, random states included; another run's checkpoint is refused); leaves the best-validation
    state in ``model``; returns its scores. ``optim_path``: where ``o`` sits in ``signature`` (a constant schedule
    may be extended by more epochs); ``step_offset``: added to the logged epoch (phases of one run)."""
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    per_epoch = math.ceil(_size(train) / o.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(o, o.epochs * per_epoch))
    gen = torch.Generator().manual_seed(seed)
    ck, start = Path(run_dir) / f"checkpoint_{name}.pt", 0
    sig = json.loads(json.dumps(signature, default=str))
    if o.schedule == "constant" and o.warmup_steps == 0:
        block = sig
        for k in optim_path:
            block = block[k]
        block.pop("epochs", None)  # more epochs extend a run; anything else makes it another run
    best, best_state, best_epoch = -math.inf, None, 0
    if ck.exists():
        blob = torch.load(ck, weights_only=False, map_location="cpu")  # RNG states must stay on the CPU
        if blob.get("signature") != sig:
            raise ValueError(f"{ck} belongs to another run (data, model, optimiser settings or seed differ): use a "
                             "fresh run_dir")
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        sched.load_state_dict(blob["sched"])
        gen.set_state(blob["gen"])
        torch.set_rng_state(blob["torch_rng"])
        if blob.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(blob["cuda_rng"])
        start, best, best_state, best_epoch = blob["epoch"], blob["best"], blob["best_state"], blob["best_epoch"]
    for epoch in tqdm(range(start, o.epochs), desc=name, disable=not progress, initial=start, total=o.epochs):
        model.train()
        for batch in _batches(train, o.batch_size, gen):
            loss = loss_fn(model, _to(batch, device))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{name}: loss is {loss.item()} at epoch {epoch}: lower optim.lr ({o.lr})")
            opt.zero_grad()
            loss.backward()
            if o.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
            opt.step()
            sched.step()
        model.eval()
        score = float(val_fn(model))
        score = -math.inf if math.isnan(score) else score  # a NaN score (e.g. tau of constant predictions) is worst
        rec.log({f"{name}/train_loss": loss.item(), f"{name}/val_score": score}, step=step_offset + epoch + 1)
        if score > best or best_state is None:
            best, best_epoch = score, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        tmp = ck.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "epoch": epoch + 1, "best": best,
                    "best_state": best_state, "best_epoch": best_epoch, "signature": sig}, tmp)
        tmp.replace(ck)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {f"{name}/best_val_score": best, f"{name}/best_epoch": best_epoch}


def _siren_zoo(cfg, progress: bool):
    from nft.data import siren_zoo

    z = cfg.zoo
    return siren_zoo(z.source, list(z.classes) if z.classes else None, z.copies, tuple(z.hidden), z.steps, z.lr,
                     z.w0_first, z.w0_hidden, z.test_frac, z.val_frac, list(z.split) if z.split else None,
                     z.split_seed, z.cache_dir, z.n_shards, z.fit_missing, z.root, z.download, progress)


_NOT_IN_SIGNATURE = {"zoo": ("cache_dir", "root", "download", "fit_missing", "fit_copy", "fit_shard", "n_shards"),
                     "cnn_zoo": ("root",)}


def _signature(cfg, *blocks) -> dict:
    """What makes a checkpoint this run's: the settings of ``blocks`` and the seed, without paths and switches that
    do not change the result (a moved cache or data folder still resumes)."""
    sig = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in blocks} | {"seed": cfg.seed}
    for k, drop in _NOT_IN_SIGNATURE.items():
        for d in drop if k in sig else ():
            sig[k].pop(d, None)
    return sig


def _fingerprint(model) -> str:
    """A hash of a model's parameters (a later phase's checkpoint records which model it was trained on)."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _n_params(x) -> int:
    return sum(t[0].numel() for t in x.weights + x.biases)


def run_classify(cfg, rec, run_dir, device) -> dict:
    from nft.weight_space import random_hidden_permutations

    zoo = _siren_zoo(cfg, cfg.progress)
    (xtr, ytr), (xva, yva), (xte, yte) = zoo["train"], zoo["val"], zoo["test"]
    norm = _normaliser(xtr)
    xtr, xva, xte = norm(xtr), norm(xva), norm(xte)
    model = build_model(cfg.model, zoo["widths"], zoo["n_classes"], _n_params(xtr)).to(device)

    def acc(m, x, y):
        return float((_apply(m, x, device=device).argmax(1) == y).float().mean())

    info = fit_epochs("train", model, (xtr, ytr), lambda m, b: F.cross_entropy(m(b[0]), b[1]),
                      lambda m: acc(m, xva, yva), cfg.optim, run_dir, _signature(cfg, "zoo", "model", "optim"),
                      cfg.seed, rec, cfg.progress, device)
    perms = random_hidden_permutations(zoo["widths"], batch=xte.batch,
                                       generator=torch.Generator().manual_seed(10_000 + cfg.seed))
    logits, logits_p = _apply(model, xte, device=device), _apply(model, xte.permute(perms), device=device)
    pred, pred_p = logits.argmax(1), logits_p.argmax(1)
    return {"test/acc": float((pred == yte).float().mean()),
            "test/acc_permuted": float((pred_p == yte).float().mean()),
            "test/perm_agreement": float((pred == pred_p).float().mean()),
            "test/perm_max_logit_diff": float((logits - logits_p).abs().max()),
            "val/acc": info["train/best_val_score"], "train/best_epoch": info["train/best_epoch"],
            "train/acc": acc(model, xtr, ytr), "data/train_sirens": int(xtr.batch), "data/val_sirens": int(xva.batch),
            "data/test_sirens": int(xte.batch), "data/classes": zoo["n_classes"], "data/fit_mse": zoo["fit_mse"],
            "model/params": int(sum(p.numel() for p in model.parameters()))}


def run_inr2array(cfg, rec, run_dir, device) -> dict:
    from nft.inr2array import Inr2Array, LatentClassifier
    from nft.siren import grid, siren_forward
    from nft.weight_space import random_hidden_permutations

    if cfg.model.name != "inr2array":
        raise ValueError(f"study=inr2array needs model=inr2array (got model.name={cfg.model.name!r})")
    zoo = _siren_zoo(cfg, cfg.progress)
    (rtr, ytr), (rva, yva), (rte, yte) = zoo["train"], zoo["val"], zoo["test"]
    norm = _normaliser(rtr)
    m, z = cfg.model, cfg.zoo
    ae = Inr2Array(zoo["widths"], zoo["image_shape"], m.channels, m.depth, m.heads, m.ff_factor, m.dropout,
                   m.fourier_m, m.fourier_scale, m.n_latents, m.dec_type, m.dec_hidden, m.dec_hidden_layers,
                   z.w0_first, z.w0_hidden).to(device)
    coords = grid(*zoo["image_shape"]).to(device)

    def target(raw):  # the input SIREN's rendering (not the original image)
        return siren_forward(raw, coords, z.w0_first, z.w0_hidden)

    def recon_loss(model, raw):
        return F.mse_loss(model(norm(raw)), target(raw))

    def mse(model, raw):
        return float(_apply(lambda r: ((model(norm(r)) - target(r)) ** 2).mean((1, 2)), raw, 256, device).mean())

    info = fit_epochs("autoencoder", ae, rtr, recon_loss, lambda mod: -mse(mod, rva), cfg.optim, run_dir,
                      _signature(cfg, "zoo", "model", "optim"), cfg.seed, rec, cfg.progress, device)
    perms = random_hidden_permutations(zoo["widths"], batch=rte.batch,
                                       generator=torch.Generator().manual_seed(10_000 + cfg.seed))

    def encode(raw):
        return _apply(lambda r: ae.encode(norm(r)), raw, 256, device)

    ltr, lva, lte, lte_p = encode(rtr), encode(rva), encode(rte), encode(rte.permute(perms))
    c = cfg.latent_classifier
    clf = LatentClassifier(m.channels, m.n_latents, zoo["n_classes"], c.d, c.depth, c.heads, c.ff, c.dropout,
                           c.head_hidden).to(device)

    def acc(mod, lat, y):
        return float((_apply(mod, lat, device=device).argmax(1) == y).float().mean())

    csig = _signature(cfg, "zoo", "model", "optim", "latent_classifier") | {"autoencoder": _fingerprint(ae)}
    cinfo = fit_epochs("classifier", clf, (ltr, ytr), lambda mod, b: F.cross_entropy(mod(b[0]), b[1]),
                       lambda mod: acc(mod, lva, yva), c.optim, run_dir, csig, cfg.seed, rec, cfg.progress, device,
                       optim_path=("latent_classifier", "optim"), step_offset=cfg.optim.epochs)
    logits, logits_p = _apply(clf, lte, device=device), _apply(clf, lte_p, device=device)
    pred, pred_p = logits.argmax(1), logits_p.argmax(1)
    _plot_reconstructions(ae, rte, norm, target, zoo["image_shape"], Path(run_dir) / "reconstructions.png", device)
    return {"test/acc": float((pred == yte).float().mean()),
            "test/acc_permuted": float((pred_p == yte).float().mean()),
            "test/perm_agreement": float((pred == pred_p).float().mean()),
            "test/latent_max_diff": float((lte - lte_p).abs().max()),
            "test/recon_mse": mse(ae, rte), "val/recon_mse": -info["autoencoder/best_val_score"],
            "val/acc": cinfo["classifier/best_val_score"], "train/acc": acc(clf, ltr, ytr),
            "data/train_sirens": int(rtr.batch), "data/test_sirens": int(rte.batch),
            "data/classes": zoo["n_classes"], "data/fit_mse": zoo["fit_mse"],
            "model/params": int(sum(p.numel() for p in ae.parameters())),
            "model/classifier_params": int(sum(p.numel() for p in clf.parameters()))}


def _plot_reconstructions(ae, raw, norm, target, shape, path, device, n: int = 8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        x = _to(_index(raw, torch.arange(min(n, raw.batch))), device)
        a, b = target(x).cpu(), ae(norm(x)).cpu()
    fig, axes = plt.subplots(2, len(a), figsize=(1.2 * len(a), 2.6))
    for j in range(len(a)):
        for r, img in enumerate((a, b)):
            im = img[j].view(*shape, -1).clamp(-1, 1) * 0.5 + 0.5
            axes[r, j].imshow(im.squeeze(-1).numpy(), cmap="gray" if im.shape[-1] == 1 else None, vmin=0, vmax=1)
            axes[r, j].axis("off")
    axes[0, 0].set_title("input SIREN", fontsize=7, loc="left")
    axes[1, 0].set_title("Inr2Array", fontsize=7, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_fit_zoo(cfg, rec, run_dir, device) -> dict:
    from nft.data import fit_zoo_shard

    z = cfg.zoo
    if z.fit_shard is None or z.fit_copy is None:
        raise ValueError("study=fit_zoo fits one (copy, shard): set zoo.fit_copy=<c> zoo.fit_shard=<s> (a Slurm "
                         "array: -m zoo.fit_copy=0,1,... zoo.fit_shard=0,1,...)")
    if not (0 <= z.fit_shard < z.n_shards and 0 <= z.fit_copy < z.copies):
        raise ValueError(f"zoo.fit_shard={z.fit_shard} / zoo.fit_copy={z.fit_copy} outside n_shards={z.n_shards} "
                         f"/ copies={z.copies}")
    path = fit_zoo_shard(z.source, list(z.classes) if z.classes else None, tuple(z.hidden), z.steps, z.lr,
                         z.w0_first, z.w0_hidden, z.fit_copy, z.fit_shard, z.n_shards, z.cache_dir, z.root, z.download,
                         cfg.progress)
    blob = torch.load(path, weights_only=False)
    return {"fit/mse": float(blob["mse"].mean()), "fit/sirens": int(len(blob["mse"])), "fit/path": str(path)}


def _cnn_data(cfg):
    from nft.cnn_zoo import small_cnn_zoo, toy_cnn_zoo

    d = cfg.cnn_zoo
    if d.source == "toy_digits":
        zoo = toy_cnn_zoo(d.n_nets, d.channels, d.max_steps, d.batch, d.seed, cache_dir=cfg.zoo.cache_dir,
                          progress=cfg.progress)
    elif d.source == "small_cnn_zoo":
        if d.root is None:
            raise ValueError("cnn_zoo.source=small_cnn_zoo needs cnn_zoo.root=<the unpacked zoo folder>")
        zoo = small_cnn_zoo(d.root, d.step)
    else:
        raise ValueError(f"cnn_zoo.source={d.source!r}: toy_digits | small_cnn_zoo")
    x, acc = zoo["params"], zoo["acc"]
    n = x.batch
    order = torch.randperm(n, generator=torch.Generator().manual_seed(d.split_seed))
    half = order[: n // 2]  # the paper: test = the second half of a fixed shuffle; train/val 80/20 of the first
    n_tr = int(round(0.8 * len(half)))
    return {s: (_index(x, i), acc[i]) for s, i in (("train", half[:n_tr]), ("val", half[n_tr:]),
                                                   ("test", order[n // 2:]))}, x


def run_predict_gen(cfg, rec, run_dir, device) -> dict:
    from nft.cnn_zoo import kendall_tau
    from nft.weight_space import random_hidden_permutations

    data, full = _cnn_data(cfg)
    (xtr, atr), (xva, ava), (xte, ate) = data["train"], data["val"], data["test"]
    norm = _normaliser(xtr)
    xtr, xva, xte = norm(xtr), norm(xva), norm(xte)
    model = build_model(cfg.model, full.widths, 1, _n_params(full), full.filter_shapes).to(device)

    def predict(m, x):
        return torch.sigmoid(_apply(m, x, device=device)[:, 0])

    info = fit_epochs("train", model, (xtr, atr),
                      lambda m, b: F.binary_cross_entropy_with_logits(m(b[0])[:, 0], b[1]),
                      lambda m: kendall_tau(predict(m, xva), ava), cfg.optim, run_dir,
                      _signature(cfg, "cnn_zoo", "model", "optim"), cfg.seed, rec, cfg.progress, device)
    perms = random_hidden_permutations(full.widths, batch=xte.batch,
                                       generator=torch.Generator().manual_seed(10_000 + cfg.seed))
    p, p_perm = predict(model, xte), predict(model, xte.permute(perms))
    return {"test/tau": kendall_tau(p, ate), "test/tau_permuted": kendall_tau(p_perm, ate),
            "test/perm_max_diff": float((p - p_perm).abs().max()), "val/tau": info["train/best_val_score"],
            "test/rmse": float(((p - ate) ** 2).mean().sqrt()), "data/train_nets": int(xtr.batch),
            "data/test_nets": int(xte.batch), "data/acc_mean": float(torch.cat([a for _, a in data.values()]).mean()),
            "model/params": int(sum(q.numel() for q in model.parameters()))}


def run_editing(cfg, rec, run_dir, device) -> dict:
    from nft.editing import EditNet, transform_images
    from nft.siren import grid, siren_forward
    from nft.weight_space import random_hidden_permutations

    e, z = cfg.editing, cfg.zoo
    zoo = _siren_zoo(cfg, cfg.progress)
    norm = _normaliser(zoo["train"][0])
    coords = grid(*zoo["image_shape"]).to(device)
    data = {s: (zoo[s][0], transform_images(zoo["images"][s], e.op).flatten(1, 2)) for s in ("train", "val", "test")}
    net = EditNet(cfg.model, zoo["widths"], _n_params(zoo["train"][0])).to(device)

    def edited(m, raw):
        delta = m(norm(raw))
        return siren_forward(raw + delta.map(lambda t: e.delta_scale * t), coords, z.w0_first, z.w0_hidden)

    def mse(m, split, perms=None):
        raw, tgt = data[split]
        raw = raw.permute(perms) if perms is not None else raw
        return float(_apply(lambda b: ((edited(m, b[0]) - b[1]) ** 2).mean((1, 2)), (raw, tgt), 256, device).mean())

    info = fit_epochs("train", net, data["train"], lambda m, b: F.mse_loss(edited(m, b[0]), b[1]),
                      lambda m: -mse(m, "val"), cfg.optim, run_dir, _signature(cfg, "zoo", "model", "optim",
                                                                               "editing"),
                      cfg.seed, rec, cfg.progress, device)
    raw, tgt = data["test"]
    perms = random_hidden_permutations(zoo["widths"], batch=raw.batch,
                                       generator=torch.Generator().manual_seed(10_000 + cfg.seed))
    r0 = _apply(lambda b: edited(net, b), raw, 256, device)
    r1 = _apply(lambda b: edited(net, b), raw.permute(perms), 256, device)
    unedited = _apply(lambda b: siren_forward(b, coords, z.w0_first, z.w0_hidden), raw, 256, device)
    return {"test/mse": float(((r0 - tgt) ** 2).mean()), "test/mse_permuted": mse(net, "test", perms),
            "test/mse_unedited": float(((unedited - tgt) ** 2).mean()),
            "test/perm_render_max_diff": float((r0 - r1).abs().max()),
            "val/mse": -info["train/best_val_score"], "data/train_sirens": int(data["train"][0].batch),
            "data/test_sirens": int(raw.batch),
            "model/params": int(sum(p.numel() for p in net.parameters()))}


RUNNERS = {"classify": run_classify, "inr2array": run_inr2array, "fit_zoo": run_fit_zoo,
           "predict_gen": run_predict_gen, "editing": run_editing}


def run(cfg: DictConfig) -> float:
    """One run; returns ``cfg.optimized_metric``."""
    if cfg.study not in STUDIES:
        raise ValueError(f"study={cfg.study!r}: one of {STUDIES}")
    torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = _device(cfg)
    run_dir = resolve_run_dir(cfg)
    with start_run(run_dir, cfg, wandb_mode=cfg.logger.mode, wandb_project=cfg.logger.project) as rec:
        t0 = time.perf_counter()
        summary = RUNNERS[cfg.study](cfg, rec, run_dir, device)
        summary["time/seconds"] = time.perf_counter() - t0
        rec.finish(summary)
    return float(summary.get(cfg.optimized_metric, float("nan")))


def show_run(cfg: DictConfig) -> dict:
    """A finished run's final metrics (eval.py)."""
    rec = read_run(cfg.run_dir)
    return {"study": rec["config"]["study"], "model": rec["config"]["model"]["name"], **rec["metrics"]}

