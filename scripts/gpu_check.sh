#!/usr/bin/env bash
# The GPU smoke check, run ON the GPU machine from the repo root (its python3, no network):
#   bash scripts/gpu_check.sh [PROJECT ...]     (default: shared + every project)
# Installs .whl/ (made here by scripts/gpu_wheels.sh) into a temporary target, puts shared/ and the projects
# on PYTHONPATH, and runs `pytest -m gpu` in each folder: the same tests as `make test-gpu`. Budget: 5 min.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/gpu_env.sh "$@" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
PYTHON_BIN=$(command -v python3) timeout "${GPU_TIMEOUT:-300}" bash scripts/run_tests.sh gpu "${folders[@]}"
