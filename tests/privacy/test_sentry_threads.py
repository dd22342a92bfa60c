"""Sentry ``threads`` stacks: source lines of a stack attached to a log event are scrubbed."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import flowtel
from tests.support.sentry_server import SentryServer

_SOURCE = """
import logging

def report():
    dsn = "postgres://app:Thr3adSecretPw@db:5432/x"  # a literal secret on a source line
    logging.getLogger("app.threads").error("lookup failed for %s", "x", exc_info=True)
"""


class TestThreads:
    def test_stack_source_lines_are_scrubbed(
        self,
        tmp_path: Path,
        sentry_server: SentryServer,
        configure: Callable[..., flowtel.Telemetry],
    ) -> None:
        """``log.error(..., exc_info=True)`` outside ``except``: its stack goes out scrubbed."""
        module_path = tmp_path / "leaky_module.py"
        module_path.write_text(_SOURCE)
        spec = importlib.util.spec_from_file_location("leaky_module", module_path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        telemetry = configure(exporter="none", sentry_dsn=sentry_server.dsn, logging=True)
        logging.getLogger("app.threads").setLevel(logging.INFO)
        module.report()
        assert telemetry.force_flush(timeout_s=10.0)
        [event] = sentry_server.wait_for_events(1)
        threads = event["threads"]["values"]
        frames = threads[0]["stacktrace"]["frames"]
        assert any("dsn = " in str(f.get("pre_context", "")) + str(f.get("context_line", ""))
                   for f in frames)  # fmt: skip
        payload = b"".join(i.payload for i in sentry_server.items())
        assert b"Thr3adSecretPw" not in payload
        assert b"[REDACTED]" in payload
