"""An agent's upstream call behind retry, timeout, an adaptive rate limiter and a breaker.

Run: ``PYTHONPATH=src python examples/resilience_agent.py`` (about 2 s; loopback only).

A scripted "LLM API" runs on 127.0.0.1: it first answers 429 with ``Retry-After: 1``, then
hangs past the client's timeout, then answers. Later it goes down (503) until the breaker opens.
The script prints the span events and the resilience metrics flowtel recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel import semconv
from flowtel.resilience import (
    CircuitOpenError,
    CountWindow,
    circuit_breaker,
    rate_limit,
    retry,
    timeout,
)

SCRIPT = ["429", "hang", "ok", "503", "503", "503", "503", "503"]


class FakeLLM(BaseHTTPRequestHandler):
    """Answers POST /v1/complete following SCRIPT, one step per request."""

    step = iter(SCRIPT)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        action = next(self.step, "ok")
        if action == "hang":
            time.sleep(0.5)  # the server is slow; the client's 0.3 s timeout fires first
        status = {"429": 429, "503": 503}.get(action, 200)
        payload = json.dumps({"text": f"echo: {body['prompt']}"}).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)  # fails when the client timed out and hung up

    def log_message(self, *args: Any) -> None:
        pass


llm_limiter = rate_limit(5, adaptive=True, name="llm-api")


@retry(attempts=4, backoff_s=0.1, max_delay_s=2.0, name="llm.complete")
@timeout(0.3, name="llm.complete")
@llm_limiter
@circuit_breaker("llm-api", window=CountWindow(4), minimum_calls=4, open_for_s=30)
async def complete(client: httpx.AsyncClient, prompt: str) -> str:
    response = await client.post("/v1/complete", json={"prompt": prompt})
    response.raise_for_status()  # HTTPStatusError carries the response and its Retry-After
    return str(response.json()["text"])


async def agent(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        with flowtel.span("agent.step", step=1):
            print("answer:", await complete(client, "plan the trip"))
        for step in (2, 3):
            with flowtel.span("agent.step", step=step):
                try:
                    await complete(client, "book it")
                except (httpx.HTTPStatusError, CircuitOpenError) as exc:
                    print(f"step {step} failed: {type(exc).__name__}: {exc}".split("\n")[0])


def main() -> None:
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    telemetry = flowtel.configure_telemetry(
        service_name="resilience-demo",
        exporter="none",
        span_exporters=[spans],
        metric_readers=[reader],
        logging=False,
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    asyncio.run(agent(f"http://127.0.0.1:{server.server_port}"))
    print(
        f"elapsed: {time.monotonic() - started:.1f}s, limiter rate now "
        f"{llm_limiter.rate_per_s:.2f}/s\n"
    )
    telemetry.force_flush(timeout_s=5)

    for span in spans.get_finished_spans():
        if span.name != "agent.step":
            continue
        print(f"span agent.step step={dict(span.attributes or {}).get('step')}")
        for event in span.events:
            attrs = " ".join(f"{k}={_fmt(v)}" for k, v in dict(event.attributes or {}).items())
            print(f"  event {event.name} {attrs}")

    print("\nmetrics")
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            if sm.scope.name != "flowtel.resilience":
                continue
            for metric in sm.metrics:
                point: Any
                for point in metric.data.data_points:
                    attrs = ",".join(f"{k.split('.')[-1]}={v}" for k, v in point.attributes.items())
                    value = getattr(point, "value", None)
                    shown = _fmt(value) if value is not None else f"count={point.count}"
                    if metric.name != semconv.METRIC_RATE_LIMITER_PERMITS:
                        print(f"  {metric.name}{{{attrs}}} {shown}")
    server.shutdown()
    telemetry.shutdown()


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
