"""A FastAPI app that never imports flowtel: `opentelemetry-instrument` brings it in."""

from __future__ import annotations

import logging

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("plain_app")


@app.get("/ok")
async def ok() -> dict[str, bool]:
    log.warning("login for user with password=hunter2")
    return {"ok": True}


@app.get("/boom")
async def boom() -> dict[str, bool]:
    raise ValueError("upstream refused api_key=sk_live_4242424242424242")
