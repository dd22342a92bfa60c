"""Cost of flowtel's probes and FastAPI instrumentation versus the raw equivalents, one run.

Run: ``python benchmarks/bench_lifecycle.py``. Each request is a direct in-process ASGI call
(no sockets), so only the framework and middleware cost is measured. Prints microseconds per
request (best of N repeats, interleaved) and the ratio flowtel / raw:

- a normal route through ``add_k8s_probes`` middleware vs the bare FastAPI app;
- ``/ready`` answered by the probe middleware vs a plain FastAPI route returning the same JSON;
- a traced request with ``instrument_fastapi`` vs raw ``FastAPIInstrumentor.instrument_app``
  (same tracer provider, spans to a BatchSpanProcessor with a null exporter).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from flowtel.fastapi import instrument_fastapi
from flowtel.lifecycle import Lifecycle, ReadinessMonitor, StartupOrchestrator, add_k8s_probes

N = 3_000
REPEATS = 5


class NullExporter(SpanExporter):
    """Accepts and forgets every batch."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/work")
    async def work() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/plain-ready")
    async def plain_ready() -> dict[str, str]:
        return {"status": "pass", "state": "READY"}

    return app


async def lifespan_start(app: Any) -> Callable[[], Awaitable[None]]:
    """Run the app's lifespan startup; return a coroutine function that shuts it down."""
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                      "state": {}}, queue.get, sent.put))  # fmt: skip
    await queue.put({"type": "lifespan.startup"})
    await sent.get()

    async def stop() -> None:
        await queue.put({"type": "lifespan.shutdown"})
        await sent.get()
        await task

    return stop


async def request_time_us(app: Any, path: str) -> float:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    status: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    start = time.perf_counter()
    for _ in range(N):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - start
    assert set(status) == {200}, (path, set(status))
    return elapsed / N * 1e6


async def compare(label: str, raw: tuple[Any, str], ours: tuple[Any, str]) -> None:
    raw_t, our_t = [], []
    for _ in range(REPEATS):
        gc.collect()
        raw_t.append(await request_time_us(*raw))
        gc.collect()
        our_t.append(await request_time_us(*ours))
    r, o = min(raw_t), min(our_t)
    print(f"{label:<52} raw {r:7.1f} us   flowtel {o:7.1f} us   ratio {o / r:.2f}x")


async def main() -> None:
    bare = make_app()
    probed = make_app()
    lifecycle = Lifecycle(StartupOrchestrator(), flush=lambda timeout_s: True)
    add_k8s_probes(probed, lifecycle=lifecycle, readiness=ReadinessMonitor(),
                   handle_signals=False)  # fmt: skip

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    raw_traced = make_app()
    FastAPIInstrumentor.instrument_app(raw_traced, tracer_provider=provider)
    ours_traced = make_app()
    instrument_fastapi(ours_traced, tracer_provider=provider)

    stops = [await lifespan_start(app) for app in (bare, probed, raw_traced, ours_traced)]
    await lifecycle.start()  # joins the startup the lifespan began in the background

    await compare("route /work: add_k8s_probes vs bare FastAPI", (bare, "/work"), (probed, "/work"))
    await compare("probe /ready vs FastAPI route with same JSON",
                  (bare, "/plain-ready"), (probed, "/ready"))  # fmt: skip
    await compare("traced /work: instrument_fastapi vs raw instrumentor",
                  (raw_traced, "/work"), (ours_traced, "/work"))  # fmt: skip
    for stop in stops:
        await stop()
    provider.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
