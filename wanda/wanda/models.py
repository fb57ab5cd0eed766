"""Model loading (paper scale) and the mini's tiny byte-level Llama (trained here, cached)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from tqdm.auto import trange

from shared.checkpoint import load_state, save_state

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def load_model(name_or_path: str, dtype: str = "float16", device: str | torch.device = "cpu",
               device_map: str | None = None, token: str | None = None):
    """``AutoModelForCausalLM.from_pretrained`` with errors that say how to get the weights.

    ``device_map="auto"`` spreads a large model over the visible GPUs (needs accelerate), as the paper did
    for the 30B-70B models.
    """
    from transformers import AutoModelForCausalLM

    local = Path(name_or_path).expanduser()
    if (name_or_path.startswith((".", "/", "~")) or local.exists()) and not (local / "config.json").exists():
        raise FileNotFoundError(f"no model at {local} (config.json missing): point model.path at a folder "
                                "written by save_pretrained, or at a hub id such as meta-llama/Llama-2-7b-hf")
    kwargs = {"dtype": DTYPES[dtype], "token": token}
    if device_map:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
    except OSError as e:
        msg = str(e)
        hint = ("it is gated: accept its licence on huggingface.co and export HF_TOKEN=<token> (or run "
                "`huggingface-cli login`)" if any(s in msg.lower() for s in ("gated", "401", "403", "restricted"))
                else f"download it first (`huggingface-cli download {name_or_path}`) where there is network, "
                     "then set HF_HOME to that cache or model.path to the local folder")
        raise OSError(f"could not load {name_or_path!r}: {hint}. Original error: {msg.splitlines()[0]}") from e
    if not device_map:
        model.to(device)
    model.eval()
    return model


def load_tokenizer(name_or_path: str, token: str | None = None):
    """The model's tokenizer (LLaMA: the slow sentencepiece one, ``use_fast=False``, as the reference)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, use_fast=False, token=token)
    except (ValueError, ImportError, OSError):
        return AutoTokenizer.from_pretrained(name_or_path, token=token)


def tiny_llama(vocab: int = 256, hidden: int = 128, intermediate: int = 336, layers: int = 4, heads: int = 4,
               max_pos: int = 128, seed: int = 0):
    """A small LlamaForCausalLM (spec section 5: 0.84 M parameters at the defaults), untied embeddings."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                      max_position_embeddings=max_pos, tie_word_embeddings=False)
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg)


def train_tiny(model, stream: torch.Tensor, steps: int = 1000, batch: int = 16, seqlen: int = 128,
               lr: float = 3e-3, weight_decay: float = 0.1, clip: float = 1.0, seed: int = 0,
               ckpt: str | Path | None = None, ckpt_every: int = 100, progress: bool = True) -> dict:
    """AdamW with a one-cycle schedule on random windows of ``stream`` (the mini's recipe, spec section 5).

    Resumes from ``ckpt`` (model, optimiser, scheduler, step, RNG) when it exists. Returns {"final_loss"}.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    ckpt = Path(ckpt) if ckpt else None
    start = load_state(ckpt, g, model=model, opt=opt, sched=sched)
    model.train()
    loss = torch.tensor(float("nan"))
    bar = trange(start, steps, desc="train tiny llama", disable=not progress)
    for step in bar:
        starts = torch.randint(0, len(stream) - seqlen - 1, (batch,), generator=g)
        x = torch.stack([stream[s:s + seqlen] for s in starts.tolist()])
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        sched.step()
        if progress and step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if ckpt is not None and ((step + 1) % ckpt_every == 0 or step + 1 == steps):
            save_state(ckpt, step + 1, g, model=model, opt=opt, sched=sched)
    model.eval()
    return {"final_loss": loss.item(), "resumed_from": start}


def cached_tiny_model(cache_dir: str | Path, stream: torch.Tensor, arch: dict, train: dict,
                      progress: bool = True):
    """The trained tiny model from ``cache_dir/<hash of arch+train>`` (save_pretrained), training it once.

    A killed training run resumes from its checkpoint in the same folder.
    """
    from transformers import LlamaForCausalLM

    key = hashlib.sha256(json.dumps({"arch": arch, "train": train}, sort_keys=True).encode()).hexdigest()[:12]
    folder = Path(cache_dir) / f"tiny_llama_{key}"
    if (folder / "config.json").exists():
        return LlamaForCausalLM.from_pretrained(folder).eval(), folder
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_llama(**arch)
    info = train_tiny(model, stream, ckpt=folder / "train_ckpt.pt", progress=progress, **train)
    model.save_pretrained(folder)
    (folder / "train_info.json").write_text(json.dumps({**info, "arch": arch, "train": train}, indent=2))
    (folder / "train_ckpt.pt").unlink(missing_ok=True)
    return LlamaForCausalLM.from_pretrained(folder).eval(), folder
