"""The demo: the FastAPI agent service from ``agent_service.py``, served by real uvicorn on a free
loopback port, driven by a real HTTP client, printing what flowtel recorded.

Run with ``make demo``. No collector is needed: the console exporter (the default without an OTLP
endpoint) prints one line per finished span, indented by nesting. At the end it prints the
probe answers during startup, ``/health``, and ``flowtel.get_error_stats()``.
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
        for question in ["what is flowtel?", "an unknown topic", "   ", "why OTLP?"]:
            response = client.post("/ask", params={"question": question})
            print(f"POST /ask {question!r:<20} -> {response.status_code}")
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
    print(f"\nget_error_stats(): {stats.total} operations, {stats.errors} failed "
          f"({stats.error_rate:.1%})")
    for (component, operation), op in sorted(stats.by_operation.items()):
        print(f"  {component:<28} {operation:<40} {op.total:>3} calls {op.errors:>2} errors")
    server.should_exit = True
    thread.join(timeout=10)
    telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
