#!/usr/bin/env bash
# Sourced ON the GPU machine from the repo root (by gpu_check.sh, or before a project's own GPU script, e.g.
#   source scripts/gpu_env.sh ede && python3 ede/scripts/bench.py --device cuda):
# installs .whl/ into a temporary target, unpacks the system libraries of .gl/ aside, and exports PYTHONPATH
# (shared/ and the named projects, default all) and LD_LIBRARY_PATH.
root=$(pwd)
site=${GPU_SITE:-/tmp/repro-site}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl || return 1
fi
if [ $# -gt 0 ]; then folders=("$@"); else
  folders=(shared $(ls -d */requirements.txt 2>/dev/null | xargs -n1 dirname | grep -vx shared))
fi
# System libraries a project's wheels need and the GPU image lacks (Procgen's Qt wants libGL): the .deb files
# of .gl/ (scripts/gpu_wheels.sh, from */gpu-debs.txt) are unpacked aside, and only libraries the image does not
# have go on LD_LIBRARY_PATH, so nothing of the image is shadowed.
if ls .gl/*.deb >/dev/null 2>&1; then
  rm -rf /tmp/repro-gl && mkdir -p /tmp/repro-gl/x /tmp/repro-gl/lib
  for f in .gl/*.deb; do dpkg -x "$f" /tmp/repro-gl/x; done
  have=$(ldconfig -p | awk '{print $1}')
  for f in $(find /tmp/repro-gl/x -name 'lib*.so*' \( -type f -o -type l \)); do
    n=$(basename "$f"); grep -qx "$n" <<<"$have" || cp -L "$f" /tmp/repro-gl/lib/ 2>/dev/null || true
  done
  echo "gpu_check: system libraries added: $(ls /tmp/repro-gl/lib | tr '\n' ' ')"
  export LD_LIBRARY_PATH="/tmp/repro-gl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
pp="$site:$root/shared"
for d in "${folders[@]}"; do [ "$d" != shared ] && pp="$pp:$root/$d"; done
export PYTHONPATH="$pp${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled HF_HUB_OFFLINE=1
