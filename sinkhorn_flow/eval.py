"""Re-evaluate a saved learned run: python eval.py run_dir=outputs/.../<time> [n_iters_eval=500] [split=test]."""
import json

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Load the run's config and checkpoint, evaluate, print and write eval.json."""
    from sinkhorn_flow.pipeline import evaluate_run

    print(json.dumps(evaluate_run(cfg), indent=2))


if __name__ == "__main__":
    main()
