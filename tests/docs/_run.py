"""Run one docs case in the wheel's virtual environment, from a scratch directory.

The scratch directory holds a copy of ``examples/`` (the pages run ``python examples/...``
"from the repository root") and nothing else, so no import can resolve to ``src/`` or
``tests/``. The environment is scrubbed: no ``PYTHONPATH``, no ``OTEL_*``/``FLOWTEL_*``/
``SENTRY_*`` from the caller. A block's output is its stdout followed by its stderr; a console
transcript (``$ command`` lines) shows both interleaved, as a terminal would.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from tests.docs._collect import ROOT, Case
from tests.docs._compare import mismatch
from tests.docs._wheel import WheelEnv

TIMEOUT_S = 90.0
_TEST_FUNCTION = re.compile(r"^(?:async )?def test_", re.MULTILINE)


def _environment(env: WheelEnv, workdir: Path) -> dict[str, str]:
    return {
        "PATH": f"{env.bin}:/usr/local/bin:/usr/bin:/bin",
        "VIRTUAL_ENV": str(env.venv),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "COLUMNS": "80",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _shell(command: str, env: WheelEnv, workdir: Path, *, merge: bool) -> tuple[int, str]:
    """Run ``command`` with bash in ``workdir``; its exit status and what it printed."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=workdir,
        env=_environment(env, workdir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge else subprocess.PIPE,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return result.returncode, result.stdout + (result.stderr or "")


_PRAGMA = re.compile(r"\s+# (?:fmt: skip|noqa\b.*|type: ignore\b.*)$")
_IMPORT = re.compile(r"^(?:import |from \S+ import )")


def _code_lines(text: str) -> list[str]:
    """Lines that must match: no blank lines, pragmas or imports (they may be grouped apart)."""
    lines = (_PRAGMA.sub("", line.rstrip()) for line in text.splitlines())
    return [line for line in lines if line.strip() and not _IMPORT.match(line)]


def _excerpt_of(block: str, path: Path) -> bool:
    """Every line of the block appears in ``path``, in order; ``...`` lines stand for elided code."""
    remaining = iter(_code_lines(path.read_text()))
    wanted = [line for line in _code_lines(block) if not line.strip().startswith("...")]
    return all(any(line == candidate for candidate in remaining) for line in wanted)


def _console(source: str) -> list[tuple[str, str]]:
    """A ``$ command`` transcript as (command, shown output) pairs."""
    steps: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in steps]


def run(case: Case, env: WheelEnv, workdir: Path) -> str | None:
    """Run ``case``; None when it behaved as the page says, else what differed."""
    shutil.copytree(
        ROOT / "examples", workdir / "examples", ignore=shutil.ignore_patterns("__pycache__")
    )
    options, block, shown = case.options, case.block, case.output
    if shown is not None and shown.is_transcript:  # "$ command" first, then its output
        command_line, _, rest = shown.source.partition("\n")
        options = {"run": command_line[2:], **options}
        shown = replace(shown, source=rest)
    if block.language == "console":
        failures = []
        for command, expected in _console(block.source):
            _, printed = _shell(command, env, workdir, merge=True)
            if (diff := mismatch(expected, printed)) is not None:
                failures.append(f"$ {command}\n{diff}")
        return "\n\n".join(failures) or None
    if "excerpt" in options:
        example = ROOT / options["excerpt"]
        if not _excerpt_of(block.source, example):
            return f"the block is not an excerpt of {options['excerpt']}: update one or the other"
        command = options.get("run", f"python {options['excerpt']}")
    elif block.language == "python":
        is_test = _TEST_FUNCTION.search(block.source) is not None
        name = options.get("file", "test_example.py" if is_test else "example.py")
        (workdir / name).write_text(block.source)
        default = f"python -m pytest -q -p no:cacheprovider {name}" if is_test else f"python {name}"
        command = options.get("run", default)
    else:  # sh, bash: the block is the script
        command = options.get("run", block.source)
    status, printed = _shell(command, env, workdir, merge=False)
    expected_status = int(options.get("exit", "0"))
    if status != expected_status:
        return f"exit status {status}, expected {expected_status}; it printed:\n{printed}"
    if shown is not None:
        return mismatch(shown.source, printed, partial="partial" in options)
    return None
