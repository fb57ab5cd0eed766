"""Training and evaluation on a filtered subset at paper scale, the way DataComp does it.

- ``reshard``: copy the kept samples (raw bytes, no re-encoding) into new tar shards, as DataComp's
  ``resharder.py --subset-file uids.npy`` does.
- ``open_clip_train_args``: the flags DataComp's ``train.py`` passes to open_clip's trainer (webdataset,
  resampled, local loss, gather with grad, grad checkpointing, amp, ``--train-num-samples = samples_seen /
  num_checkpoints`` over ``num_checkpoints`` epochs) plus ``--resume latest`` so a preempted job continues.
- ``zero_shot_imagenet``: top-1 zero-shot accuracy on an ImageNet validation folder with OpenAI's 80 templates.
  DataComp's 38-task suite is its own repository's ``evaluate.py`` (not on PyPI): run it on our checkpoint.
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import torch


def reshard(shards: list[Path], keep_uids: set[str], out_dir: Path, shard_size: int = 10000,
            progress: bool = True) -> int:
    """Write the samples whose uid is in ``keep_uids`` to ``out_dir/{00000000..}.tar``; returns how many."""
    from tqdm.auto import tqdm

    from tmars.shards import iter_shard

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n, k, in_tar, tar = 0, 0, 0, None
    for sh in tqdm(shards, desc="reshard", disable=not progress):
        if not Path(sh).exists():
            continue
        for s in iter_shard(sh):
            if s["key"] is None or s["image"] is None or s["uid"] not in keep_uids:
                continue
            if tar is None or in_tar >= shard_size:
                if tar is not None:
                    tar.close()
                tar = tarfile.open(out_dir / f"{k:08d}.tar", "w")
                in_tar = 0
                k += 1
            for ext, data in (("jpg", s["image"]), ("txt", (s["caption"] or "").encode())):
                info = tarfile.TarInfo(f"{s['key']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            in_tar += 1
            n += 1
    if tar is not None:
        tar.close()
    return n


def open_clip_train_args(subset_dir: Path, n_samples: int, logs: Path, t: dict) -> list[str]:
    """open_clip_train.main flags for DataComp's recipe (``t``: model, samples_seen, batch_size, lr, warmup,
    wd, beta2, num_checkpoints, workers, precision, seed, extra)."""
    shards = sorted(Path(subset_dir).glob("*.tar"))
    if not shards:
        raise FileNotFoundError(f"no subset shards in {subset_dir}: the filter kept nothing?")
    data = f"{subset_dir}/{{{shards[0].stem}..{shards[-1].stem}}}.tar"
    per_epoch = int(t["samples_seen"]) // int(t["num_checkpoints"])
    args = ["--train-data", data, "--train-num-samples", str(per_epoch), "--dataset-type", "webdataset",
            "--dataset-resampled", "--model", t["model"], "--batch-size", str(t["batch_size"]), "--lr", str(t["lr"]),
            "--warmup", str(t["warmup"]), "--wd", str(t["wd"]), "--beta2", str(t["beta2"]),
            "--epochs", str(t["num_checkpoints"]), "--workers", str(t["workers"]), "--precision", t["precision"],
            "--seed", str(t["seed"]), "--local-loss", "--gather-with-grad", "--grad-checkpointing",
            "--ddp-static-graph", "--logs", str(logs), "--name", "train", "--resume", "latest",
            "--save-frequency", "1"]
    if t.get("report_to"):
        args += ["--report-to", t["report_to"]]
    if n_samples < per_epoch:  # resampled webdataset: fine, but say so in the log
        print(f"note: {n_samples} samples in the subset, {per_epoch} seen per epoch (sampling with replacement)")
    return args + list(t.get("extra") or [])


def train_command(args: list[str], gpus: int) -> list[str]:
    """The trainer's command line: one process per GPU through torchrun (open_clip's distributed mode, which
    --local-loss / --gather-with-grad and DataComp's global batch of gpus x batch_size need); one plain process
    for one GPU or the CPU."""
    import sys

    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
                "-m", "open_clip_train.main", *args]
    return [sys.executable, "-m", "open_clip_train.main", *args]


@torch.no_grad()
def zero_shot_imagenet(model_name: str, checkpoint: str, val_dir: Path, batch_size: int = 256,
                       device: str | None = None, limit: int | None = None) -> float:
    """Top-1 zero-shot accuracy on an ImageFolder of ImageNet val (class folders in the standard wnid order)."""
    import open_clip
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES
    from torchvision.datasets import ImageFolder

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not Path(val_dir).is_dir():
        raise FileNotFoundError(f"eval.imagenet_val={val_dir} is not a folder: point it at ImageNet val arranged "
                                "as one folder per wnid (e.g. with the valprep.sh script of the PyTorch examples)")
    model, _, pre = open_clip.create_model_and_transforms(model_name, pretrained=checkpoint)
    model = model.to(device).eval()
    tok = open_clip.get_tokenizer(model_name)
    ds = ImageFolder(str(val_dir), transform=pre)
    names = IMAGENET_CLASSNAMES if len(ds.classes) == len(IMAGENET_CLASSNAMES) else ds.classes
    w = []
    for name in names:
        t = torch.nn.functional.normalize(model.encode_text(tok([f(name) for f in OPENAI_IMAGENET_TEMPLATES])
                                                            .to(device)).float(), dim=-1).mean(0)
        w.append(torch.nn.functional.normalize(t, dim=0))
    w = torch.stack(w, 1)
    idx = np.arange(len(ds)) if limit is None else np.arange(min(limit, len(ds)))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, idx), batch_size=batch_size, num_workers=0)
    correct = total = 0
    for x, y in loader:
        f = torch.nn.functional.normalize(model.encode_image(x.to(device)).float(), dim=-1)
        correct += int(((f @ w).argmax(1).cpu() == y).sum())
        total += len(y)
    return correct / max(total, 1)
