"""Prune and evaluate one configuration: python train.py [+experiment=mini] [method=sparsegpt setting=nm24 ...]."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Run the pipeline; returns test perplexity (cfg.optimized_metric) for sweepers."""
    from wanda.pipeline import run

    return run(cfg)


if __name__ == "__main__":
    main()
