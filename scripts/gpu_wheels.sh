#!/usr/bin/env bash
# Download, HERE (with registry access), the wheels the GPU machine lacks into .whl/ (git-ignored).
# The GPU machine has Python 3.12 with torch, transformers, jax, timm, numpy, scipy, scikit-learn,
# matplotlib, pytest, pyyaml, cloudpickle preinstalled, and no network. Projects add their own needs in
# <project>/gpu-wheels.txt (one `name==version` a line, pinned like constraints.txt).
#   bash scripts/gpu_wheels.sh        then: bash scripts/gpu_check.sh  (on the GPU machine; carry .whl and .gl)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dest=.whl
mkdir -p "$dest"
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >>.git/info/exclude
pin() { grep -iE "^$1==" constraints.txt | head -n 1; }
base=("$(pin hydra-core)" "$(pin omegaconf)" "$(pin hydra-submitit-launcher)" "$(pin submitit)")
mapfile -t extra < <(cat */gpu-wheels.txt 2>/dev/null | sed 's/#.*//' | grep -v '^\s*$' || true)
plat=()
for n in 17 24 27 28 31 34 35; do plat+=(--platform "manylinux_2_${n}_x86_64"); done
plat+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
for spec in "${base[@]}" "${extra[@]}"; do
  [ -n "$spec" ] || continue
  echo "gpu_wheels: $spec"
  # A pure-Python package published only as an sdist (gym 0.26.2) is built into a wheel here instead.
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" -d "$dest" "$spec" 2> >(grep -v "is ignored" >&2) \
    || python3 -m pip wheel -q --no-deps -w "$dest" "$spec" 2> >(grep -v "is ignored" >&2)
done
# antlr4-python3-runtime (hydra's parser) ships only as an sdist: build its pure-Python wheel here.
python3 -m pip wheel -q --no-deps -w "$dest" "antlr4-python3-runtime==4.9.3" 2> >(grep -v "is ignored" >&2)
# Debian packages of system libraries (*/gpu-debs.txt), unpacked aside on the GPU machine by gpu_check.sh.
mapfile -t debs < <(cat */gpu-debs.txt 2>/dev/null | sed 's/#.*//' | grep -v '^\s*$' | sort -u || true)
if [ ${#debs[@]} -gt 0 ]; then
  grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo '/.gl/' >>.git/info/exclude
  mkdir -p .gl /tmp/amd64/partial
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
  apt-get "${o[@]}" update >/dev/null && (cd .gl && apt-get "${o[@]}" download "${debs[@]}")
  du -sh .gl
fi
ls -la "$dest"
du -sh "$dest"
