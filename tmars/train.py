"""One run: python train.py [method=clip_score seed=1 ...]; the mini: python train.py -m +experiment=mini;
paper scale: python train.py -m +experiment=datacomp_medium stage=score|select|train (see README)."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Run the pipeline stage; returns cfg.optimized_metric for sweepers."""
    from tmars.pipeline import run

    return run(cfg)


if __name__ == "__main__":
    main()
