"""The package is tested on 3.11 and must import on 3.12 and 3.13 (pyproject: requires-python >= 3.11).

For each interpreter found, a cached venv (.venv-py3.X, git-ignored) gets the project installed
with its runtime dependencies, then every module under xds/ and xca/ is imported.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from tests.live import ROOT

IMPORT_ALL = """
import importlib, pkgutil, sys
import xds, xca
failed = []
for pkg in (xds, xca):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if ".migrations.versions" in m.name or m.name.endswith(".migrations.env"):
            continue
        try:
            importlib.import_module(m.name)
        except Exception as e:
            failed.append(f"{m.name}: {type(e).__name__}: {e}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def interpreter(version: str) -> str | None:
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-V"], capture_output=True).returncode == 0:
        return found
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python3")))
    return candidates[-1] if candidates else None


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_every_module_imports(version):
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    venv = ROOT / f".venv-py{version}"
    vpy = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        subprocess.run([python, "-m", "venv", "--clear", str(venv)], check=True)
        r = subprocess.run([str(vpy), "-m", "pip", "install", "--quiet", "-e", str(ROOT)],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        stamp.touch()
    r = subprocess.run([str(vpy), "-c", IMPORT_ALL], cwd="/", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
