"""Examples the type checker must accept: @traced keeps signatures (ParamSpec) of every kind.

Checked by ``mypy --strict src tests/typing`` in ``make test``; ``assert_type`` fails the check
if a decorator loses a parameter or return type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, assert_type

import flowtel


@flowtel.traced
def plain(a: int, b: str = "x") -> float:
    return float(a)


@flowtel.traced("named", component="c", operation="o", record_args=["a"])
async def coro(a: int, *, flag: bool = False) -> str:
    return str(a)


@flowtel.traced(name="gen")
def gen(n: int) -> Iterator[int]:
    yield from range(n)


@flowtel.traced
async def agen(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


class Service:
    @flowtel.traced
    def method(self, x: int) -> int:
        return x


assert_type(plain(1), float)
assert_type(plain(1, b="y"), float)
assert_type(coro(1, flag=True), Coroutine[Any, Any, str]).close()
assert_type(gen(3), Iterator[int])
assert_type(agen(3), AsyncIterator[int])
assert_type(Service().method(2), int)
with flowtel.span("s", key="v") as current:
    current.set_attribute("k", 1)
