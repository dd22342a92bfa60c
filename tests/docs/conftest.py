"""The wheel environment, built once per session, and the block count printed at the end."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.docs import _wheel
from tests.docs._collect import all_cases

RESULTS: dict[str, list[str]] = {"run": [], "failed": [], "skipped": []}


@pytest.fixture(scope="session")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_wheel.WheelEnv]:
    """flowtel built as a wheel and installed with its extras in a fresh venv."""
    try:
        env = _wheel.build(tmp_path_factory.mktemp("docs-wheel"))
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"cannot build and install the wheel: {exc}")
        pytest.skip(f"cannot build and install the wheel (fails under CI=true): {exc}")
    yield env


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many docs blocks ran from the wheel, and which were skipped and why."""
    if not any(RESULTS.values()):
        return
    _, illustrations = all_cases()
    shown = sum(len(blocks) for blocks in illustrations.values())
    write = terminalreporter.write_line
    terminalreporter.section("docs blocks run from the installed wheel")
    write(
        f"{len(RESULTS['run'])} run and passed, {len(RESULTS['failed'])} failed, "
        f"{len(RESULTS['skipped'])} skipped; {shown} text blocks are illustrations "
        f"(diagrams, recorded benchmark output), not code"
    )
    for entry in RESULTS["skipped"]:
        write(f"  skipped {entry}")
    for entry in RESULTS["failed"]:
        write(f"  FAILED {entry}")
