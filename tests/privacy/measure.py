"""Print the leak / false-positive table of ``docs/reliability.md``.

Run: ``python -m tests.privacy.measure`` (from the repository root). It uses the same
measurements as ``tests/privacy/test_outputs.py``: real outputs, both corpora.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

import flowtel
from tests.privacy import _outputs as out
from tests.support.otlp_receiver import OtlpGrpcReceiver
from tests.support.secrets_corpus import HARMLESS, SECRETS
from tests.support.sentry_server import SentryServer


def _configure(**options: Any) -> flowtel.Telemetry:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "FLOWTEL_")):
            del os.environ[key]
    return flowtel.configure_telemetry(
        force=True, **{"service_name": "privacy", "logging": False, **options}
    )


def main() -> None:
    results: list[out.Outcome] = []
    with OtlpGrpcReceiver() as receiver:
        results += out.measure_otlp(_configure, receiver)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        results.append(out.measure_json_lines(_configure, buffer.getvalue))
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        results.append(out.measure_console(_configure, buffer.getvalue))
    server = SentryServer().start()
    try:
        results.append(out.measure_sentry(_configure, server))
    finally:
        server.stop()
    results.append(out.measure_health(_configure))
    print(f"| output | secret shapes leaked (of {len(SECRETS)}) | harmless values altered "
          f"(of {len(HARMLESS)}) |")  # fmt: skip
    print("| --- | --- | --- |")
    for r in results:
        print(f"| {r.output} | {len(r.leaked)} | {len(r.changed)} |")


if __name__ == "__main__":
    main()
