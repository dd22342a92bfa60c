"""A worker whose checks and hooks hang, run as ``python -m tests.lifecycle.apps.hung_worker``.

HANG=1 adds the issue's reproduction (a sync check blocked forever), an async check that
swallows ``CancelledError`` and a shutdown hook blocked forever; RAISE=<name> makes the critical
``db`` check raise that BaseException instead (SystemExit, KeyboardInterrupt, GeneratorExit,
CancelledError). Prints READY <state> once serving and TIMES <json> just before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time

from flowtel.lifecycle import Lifecycle, StartupOrchestrator, managed_lifecycle

from . import _otel

_RAISE: dict[str, BaseException] = {
    "SystemExit": SystemExit(0),
    "KeyboardInterrupt": KeyboardInterrupt(),
    "GeneratorExit": GeneratorExit(),
    "CancelledError": asyncio.CancelledError(),
}


async def stubborn() -> None:
    """Ignores every cancellation (a retry loop catching BaseException, say)."""
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)


def build() -> Lifecycle:
    orch = StartupOrchestrator()
    raised = os.environ.get("RAISE")

    def db() -> None:
        if raised:
            raise _RAISE[raised]

    if os.environ.get("RAISE_ASYNC") == "1":

        async def db_async() -> None:
            db()

        orch.add(db_async, name="db", timeout_s=2)
    else:
        orch.add(db, name="db", timeout_s=2)
    if os.environ.get("HANG") == "1":
        orch.add(lambda: threading.Event().wait(), name="warm", timeout_s=1, critical=False)
        orch.add(stubborn, name="stubborn", timeout_s=0.5, critical=False)
    lifecycle = Lifecycle(orch, drain_s=0)
    if os.environ.get("HANG") == "1":
        lifecycle.register_shutdown_hook("close", lambda: threading.Event().wait(), timeout_s=1)
    return lifecycle


async def main() -> None:
    async with managed_lifecycle(build()) as lifecycle:
        print("READY", lifecycle.state.value, flush=True)
        await lifecycle.wait_for_stop()
        print("STOPPING", time.monotonic(), flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    _otel.configure("hung-worker")
    try:
        asyncio.run(main())
    finally:
        print("RETURNED", time.monotonic(), json.dumps(threading.active_count()), flush=True)
