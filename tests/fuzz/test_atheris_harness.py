"""The atheris harness (tests/fuzz/atheris_main.py) starts and runs a target; skipped without atheris."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import seeds

ROOT = Path(__file__).resolve().parents[2]


@seeds.needs_corpus
@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")
@pytest.mark.parametrize("target", ["mtom"])
def test_atheris_harness_runs_a_target(target, tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_main", target, "-runs=40", f"-artifact_prefix={tmp_path}/"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done 40 runs" in run.stderr
