"""Generate and evaluate one configuration: python train.py [+experiment=mini] [method=md_cac model=sd21 ...]."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Run the pipeline; returns cfg.optimized_metric for sweepers."""
    from cac.pipeline import run

    return run(cfg)


if __name__ == "__main__":
    main()
