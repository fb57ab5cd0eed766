"""CLIP's BPE tokenizer built offline from the merges file that ships inside the open_clip wheel.

Stable Diffusion tokenises with CLIP's BPE (49408 ids, SOT 49406, EOT 49407, padding with EOT to 77). The hub
copy is unreachable offline, but open_clip bundles ``bpe_simple_vocab_16e6.txt.gz``; the vocabulary is derived
from it exactly as in CLIP's ``simple_tokenizer.py`` (byte symbols, their ``</w>`` forms, one entry per merge,
then the two specials). Tests and the mini reproduction use it so prompts tokenise like the real pipeline's.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

N_MERGES = 49152 - 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable-unicode table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_clip_vocab(out_dir: str | Path, model_max_length: int = 77) -> Path:
    """Write ``vocab.json``, ``merges.txt`` and a tokenizer config for ``CLIPTokenizer.from_pretrained(out_dir)``."""
    import open_clip

    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1 : N_MERGES + 1]
    merges = [tuple(m.split()) for m in merges]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "model_max_length": model_max_length, "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "do_lower_case": True,
    }))
    return out


def clip_tokenizer(out_dir: str | Path, model_max_length: int = 77):
    """A ``transformers.CLIPTokenizer`` with CLIP's real vocabulary (written to ``out_dir`` once)."""
    from transformers import CLIPTokenizer

    out = Path(out_dir)
    if not (out / "merges.txt").exists():
        write_clip_vocab(out, model_max_length)
    return CLIPTokenizer.from_pretrained(str(out), model_max_length=model_max_length)
