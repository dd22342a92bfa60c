"""Argument checks shared by the processor and ``get_error_stats()``."""

from __future__ import annotations

import math

from flowtel.exceptions import ConfigurationError

__all__ = ["positive"]


def positive(option: str, value: object, accepted: str, *, integer: bool = False) -> float:
    """``value`` as a float if it is a finite number > 0 (an int when ``integer``), else raise."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise ConfigurationError(option, value, accepted)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(option, value, accepted)
    return number
