"""A small flowtel-instrumented FastAPI app for multi-process servers (gunicorn, uvicorn).

Configured at import, as users do, so ``gunicorn --preload`` configures it once in the master
before forking. ``/work`` makes a traced call, a log record and (with ``?fail=1``) an error;
``/whoami`` says which worker answered and what ``get_error_stats`` counts there.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI, HTTPException

import flowtel
from flowtel.fastapi import instrument_fastapi
from flowtel.lifecycle import add_k8s_probes

telemetry = flowtel.configure_telemetry(
    service_name="multiworker",
    exporter="otlp",
    otlp_protocol="http/protobuf",
    metric_export_interval_s=0.5,
    batch_schedule_delay_s=0.1,
    logging=True,
)
_log = logging.getLogger("multiworker")
app = FastAPI()


@flowtel.traced(component="app", operation="work")
def work(fail: bool) -> str:
    _log.warning("work done in %d", os.getpid())
    if fail:
        raise RuntimeError("asked to fail")
    return "ok"


@app.get("/work")
async def work_route(fail: int = 0) -> dict[str, object]:
    try:
        return {"pid": os.getpid(), "result": work(bool(fail))}
    except RuntimeError:
        raise HTTPException(status_code=500, detail="failed") from None


@app.get("/whoami")
async def whoami() -> dict[str, object]:
    work(False)  # so the worker that answers has a span, a log record and metrics to export
    stats = flowtel.get_error_stats(last_minutes=5, component="app")
    return {
        "pid": os.getpid(),
        "instance": telemetry.resource.attributes["service.instance.id"],
        "total": stats.total,
        "errors": stats.errors,
    }


instrument_fastapi(app)
add_k8s_probes(app, drain_s=float(os.environ.get("FLOWTEL_TEST_DRAIN_S", "0.5")))
