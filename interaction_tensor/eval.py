"""Show a finished run's final metrics: python eval.py run_dir=outputs/.../<time>."""
import json

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Print the run's final metrics."""
    from interaction_tensor.pipeline import show_run

    print(json.dumps(show_run(cfg), indent=2))


if __name__ == "__main__":
    main()
