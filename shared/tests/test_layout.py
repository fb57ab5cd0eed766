"""The environment serves the conventions: every project's package imports from the repo root too."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["shared"] + sorted(p.parent.name for p in ROOT.glob("*/pyproject.toml") if p.parent.name != "shared")


@pytest.mark.parametrize("package", PACKAGES)
@pytest.mark.parametrize("cwd", ["root", "project"])
def test_package_imports_from_root_and_its_folder(package, cwd):
    where = ROOT if cwd == "root" else ROOT / package
    # find_spec locates the package without importing it (no torch import): origin is None for a namespace
    code = f"import importlib.util as u; print(u.find_spec({package!r}).origin)"
    out = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    origin = out.stdout.strip()
    assert origin != "None", f"`import {package}` from {where} gives a namespace package (shadowed editable install)"
    assert Path(origin).resolve().is_relative_to(ROOT / package / package)
