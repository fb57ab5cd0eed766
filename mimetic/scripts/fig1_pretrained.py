"""The paper's Fig. 1 on a pretrained timm ViT: per layer and head, the diagonal mean of W_q^h W_k^h^T and of
W_v W_proj, beside a mimetic-initialised copy. Needs the hub (or a local checkpoint) once:

    python scripts/fig1_pretrained.py --model vit_tiny_patch16_224.augreg_in21k_ft_in1k --out results/fig1.png
    python scripts/fig1_pretrained.py --model vit_tiny_patch16_224 --checkpoint /path/model.safetensors
"""
import argparse
import sys
from pathlib import Path

import torch

from mimetic import attention_diagnostics, mimetic_init_
from mimetic.report import plot_layer_diagnostics


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="vit_tiny_patch16_224.augreg_in21k_ft_in1k", help="timm model name")
    p.add_argument("--checkpoint", default=None, help="local weights file (instead of the hub)")
    p.add_argument("--out", default="results/fig1_pretrained.png")
    a = p.parse_args()
    import timm

    try:
        kw = {"pretrained_cfg_overlay": {"file": a.checkpoint}} if a.checkpoint else {}
        model = timm.create_model(a.model, pretrained=True, **kw)
    except Exception as e:  # hub errors differ by version: name the fix whatever they are
        print(f"could not load pretrained {a.model} ({type(e).__name__}: {e}); with no network, download the weights "
              "once and pass --checkpoint /path/to/model.safetensors (or set HF_HOME to a cache holding them)",
              file=sys.stderr)
        return 2
    fresh = timm.create_model(a.model.split(".")[0], pretrained=False)
    mimetic_init_(fresh, generator=torch.Generator().manual_seed(0))
    diags = {f"pretrained {a.model}": attention_diagnostics(model), "mimetic init": attention_diagnostics(fresh)}
    plot_layer_diagnostics(diags, Path(a.out))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
