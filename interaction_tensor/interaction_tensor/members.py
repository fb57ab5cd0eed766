"""Paper scale: one ensemble member per job (a Slurm array over seeds). A ResNet18 (the standard architecture with
the usual CIFAR stem: 3x3 stride-1 first conv, no max-pool; written here, so the GPU check needs no torchvision)
trained on CIFAR-10 with SGD (lr 0.1, weight decay 1e-4, batch 100, no augmentation: the paper's settings as
quoted [2nd]; momentum, schedule and epochs are config, the paper's were not read), checkpointed every epoch (a
requeued job resumes), then its penultimate activations (512-d), logits and predictions on the evaluation points
are saved as ``member_<seed>.pt``; the ``analyze`` study reads a folder of them.

Image sources: ``cifar10`` (torchvision; ``download=true`` fetches it), ``npz`` (``x_train, y_train, x_test,
y_test``; images [N, 32, 32, 3] uint8 or floats in [0, 1]) and ``random`` (CIFAR-shaped noise: smoke tests).
``subset``: a .pt file with training and test indices (the GDE-breaking distribution) or null."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load_images(name: str, root=None, download: bool = False, n_random: int = 256):
    """(x_train [N, 3, 32, 32] float in [0, 1], y_train, x_test, y_test)."""
    if name == "cifar10":
        import torchvision

        out = []
        for train in (True, False):
            try:
                ds = torchvision.datasets.CIFAR10(str(root), train=train, download=download)
            except RuntimeError as e:
                raise FileNotFoundError(f"CIFAR-10 is not under data.root={root}: set data.download=true (needs "
                                        "network) or point data.root at a torchvision copy") from e
            out += [torch.tensor(ds.data).permute(0, 3, 1, 2).float() / 255, torch.tensor(ds.targets)]
        return tuple(out)
    if name == "npz":
        if root is None or not Path(root).exists():
            raise FileNotFoundError(f"data.name=npz needs data.root=<a .npz with x_train, y_train, x_test, y_test>, "
                                    f"got {root}")
        z = np.load(root)

        def img(a):
            a = torch.tensor(np.asarray(a))
            a = a.float() / 255 if a.dtype == torch.uint8 else a.float()
            return a.permute(0, 3, 1, 2) if a.shape[-1] == 3 else a

        return img(z["x_train"]), torch.tensor(z["y_train"]).long(), img(z["x_test"]), torch.tensor(z["y_test"]).long()
    if name == "random":
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n_random, 3, 32, 32, generator=g), torch.randint(0, 10, (n_random,), generator=g),
                torch.rand(n_random, 3, 32, 32, generator=g), torch.randint(0, 10, (n_random,), generator=g))
    raise ValueError(f"data.name={name!r}: cifar10 | npz | random")


class _Block(nn.Module):
    """The ResNet basic block: two 3x3 conv-BN, ReLU, identity (or 1x1 conv-BN) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(c_out)
        self.short = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return F.relu(self.b2(self.c2(F.relu(self.b1(self.c1(x))))) + self.short(x))


class ResNet18(nn.Module):
    """ResNet18 with the usual CIFAR stem (3x3 stride-1 first conv, no max-pool): 4 stages of 2 basic blocks
    (64, 128, 256, 512 channels), global average pooling, ``fc`` (its input is the 512-d penultimate layer)."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        blocks, c = [], 64
        for i, w in enumerate((64, 128, 256, 512)):
            blocks += [_Block(c, w, 1 if i == 0 else 2), _Block(w, w, 1)]
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, n_classes)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def resnet18_cifar(n_classes: int = 10) -> nn.Module:
    return ResNet18(n_classes)


def penultimate(net: nn.Module, x: torch.Tensor):
    """(logits, the 512-d input of the final linear layer)."""
    feats = {}
    h = net.fc.register_forward_hook(lambda m, inp, out: feats.__setitem__("z", inp[0]))
    try:
        logits = net(x)
    finally:
        h.remove()
    return logits, feats["z"]


def train_member(data, seed: int, epochs: int, lr: float, momentum: float, weight_decay: float, batch: int,
                 schedule: str, ckpt: Path, device, subset=None, progress: bool = False, max_steps=None):
    """Train one member; resumes from ``ckpt`` (refusing another seed's). Returns the trained network."""
    xtr, ytr = data[0], data[1]
    if subset is not None:
        xtr, ytr = xtr[subset], ytr[subset]
    torch.manual_seed(seed)
    net = resnet18_cifar().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    per_epoch = math.ceil(len(ytr) / batch)
    total = epochs * per_epoch
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"member.schedule={schedule!r}: constant | cosine")
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)) if schedule == "cosine" else 1.0)
    gen = torch.Generator().manual_seed(seed)
    start = 0
    if ckpt.exists():
        blob = torch.load(ckpt, map_location="cpu", weights_only=False)
        if blob["seed"] != seed or blob["n_train"] != len(ytr):
            raise ValueError(f"{ckpt} belongs to another member (seed or training set differ): use a fresh run_dir")
        net.load_state_dict(blob["net"])
        opt.load_state_dict(blob["opt"])
        sched.load_state_dict(blob["sched"])
        gen.set_state(blob["gen"])
        start = blob["epoch"]
    mean, std = MEAN.to(device), STD.to(device)
    steps = 0
    for epoch in tqdm(range(start, epochs), desc=f"member {seed}", disable=not progress, initial=start,
                      total=epochs):
        net.train()
        order = torch.randperm(len(ytr), generator=gen)
        for s in range(0, len(ytr), batch):
            j = order[s:s + batch]
            xb, yb = xtr[j].to(device), ytr[j].to(device)
            loss = F.cross_entropy(net((xb - mean) / std), yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"member {seed}: loss {loss.item()} at epoch {epoch}: lower member.lr")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
            if max_steps is not None and steps >= max_steps:
                return net
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "epoch": epoch + 1, "seed": seed, "n_train": len(ytr)}, tmp)
        tmp.replace(ckpt)
    return net


@torch.no_grad()
def extract(net, x, device, batch: int = 500) -> dict:
    """Logits, predictions and penultimate activations on ``x`` (eval mode)."""
    net.eval()
    mean, std = MEAN.to(device), STD.to(device)
    logits, acts = [], []
    for s in range(0, len(x), batch):
        lo, z = penultimate(net, (x[s:s + batch].to(device) - mean) / std)
        logits.append(lo.cpu())
        acts.append(z.cpu())
    logits = torch.cat(logits)
    return {"logits": logits, "pred": logits.argmax(1), "acts": torch.cat(acts)}
