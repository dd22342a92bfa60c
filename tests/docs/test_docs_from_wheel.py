"""Every code block of README.md and docs/*.md runs, from an installed wheel, as shown.

How blocks are found and marked: ``_collect.py``; the placeholders in shown output:
``_compare.py``; how a block runs: ``_run.py``. A block that cannot run here carries a
``<!-- docs-test: skip (why) -->`` comment, and the session ends with the count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs import _run
from tests.docs._collect import Case, all_cases
from tests.docs._wheel import WheelEnv
from tests.docs.conftest import RESULTS

CASES, _ = all_cases()

# The venv is built in the first test's setup (about a minute on 2 cores).
pytestmark = pytest.mark.timeout(600)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_block_runs_as_shown(case: Case, wheel_env: WheelEnv, tmp_path: Path) -> None:
    """The block runs in the wheel's venv and prints what the page shows after it."""
    if case.skip_reason is not None:
        RESULTS["skipped"].append(f"{case.id} ({case.block.language}): {case.skip_reason}")
        pytest.skip(case.skip_reason)
    failure = _run.run(case, wheel_env, tmp_path)
    RESULTS["failed" if failure else "run"].append(case.id)
    if failure is not None:
        pytest.fail(f"{case.id} ({case.block.language}):\n{failure}", pytrace=False)
