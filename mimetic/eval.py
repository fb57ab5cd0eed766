"""Re-evaluate a saved run: python eval.py run_dir=outputs/.../<time> (test metrics + trained attention diagnostics)."""
import json

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Load the run's config and checkpoint, evaluate, print and write eval.json."""
    from mimetic.pipeline import evaluate_run

    out = evaluate_run(cfg)
    print(json.dumps({k: v for k, v in out.items() if k != "trained/layers"}, indent=2))


if __name__ == "__main__":
    main()
