"""Minimal ASGI typing and a lifespan driver for a wrapped app; no framework imports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "InnerLifespan", "Message", "Receive", "Scope", "Send"]

_log = logging.getLogger("flowtel.probes")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class InnerLifespan:
    """Speaks the ASGI lifespan protocol to the wrapped app, which may not support it."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self._finished = False
        self._task = asyncio.ensure_future(self._run(app, scope))

    async def _run(self, app: ASGIApp, scope: Scope) -> None:
        try:
            await app(scope, self._to_app.get, self._from_app.put)
        except BaseException as exc:  # an app without lifespan support raises here
            _log.debug("app lifespan ended with %r", exc)
        finally:
            self._from_app.put_nowait(None)

    async def exchange(self, message_type: str) -> str | None:
        """Send ``message_type``; return the app's failure message, or None on success."""
        if self._finished:
            return None
        await self._to_app.put({"type": message_type})
        reply = await self._from_app.get()
        if reply is None:  # the app returned without answering: no lifespan support
            self._finished = True
            return None
        if str(reply.get("type", "")).endswith(".failed"):
            return str(reply.get("message", "")) or f"{message_type} failed"
        if message_type == "lifespan.shutdown":
            await asyncio.gather(self._task, return_exceptions=True)
        return None
