"""The one calling shape shared by ``register_startup_check``, ``register_readiness_check``
and ``register_shutdown_hook``.

Each accepts, with the same keywords as its registry's ``add``::

    @register_x                      # bare: the function's name is the name
    @register_x(name="db", ...)      # called with keywords
    @register_x("db", ...)           # called with the name first
    register_x(func, ...)            # direct, returns func
    register_x("db", func, ...)      # direct with a name

A wrong keyword raises ``TypeError`` naming the function, the accepted keywords and the closest
match, instead of a message about some internal ``add()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, TypeVar

from flowtel._core._parse import check_keywords
from flowtel.exceptions import ConfigurationError

__all__ = ["MAX_SECONDS", "check_keywords", "register", "seconds"]

MAX_SECONDS: Final = 86_400.0
"""Longest accepted timeout, interval or backoff (a day): more is a unit mistake, and would
overflow the waits it ends up in."""

F = TypeVar("F", bound=Callable[..., Any])


def register(
    where: str,
    add: Callable[..., object],
    accepted: tuple[str, ...],
    args: tuple[Any, ...],
    policy: dict[str, Any],
) -> Any:
    """Apply the shared calling shape; ``add(func, name=..., **policy)`` does the registering.

    Returns ``func`` when it was given, else a decorator that registers and returns its function.
    """
    check_keywords(where, policy, accepted)
    if len(args) > 2:
        raise TypeError(f"{where}() takes at most 2 positional arguments ({len(args)} given)")
    name: str | None = policy.pop("name", None)
    func: Any = None
    if args and isinstance(args[0], str):
        if name is not None:
            raise TypeError(f"{where}() got the name twice ({args[0]!r} and name={name!r})")
        name, rest = args[0], args[1:]
        func = rest[0] if rest else None
    elif args:
        if len(args) == 2:
            raise TypeError(f"{where}() takes the name first: {where}(name, func)")
        func = args[0]
    if func is not None:
        if not callable(func):
            raise TypeError(f"{where}() needs a callable, got {type(func).__name__}")
        add(func, name=name, **policy)
        return func

    def decorate(fn: F) -> F:
        add(fn, name=name, **policy)
        return fn

    return decorate


def seconds(option: str, value: object, *, zero_ok: bool) -> float:
    """``value`` as float seconds, or a ConfigurationError naming ``option``."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    low_ok = number is not None and (number > 0 or (zero_ok and number == 0))
    if number is not None and low_ok and math.isfinite(number) and number <= MAX_SECONDS:
        return float(number)
    accepted = f"a number of seconds {'>=' if zero_ok else '>'} 0 and <= {MAX_SECONDS:g}"
    raise ConfigurationError(option, value, accepted)
