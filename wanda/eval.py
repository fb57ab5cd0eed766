"""Evaluate a saved (pruned) model.

python eval.py model_path=<run_dir>/pruned [data=wikitext2 seqlen=4096 dtype=float16]
"""
import json

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Load with from_pretrained, report WikiText-2 (or pydoc) perplexity and achieved sparsity."""
    from wanda.pipeline import evaluate_saved

    print(json.dumps(evaluate_saved(cfg), indent=2))


if __name__ == "__main__":
    main()
