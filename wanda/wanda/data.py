"""Calibration and evaluation token streams (arXiv 2306.11695, Section 4 "Setup").

Paper scale: 128 calibration windows of ``seqlen`` tokens from the first C4 training shard
(``en/c4-train.00000-of-01024.json.gz``; random documents longer than seqlen, a random window of each,
``random.seed(seed)``), and the WikiText-2-raw-v1 test split joined with "\\n\\n" for perplexity.
Mini scale: byte-level tokens of English prose that ships with CPython (``pydoc_data.topics``).
"""
from __future__ import annotations

import random
from pathlib import Path

import torch

C4_SHARD = "en/c4-train.00000-of-01024.json.gz"


def pydoc_bytes() -> torch.Tensor:
    """The Python reference manual's topics (stdlib ``pydoc_data.topics``) as byte tokens (vocab 256)."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.long)


def split_stream(tokens: torch.Tensor, train_frac: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Contiguous train / held-out split of a token stream."""
    cut = int(len(tokens) * train_frac)
    return tokens[:cut], tokens[cut:]


def random_windows(stream: torch.Tensor, n: int, seqlen: int, seed: int = 0) -> torch.Tensor:
    """(n, seqlen) windows at random offsets of one token stream (seeded)."""
    if len(stream) <= seqlen:
        raise ValueError(f"calibration stream has {len(stream)} tokens, fewer than seqlen={seqlen}+1: use a "
                         "shorter seqlen or more text")
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(stream) - seqlen, (n,), generator=g)
    return torch.stack([stream[s:s + seqlen] for s in starts.tolist()])


def c4_calibration(tokenizer, n: int = 128, seqlen: int = 2048, seed: int = 0, path: str | None = None,
                   max_docs: int | None = None) -> torch.Tensor:
    """The paper's calibration set: ``n`` random windows of ``seqlen`` tokens from C4 shard 00000.

    As in the reference code: ``random.seed(seed)``; draw random documents until one tokenizes to more than
    ``seqlen`` tokens, then take a random window of it. ``path``: a local copy of the shard (json.gz or
    jsonl with a "text" field); otherwise the hub's ``allenai/c4`` with the ``en`` data file (the old
    ``allenai--c4`` config no longer exists in ``datasets`` >= 2.14).
    """
    docs = _load_c4(path)
    if max_docs:
        docs = docs[:max_docs]
    random.seed(seed)
    out = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n:
            raise ValueError(f"found only {len(out)} C4 documents longer than seqlen={seqlen} tokens")
        ids = tokenizer(docs[random.randint(0, len(docs) - 1)], return_tensors="pt").input_ids[0]
        if len(ids) <= seqlen:
            continue
        start = random.randint(0, len(ids) - seqlen - 1)
        out.append(ids[start:start + seqlen])
    return torch.stack(out)


def _load_c4(path: str | None) -> list[str]:
    if path is not None:
        import gzip
        import json

        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"C4 shard not found at {p}: download {C4_SHARD} from the hub dataset "
                                    "allenai/c4 and pass data.calib_path=<file>, or leave it null to use the hub")
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f if line.strip()]
    try:
        from datasets import load_dataset

        return load_dataset("allenai/c4", data_files={"train": C4_SHARD}, split="train")["text"]
    except Exception as e:  # noqa: BLE001 - any hub/network failure gets the same instruction
        raise RuntimeError(f"could not load C4 from the hub ({type(e).__name__}: {e}). Without network, "
                           f"download {C4_SHARD} of allenai/c4 elsewhere and pass data.calib_path=<file>") from e


def wikitext2_test(tokenizer, path: str | None = None) -> torch.Tensor:
    """WikiText-2-raw-v1 test split, texts joined with "\\n\\n" and tokenized once (the paper's protocol).

    ``path``: a local text file holding exactly ``"\n\n".join(rows)`` of the hub split (write it once with
    ``datasets``); a raw ``wiki.test.raw`` from elsewhere differs in newlines and gives other perplexities.
    Else the hub's ``wikitext``.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"WikiText-2 test file not found at {p}: pass data.eval_path=<wiki.test.raw> "
                                    "or leave it null to load wikitext-2-raw-v1 from the hub")
        text = p.read_text(encoding="utf-8")
    else:
        try:
            from datasets import load_dataset

            text = "\n\n".join(load_dataset("wikitext", "wikitext-2-raw-v1", split="test")["text"])
        except Exception as e:  # noqa: BLE001
            raise RuntimeError(f"could not load wikitext-2-raw-v1 from the hub ({type(e).__name__}: {e}); pass "
                               "data.eval_path=<local wiki.test.raw>") from e
    return tokenizer(text, return_tensors="pt").input_ids[0]
