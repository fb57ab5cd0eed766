#!/usr/bin/env bash
# Run one pytest tier in several folders, keep going past failures, print a summary.
#   scripts/run_tests.sh fast|slow|gpu FOLDER ...
# Uses $VENV (default .venv), or the interpreter $PYTHON_BIN when set (the GPU machine's python3).
# pytest's exit 5 (nothing collected) counts as success.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tier=$1; shift
venv=${VENV:-$root/.venv}
case $tier in
  fast) marks=();;
  slow) marks=(-m slow);;
  gpu) marks=(-m gpu);;
  *) echo "tier must be fast, slow or gpu" >&2; exit 2;;
esac
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} WANDB_MODE=${WANDB_MODE:-disabled}
logdir=$(mktemp -d)
start=$(date +%s)
# Folders run in parallel lanes (each pytest single-threaded): REPRO_TEST_JOBS, default 2 for the fast tier (the
# CI machine's two cores), 1 for the slow and GPU tiers. Each folder's output is printed whole when it ends.
jobs_default=1; [ "$tier" = fast ] && jobs_default=2
jobs=${REPRO_TEST_JOBS:-$jobs_default}
run_one() {
  local d=$1 t0 rc files=()
  t0=$(date +%s)
  # GPU tier: only the files holding gpu-marked tests, so a CPU oracle's import (POT, not carried to the GPU
  # machine) cannot break collection there.
  [ "$tier" = gpu ] && mapfile -t files < <(cd "$root/$d" && grep -l "mark\.gpu" tests/*.py 2>/dev/null)
  if [ "$tier" = gpu ] && [ ${#files[@]} -eq 0 ]; then
    echo "no gpu tests" >"$logdir/$d.log"; echo 0 >"$logdir/$d.rc"; echo 0 >"$logdir/$d.dt"; return
  fi
  (cd "$root/$d" && "${PYTHON_BIN:-$venv/bin/python}" -m pytest -q "${marks[@]}" "${files[@]}") >"$logdir/$d.log" 2>&1
  rc=$?
  echo "$rc" >"$logdir/$d.rc"
  echo $(( $(date +%s) - t0 )) >"$logdir/$d.dt"
  { echo "=== $d: pytest ($tier)"; cat "$logdir/$d.log"; } >"$logdir/$d.out"
  [ "$jobs" -gt 1 ] && cat "$logdir/$d.out"
  return 0
}
summary=(); total_pass=0; total_fail=0; total_skip=0; bad=0
folders=()
for d in "$@"; do
  [ -d "$root/$d" ] || { echo "no folder $d" >&2; bad=1; continue; }
  folders+=("$d")
done
for d in "${folders[@]}"; do
  if [ "$jobs" -gt 1 ]; then
    run_one "$d" &
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  else
    echo "=== $d: pytest ($tier)"
    run_one "$d"
    cat "$logdir/$d.log"
  fi
done
wait
for d in "${folders[@]}"; do
  rc=$(cat "$logdir/$d.rc" 2>/dev/null || echo 1)
  dt=$(cat "$logdir/$d.dt" 2>/dev/null || echo 0)
  [ "$rc" -eq 5 ] && rc=0
  last=$(grep -E '([0-9]+ (passed|failed|skipped|error|errors|deselected))|no tests ran' "$logdir/$d.log" | tail -n 1)
  n() { grep -oE "[0-9]+ $1" <<<"$last" | head -n 1 | cut -d' ' -f1; }
  p=$(n passed); f=$(n failed); e=$(n error); s=$(n skipped)
  p=${p:-0}; f=$(( ${f:-0} + ${e:-0} )); s=${s:-0}
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1   # a crash before any test counts as a failure
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
  status=ok; [ "$rc" -ne 0 ] && { status=FAILED; bad=1; }
  summary+=("$(printf '%-20s %-7s %4d passed %3d failed %3d skipped %5ds' "$d" "$status" "$p" "$f" "$s" "$dt")")
done
echo
echo "=== summary ($tier tier)"
printf '%s\n' "${summary[@]}"
rm -rf "$logdir"
echo "total: $(( $(date +%s) - start )) s"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
exit $bad
