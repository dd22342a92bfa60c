"""``flowtel doctor``: why does nothing arrive? Checks the configuration against the real world."""

from flowtel._doctor._run import run_doctor

__all__ = ["run_doctor"]
