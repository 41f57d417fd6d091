"""Suite-wide hooks."""

from __future__ import annotations

import traceback

import pytest


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Report a failure whose traceback pytest cannot render as that test's failure.

    On CPython 3.11+ a traceback entry can have ``tb_lineno`` None (an exception raised at an
    instruction without a line, as pytest-timeout's signal does); pytest's own renderer then raises
    and ends the whole session with INTERNALERROR, hiding which test failed and why. The failure is
    reported with Python's own rendering of the traceback instead; the run goes on."""
    try:
        return (yield)
    except Exception as renderer_error:
        if call.excinfo is None:
            raise
        text = _plain(call.excinfo.value)
        sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
        return pytest.TestReport(
            item.nodeid,
            item.location,
            {name: 1 for name in item.keywords},
            "failed",
            f"{text}\n(pytest could not render this traceback: {renderer_error!r})",
            call.when,
            sections,
            call.duration,
            call.start,
            call.stop,
            user_properties=item.user_properties,
        )


def _plain(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # the traceback module has its own limits: file, line and function only
        lines = ["Traceback (most recent call last):"]
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}')
            tb = tb.tb_next
        lines.append(f"{type(exc).__name__}: {exc}")
        return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter) -> None:
    """The end of each failure's report once more, just above the short summary: a CI log is often
    read from its tail only, and the last lines say where a test stood when it failed."""
    failed = terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", [])
    if not failed:
        return
    terminalreporter.section("where each failure stood (its report's last lines)")
    for report in failed[:5]:
        lines = [line for line in report.longreprtext.splitlines() if line.strip()]
        terminalreporter.write_line(f"{report.nodeid} ({report.when}):")
        for line in lines[-6:]:
            terminalreporter.write_line(f"    {line[:200]}")
