"""One run: python train.py [+experiment=mini] [study=framework] [ensemble.n_models=20] [key=value ...]."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Run the pipeline; the returned metric (cfg.optimized_metric) is what sweepers optimise."""
    from interaction_tensor.pipeline import run

    return run(cfg)


if __name__ == "__main__":
    main()
