"""A tiny Hydra app that proves the shared launcher configs (used by shared's tests only)."""
import json
from pathlib import Path

import hydra
from omegaconf import DictConfig

from shared.logging import start_run


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float:
    """Write metrics.json into the job's run dir and return the 'metric'."""
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with start_run(run_dir, cfg) as run:
        value = float(cfg.x) ** 2
        run.log({"train/value": value}, step=0)
        run.finish({"train/value": value})
    (run_dir / "done.json").write_text(json.dumps({"x": cfg.x}))
    return value


if __name__ == "__main__":
    main()
