"""The demo: the FastAPI agent service from ``agent_service.py``, served by real uvicorn on a free
loopback port, driven by a real HTTP client, printing what flowtel recorded.

Run with ``make demo``. No collector is needed: the console exporter (the default without an OTLP
endpoint) prints the spans as a tree, with their attributes, events and log records. At the end
it prints the probe answers during startup, ``/health``, ``flowtel.get_error_stats()``, the
console's per-operation summary and what to do next.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("AGENT_VECTOR_CONNECT_S", "0.4")
os.environ.setdefault("AGENT_DRAIN_S", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import uvicorn
from agent_service import app, telemetry

import flowtel


def serve() -> tuple[uvicorn.Server, str, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{port}", thread


def main() -> int:
    server, base, thread = serve()
    seen: list[str] = []
    with httpx.Client(base_url=base, timeout=5) as client:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # poll, as a kubelet would
            try:
                status = client.get("/startup").status_code
            except httpx.TransportError:
                status = 0  # not listening yet
            if status and (not seen or seen[-1] != str(status)):
                seen.append(str(status))
            if status == 200:
                break
            time.sleep(0.05)
        print(f"\n/startup while the service started: {' -> '.join(seen)}")
        codes = []
        for question in ["what is flowtel?", "an unknown topic", "   ", "why OTLP?"]:
            response = client.post("/ask", params={"question": question})
            codes.append(response.status_code)
            print(f"POST /ask {question!r:<20} -> {response.status_code}")
        client_errors = sum(400 <= c < 500 for c in codes)
        server_errors = sum(c >= 500 for c in codes)
        print(f"requests made: {len(codes)}, {client_errors} client errors (4xx), "
              f"{server_errors} server errors (5xx)")
        health = client.get("/health").json()
    summary = {
        "status": health.get("status"),
        "state": health.get("state"),
        "readiness": {k: v.get("status") for k, v in health.get("checks", {}).items()},
        "startup": {c["name"]: c["outcome"] for c in health.get("startup", {}).get("checks", [])},
        "error_rate": (health.get("errors") or {}).get("error_rate"),
    }
    print("/health (summary):", json.dumps(summary))

    stats = flowtel.get_error_stats(last_minutes=15)
    entries = stats.entries  # one per request: what /health and the alerts use
    print(f"\nget_error_stats().entries: {entries.total} requests, {entries.errors} failed "
          f"({entries.error_rate:.1%}); a 4xx is the client's error, not the service's")
    print(f"get_error_stats(): {stats.total} operations, {stats.errors} failed "
          f"({stats.error_rate:.1%}); spans, to find which function failed")
    for (component, operation), op in sorted(stats.by_operation.items()):
        print(f"  {component:<28} {operation:<40} {op.total:>3} calls {op.errors:>2} errors")
    server.should_exit = True
    thread.join(timeout=10)
    telemetry.shutdown()  # prints the console's per-operation summary
    print(NEXT_STEPS)
    return 0


NEXT_STEPS = """
Next steps
  * See it in Grafana: docker compose -f collector/docker-compose.yaml up --build -d, then
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 make demo  -> http://localhost:3000
  * Check your own configuration and collector: .venv/bin/flowtel doctor
  * Read on: docs/tracing.md (this console), docs/configuration.md, docs/stack.md,
    docs/migrating.md (coming from the ResearchFlow Agents utilities)"""


if __name__ == "__main__":
    sys.exit(main())
