"""A worker without a web server, run as ``python -m tests.lifecycle.apps.worker``.

Prints READY when the body runs and STOPPING once the drain is over. FAIL_DB=1 makes the
critical ``db`` check fail.
"""

from __future__ import annotations

import asyncio
import logging
import os

from flowtel.lifecycle import (
    default_lifecycle,
    managed_lifecycle,
    register_shutdown_hook,
    register_startup_check,
    startup_report,
)

from . import _otel


@register_startup_check(name="db", timeout_s=2)
def db() -> None:
    if os.environ.get("FAIL_DB") == "1":
        raise ConnectionRefusedError("db refused")


@register_startup_check
async def queue() -> dict[str, int]:
    return {"partitions": 3}


@register_startup_check(name="consumer", depends_on=["db", "queue"])
async def consumer() -> None:
    return None


def close_queue() -> None:
    print("HOOK close_queue", flush=True)


register_shutdown_hook("close_queue", close_queue)


async def main() -> None:
    default_lifecycle().drain_s = float(os.environ.get("FLOWTEL_TEST_DRAIN_S", "0"))
    async with managed_lifecycle() as lifecycle:
        report = startup_report()
        assert report is not None
        print("PATH", " -> ".join(report.critical_path), flush=True)
        print("READY", lifecycle.state.value, flush=True)
        await lifecycle.wait_for_stop()
        print("STOPPING", lifecycle.state.value, flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    _otel.configure("worker")
    asyncio.run(main())
