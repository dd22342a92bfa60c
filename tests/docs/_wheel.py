"""A fresh virtual environment with flowtel installed from a wheel built from this checkout.

The docs promise that their code runs after ``pip install 'flowtel[...]'``. Running the blocks
against ``src/`` would hide what the wheel lacks (a module left out of the package, an extra
that forgets a dependency, an example that imports ``tests/``), so they run against this.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.docs._collect import ROOT

# What the docs' code needs: the `examples` extra (every integration, the instrumented
# libraries, opentelemetry-instrument) and pytest for the pages that show test modules.
REQUIREMENTS = ("[examples]", "pytest")
_INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True)
class WheelEnv:
    """The wheel that was built and the virtual environment it is installed in."""

    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _run(command: list[str]) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")


def build(directory: Path) -> WheelEnv:
    """Build the wheel (``pip wheel``) and install it with its extras into a new venv."""
    dist = directory / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(ROOT)])
    (wheel,) = dist.glob("flowtel-*.whl")
    venv = directory / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    # This interpreter's pip installs into the new venv (pip --python): no ensurepip run.
    extras, *others = REQUIREMENTS
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    _run([*pip, "install", "-q", f"{wheel}{extras}", *others])
    return WheelEnv(wheel, venv)
