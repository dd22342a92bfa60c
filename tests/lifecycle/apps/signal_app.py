"""A FastAPI app served by plain ``uvicorn module:app`` in the SIGTERM test.

``/slow`` stays in flight until the test creates ``release`` in the gate directory.
"""

from __future__ import annotations

import asyncio
import os
import pathlib

from fastapi import FastAPI

from flowtel.lifecycle import add_k8s_probes, register_shutdown_hook, register_startup_check

from . import _otel

_otel.configure("signal-app")
GATE = pathlib.Path(os.environ["FLOWTEL_TEST_GATE_DIR"])

app = FastAPI()


@register_startup_check(name="db", priority=1)
async def db() -> dict[str, int]:
    return {"pool_size": 2}


@register_startup_check(name="cache", depends_on=["db"], critical=False)
def cache() -> None:
    return None


def close_db() -> None:
    (GATE / "hook_ran").write_text("close_db")


register_shutdown_hook("close_db", close_db, timeout_s=2)


@app.get("/ping")
async def ping() -> dict[str, bool]:
    return {"pong": True}


@app.get("/slow")
async def slow() -> dict[str, str]:
    (GATE / "slow_started").touch()
    # The test holds this request open across the listener closing, so the gate is a file.
    while not (GATE / "release").exists():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return {"slow": "done"}


add_k8s_probes(app, drain_s=float(os.environ.get("FLOWTEL_TEST_DRAIN_S", "30")))
