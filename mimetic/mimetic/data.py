"""Data: scikit-learn's bundled digits (the CPU mini), torchvision / ImageFolder datasets with the recipe's timm
transforms (paper scale), random images (GPU smoke), and token streams for the language model.

Every loader is epoch-indexed: the order (and augmentation randomness) of epoch e comes from a generator seeded
with (seed, e), so a run resumed at epoch e sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
VISION = {"cifar10": 10, "cifar100": 100, "svhn": 10, "tiny_imagenet": 200, "imagenet": 1000}


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of one epoch: a function of (seed, epoch) only."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def digits(n_train: int = 1000, split_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits as ``[N, 1, 8, 8]`` float32 scaled to [0, 1] then standardised with the
    training split's mean/std; a stratified split (``split_seed`` fixed across runs) of ``n_train`` train images,
    the rest test. Returns (x_train, y_train, x_test, y_test)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0
    if not 10 <= n_train <= len(x) - 10:
        raise ValueError(f"data.n_train={n_train} must leave at least 10 images on each side of {len(x)}")
    xtr, xte, ytr, yte = train_test_split(x, d.target, train_size=n_train, stratify=d.target,
                                          random_state=split_seed)
    mean, std = xtr.mean(), xtr.std()
    f = lambda a: torch.from_numpy((a - mean) / std)[:, None]  # noqa: E731
    return f(xtr), torch.from_numpy(ytr).long(), f(xte), torch.from_numpy(yte).long()


def random_roll(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image of ``x [B, C, H, W]`` circularly shifted by its own (dy, dx) in [-max_shift, max_shift]
    (one gather, no per-image loop)."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2, b), generator=gen)
    rows = (torch.arange(h)[None, :] - dy[:, None]) % h  # [B, H]
    cols = (torch.arange(w)[None, :] - dx[:, None]) % w  # [B, W]
    x = x.gather(2, rows[:, None, :, None].expand(-1, x.shape[1], -1, w))
    return x.gather(3, cols[:, None, None, :].expand(-1, x.shape[1], h, -1))


class TensorBatches:
    """Shuffled mini-batches of in-memory tensors, with an optional random roll; ``len`` = steps per epoch
    (the last partial batch is kept)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int, roll: int = 0,
                 shuffle: bool = True):
        if len(x) != len(y):
            raise ValueError(f"{len(x)} inputs but {len(y)} targets")
        self.x, self.y, self.bs, self.seed, self.roll, self.shuffle = x, y, batch_size, seed, roll, shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.bs)

    def epoch(self, e: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``e``."""
        g = epoch_generator(self.seed, e)
        order = torch.randperm(len(self.x), generator=g) if self.shuffle else torch.arange(len(self.x))
        for i in range(0, len(order), self.bs):
            idx = order[i:i + self.bs]
            yield random_roll(self.x[idx], self.roll, g), self.y[idx]


class LoaderBatches:
    """A torch ``DataLoader`` per epoch whose sampler and worker seeds come from (seed, epoch)."""

    def __init__(self, dataset, batch_size: int, seed: int, workers: int = 4, shuffle: bool = True,
                 drop_last: bool = True, pin_memory: bool = False):
        self.ds, self.bs, self.seed, self.workers = dataset, batch_size, seed, workers
        self.shuffle, self.drop_last, self.pin = shuffle, drop_last, pin_memory
        if len(dataset) < batch_size and drop_last:
            raise ValueError(f"{len(dataset)} examples are fewer than one batch of {batch_size} "
                             "(lower data.batch_size)")

    def __len__(self) -> int:
        n = len(self.ds)
        return n // self.bs if self.drop_last else math.ceil(n / self.bs)

    def epoch(self, e: int):
        """The batches of epoch ``e``."""
        import random

        from torch.utils.data import DataLoader

        if self.workers == 0:  # transforms (RandAugment) then draw from the main process's streams: pin them too
            random.seed(int(self.seed) * 1_000_003 + int(e))
            np.random.seed((int(self.seed) * 1_000_003 + int(e)) % 2**32)
        return DataLoader(self.ds, batch_size=self.bs, shuffle=self.shuffle, drop_last=self.drop_last,
                          num_workers=self.workers, generator=epoch_generator(self.seed, e),
                          pin_memory=self.pin, persistent_workers=False)


def random_images(n: int, size: int, chans: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian images with labels that depend on their mean colour (learnable; for smoke tests)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=g)
    x = torch.randn(n, chans, size, size, generator=g) + (y.float() / max(classes - 1, 1) - 0.5)[:, None, None,
                                                                                                 None] * 2
    return x, y


def vision_transform(train: bool, img_size: int, mean, std, auto_augment: str | None, hflip: float,
                     re_prob: float = 0.0, crop_pct: float = 1.0, interpolation: str = "bicubic",
                     scale=(1.0, 1.0), ratio=(1.0, 1.0)):
    """timm's transform with the recipe's flags: random-resized-crop ``scale``/``ratio`` (the small-data recipe:
    1, 1 = none; ImageNet: timm's 0.08-1, 3/4-4/3), RandAugment, horizontal flip, random erasing; evaluation
    resizes by ``crop_pct`` and centre-crops."""
    from timm.data import create_transform

    return create_transform(img_size, is_training=train, scale=tuple(scale), ratio=tuple(ratio), hflip=hflip,
                            auto_augment=auto_augment or None, re_prob=re_prob, mean=tuple(mean), std=tuple(std),
                            crop_pct=crop_pct, interpolation=interpolation)


def vision_dataset(name: str, root: str | Path, train: bool, transform, download: bool = False):
    """CIFAR-10/100 and SVHN through torchvision; Tiny-ImageNet and ImageNet-1k as ImageFolder trees
    (``root/train/<class>/*``, ``root/val/<class>/*``). Missing data is an error that says how to get it."""
    import torchvision.datasets as tvd

    root = Path(root).expanduser()
    if name not in VISION:
        raise ValueError(f"data.name={name!r}: use one of {sorted(VISION)} or digits / random")
    try:
        if name == "cifar10":
            return tvd.CIFAR10(str(root), train=train, transform=transform, download=download)
        if name == "cifar100":
            return tvd.CIFAR100(str(root), train=train, transform=transform, download=download)
        if name == "svhn":
            return tvd.SVHN(str(root), split="train" if train else "test", transform=transform, download=download)
    except RuntimeError as e:  # torchvision: "Dataset not found or corrupted. You can use download=True ..."
        raise FileNotFoundError(f"{name} not found under data.root={root}: rerun with data.download=true on a "
                                f"machine with network (torchvision fetches it), or point data.root at an existing "
                                f"copy ({e})") from None
    split = root / ("train" if train else "val")
    if not split.is_dir():
        how = ("the Tiny-ImageNet-200 zip from http://cs231n.stanford.edu/tiny-imagenet-200.zip, with val/ "
               "re-foldered by class (scripts/prepare_tiny_imagenet.py)" if name == "tiny_imagenet" else
               "ImageNet-1k (ILSVRC2012) from image-net.org, train/ and val/ as one folder per class")
        raise FileNotFoundError(f"{split} not found: data.root must hold {how}")
    return tvd.ImageFolder(str(split), transform=transform)


def load_tokens(path: str | Path, tokenizer: str, chunk_lines: int = 20_000) -> torch.Tensor:
    """A text file as one LongTensor of token ids: ``tokenizer=bytes`` (UTF-8 bytes, vocabulary 256) or an HF
    tokenizer name/path (``gpt2``, loaded with ``AutoTokenizer``; offline needs it cached in ``HF_HOME``).
    HF tokenisation runs in chunks of lines and is cached beside the file (``<file>.<tokenizer>.ids.npy``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: data.root must hold WikiText-103's raw files (wiki.train.raw, "
                                "wiki.valid.raw, wiki.test.raw); scripts/prepare_wikitext103.py writes them from the "
                                "HF dataset 'Salesforce/wikitext' (wikitext-103-raw-v1)")
    if tokenizer == "bytes":
        return torch.from_numpy(np.fromfile(path, dtype=np.uint8).astype(np.int64))
    cache = path.with_name(f"{path.name}.{Path(tokenizer).name}.ids.npy")
    if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
        return torch.from_numpy(np.load(cache).astype(np.int64))
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer)
    except OSError as e:
        raise OSError(f"tokenizer {tokenizer!r} could not be loaded ({e}); with no network, download it once "
                      "(huggingface-cli download gpt2) into HF_HOME, or set data.tokenizer=bytes") from None
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    parts = []
    for i in tqdm(range(0, len(lines), chunk_lines), desc=f"tokenising {path.name}", unit="chunk"):
        ids = tok(lines[i:i + chunk_lines], return_attention_mask=False)["input_ids"]
        parts.append(np.fromiter((t for line in ids for t in line), dtype=np.int32))
    arr = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    tmp = cache.with_name(cache.name + ".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(cache)  # atomic: parallel jobs never read half a cache
    return torch.from_numpy(arr.astype(np.int64))


def vocab_size(tokenizer: str) -> int:
    """The vocabulary size of ``load_tokens``' tokenizer."""
    if tokenizer == "bytes":
        return 256
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(tokenizer))


class TokenBlocks:
    """Non-overlapping blocks of ``block + 1`` tokens (inputs and shifted targets), shuffled per epoch."""

    def __init__(self, tokens: torch.Tensor, block: int, batch_size: int, seed: int, shuffle: bool = True):
        n = (len(tokens) - 1) // block
        if n < 1:
            raise ValueError(f"{len(tokens)} tokens are fewer than one block of {block} (lower model.n_positions)")
        self.blocks = tokens[:n * block + 1].unfold(0, block + 1, block)  # [n, block + 1], a view
        self.bs, self.seed, self.shuffle = batch_size, seed, shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.blocks) / self.bs)

    def epoch(self, e: int):
        """The batches of epoch ``e``: (inputs, targets) each ``[B, block]``."""
        g = epoch_generator(self.seed, e)
        order = torch.randperm(len(self.blocks), generator=g) if self.shuffle else torch.arange(len(self.blocks))
        for i in range(0, len(order), self.bs):
            b = self.blocks[order[i:i + self.bs]]
            yield b[:, :-1], b[:, 1:]
