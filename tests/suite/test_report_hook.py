"""tests/conftest.py: a failure whose traceback pytest cannot render fails that test, not the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a traceback entry at an instruction without a line: tb_lineno is None on CPython 3.11+
UNRENDERABLE = """
import sys
import types

import pytest


def frame_with_lineless_instructions():
    try:
        pass
    except ValueError as e:  # its clean-up instructions carry no line
        del e
    return sys._getframe()


def test_unrenderable():
    frame = frame_with_lineless_instructions()
    lasti = 2 * next(i for i, p in enumerate(frame.f_code.co_positions()) if p[0] is None)
    lineless = types.TracebackType(None, frame, lasti, -1)
    assert lineless.tb_lineno is None
    raise RuntimeError("the failure itself").with_traceback(lineless)


@pytest.mark.xfail(strict=True)
def test_unrenderable_expected_to_fail():
    test_unrenderable()


def test_after():
    pass
"""


def run(tmp_path: Path, conftest: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_unrenderable.py").write_text(UNRENDERABLE)
    (tmp_path / "conftest.py").write_text(conftest)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_pytest_alone_ends_the_run_on_such_a_traceback(tmp_path):
    result = run(tmp_path, "")
    assert "INTERNALERROR" in result.stdout + result.stderr
    assert "1 passed" not in result.stdout


def test_the_hook_reports_it_as_the_tests_failure_and_the_run_goes_on(tmp_path):
    result = run(
        tmp_path,
        "from tests.conftest import pytest_runtest_makereport, pytest_terminal_summary  # noqa: F401\n",
    )
    assert "INTERNALERROR" not in result.stdout + result.stderr
    assert "1 failed, 1 passed, 1 xfailed" in result.stdout
    assert "RuntimeError: the failure itself" in result.stdout
    assert "FAILED test_unrenderable.py::test_unrenderable" in result.stdout
    # the end of the failure once more, above the short summary, for logs read from their tail
    tail = result.stdout.split("where each failure stood")[1]
    assert "test_unrenderable.py::test_unrenderable (call):" in tail
    assert "RuntimeError: the failure itself" in tail
