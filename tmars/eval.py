"""Zero-shot ImageNet top-1 of a trained CLIP checkpoint (ours or DataComp's / the authors' released one):
python eval.py checkpoint=<run_dir>/open_clip/train/checkpoints/epoch_5.pt imagenet_val=/data/imagenet/val
"""
import json

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    """Print and save (eval.json beside the checkpoint) the zero-shot accuracy."""
    from tmars.pipeline import evaluate_checkpoint

    print(json.dumps(evaluate_checkpoint(cfg), indent=2))


if __name__ == "__main__":
    main()
