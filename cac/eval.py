"""Evaluate a row over all its generated images: python eval.py +experiment=coco_boxes row=sd21_cac eval.fid=true."""
import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> float:
    """Run the pipeline (finished images are skipped, so only the evaluation runs); returns cfg.optimized_metric."""
    from cac.pipeline import run

    return run(cfg)


if __name__ == "__main__":
    main()
