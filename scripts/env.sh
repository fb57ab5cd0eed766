#!/usr/bin/env bash
# Build or refresh a virtual environment for papers-repro.
#   scripts/env.sh VENV [PROJECT ...]
# Installs shared/ and each PROJECT's requirements.txt in ONE pip resolve under ../constraints.txt, then each
# project's requirements-nodeps.txt (packages with stale pins) with --no-deps. A stamp holding the hash of
# every file involved makes a second call a no-op until one of them changes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${1:?usage: env.sh VENV [PROJECT ...]}
shift
projects=("$@")

files=("$root/constraints.txt" "$root/shared/requirements.txt" "$root/shared/pyproject.toml" "$root/scripts/env.sh")
for p in "${projects[@]}"; do
  [ -f "$root/$p/requirements.txt" ] || { echo "env: $p/requirements.txt not found" >&2; exit 2; }
  files+=("$root/$p/requirements.txt")
  [ -f "$root/$p/requirements-nodeps.txt" ] && files+=("$root/$p/requirements-nodeps.txt")
done
hash=$(cat "${files[@]}" | sha256sum | cut -c1-16)
stamp="$venv/.repro-stamp"
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
# Our machines' pip config lists local wheel folders that warn on every package: drop that noise only.
pip_install() { "${pip[@]}" install --progress-bar off -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
editables=(-e "$root/shared")
for p in "${projects[@]}"; do [ -f "$root/$p/pyproject.toml" ] && editables+=(-e "$root/$p"); done
# Editable installs as plain paths (.pth), not setuptools' import-hook finder: from the repo root, the folder
# ./wanda/ (no __init__.py) would otherwise shadow the package wanda/wanda/ as an empty namespace package,
# because sys.path entries are searched before the finder. With a path entry, the regular package wins.
install_editables() { pip_install --no-deps --config-settings editable_mode=compat "${editables[@]}"; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -x "$venv/bin/python" ]; then
  # A venv kept outside the clone (CI's cache) may hold editable installs of another checkout: repoint them.
  if [ "$(cat "$venv/.repro-root" 2>/dev/null)" != "$root" ]; then
    install_editables
    echo "$root" >"$venv/.repro-root"
    echo "env: $venv is up to date (editable installs repointed to $root)"
  else
    echo "env: $venv is up to date"
  fi
  exit 0
fi

pick_python() {
  for c in "${PYTHON:-}" python3.11 python3; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then echo "$c"; return; fi
  done
  echo "env: no Python >= 3.11 found; install python3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 2
}
t0=$(date +%s)
if [ ! -x "$venv/bin/python" ]; then
  py=$(pick_python)
  echo "env: creating $venv with $($py --version)"
  "$py" -m venv "$venv"
fi
reqs=(-r requirements.txt)
for p in "${projects[@]}"; do reqs+=(-r "../$p/requirements.txt"); done
echo "env: installing shared ${projects[*]} into $venv (a cold install takes a few minutes)"
# Run pip from shared/: `-e ../shared` in every project's file resolves against the current directory,
# and all projects are siblings of shared/, so each one's `-e ../shared` names the same folder.
(cd "$root/shared" && pip_install "${reqs[@]}")
install_editables
for p in "${projects[@]}"; do
  if [ -f "$root/$p/requirements-nodeps.txt" ]; then
    (cd "$root/$p" && pip_install --no-deps -r requirements-nodeps.txt)
  fi
done
echo "$hash" >"$stamp"
echo "$root" >"$venv/.repro-root"
echo "env: ready in $(( $(date +%s) - t0 )) s, $(du -sh "$venv" 2>/dev/null | cut -f1) on disk"
