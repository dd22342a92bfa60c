"""Real subprocesses for lifecycle and server tests: output collected, always reaped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


class Process:
    """A subprocess whose stdout+stderr lines are collected by a thread."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for m in (re.search(pattern, x) for x in list(self.lines)) if m]
            return bool(found) or self.proc.poll() is not None

        wait_until(seen, what=f"output line {pattern!r}")
        if not found:
            raise AssertionError(f"process exited without {pattern!r}:\n{self.output()}")
        return found[0]

    def wait_exit(self, timeout_s: float = 15) -> int:
        code = self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5)
        return code


@contextmanager
def spawn(args: list[str], *, program: str | None = None, **env: str) -> Iterator[Process]:
    """Run ``python args...`` (or ``program args...``) from the repository root."""
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", **env}
    process = Process([program or sys.executable, *args], full_env)
    try:
        yield process
    finally:
        if process.proc.poll() is None:
            process.proc.kill()
        process.wait_exit(timeout_s=10)
        if process.proc.stdout is not None:
            process.proc.stdout.close()
