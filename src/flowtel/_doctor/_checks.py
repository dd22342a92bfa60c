"""The Sentry and Prometheus checks of ``flowtel doctor``."""

from __future__ import annotations

import errno
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from typing import NamedTuple

__all__ = ["CheckResult", "check_prometheus", "check_sentry"]


class CheckResult(NamedTuple):
    """One check: its name, whether it passed, and one line saying what was found."""

    name: str
    ok: bool
    detail: str


def check_sentry(dsn: str | None, send_event: bool, timeout_s: float) -> list[CheckResult]:
    """Validate the DSN as sentry-sdk would; with ``send_event``, send one test event."""
    if not dsn:
        return [CheckResult("sentry", True, "no DSN set (Sentry off)")]
    from flowtel.exceptions import ConfigurationError
    from flowtel.sentry._install import check_dsn, masked_dsn

    shown = masked_dsn(dsn)
    try:
        check_dsn(dsn)
    except ConfigurationError as exc:
        return [CheckResult("sentry", False, str(exc))]
    results = [CheckResult("sentry", True, f"DSN {shown} is valid")]
    if send_event:
        results.append(_send_test_event(dsn, shown, timeout_s))
    return results


def _send_test_event(dsn: str, shown: str, timeout_s: float) -> CheckResult:
    from sentry_sdk.utils import Dsn

    auth = Dsn(dsn).to_auth("flowtel-doctor")
    event_id = uuid.uuid4().hex
    event = {
        "event_id": event_id,
        "timestamp": time.time(),
        "level": "info",
        "platform": "python",
        "logger": "flowtel.doctor",
        "message": {"formatted": "flowtel doctor test event"},
    }
    envelope = b"\n".join(
        json.dumps(part).encode() for part in ({"event_id": event_id}, {"type": "event"}, event)
    )
    request = urllib.request.Request(
        auth.get_api_url(),
        data=envelope + b"\n",
        headers={
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": auth.to_header(),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return CheckResult("sentry event", False, f"{shown} answered HTTP {exc.code} {exc.reason}")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return CheckResult("sentry event", False, f"{shown}: {reason}")
    return CheckResult("sentry event", True, f"test event {event_id} accepted (HTTP {status})")


def check_prometheus(host: str, port: int | None) -> CheckResult:
    """Whether ``prometheus_port`` can be bound, or what already listens there."""
    if port is None:
        return CheckResult("prometheus", True, "prometheus_port not set (no /metrics endpoint)")
    if port == 0:
        return CheckResult("prometheus", True, "prometheus_port=0: a free port is chosen at start")
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return CheckResult("prometheus", False, f"cannot bind {host}:{port}: {exc}")
        else:
            return CheckResult("prometheus", True, f"{host}:{port} is free to serve /metrics")
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{probe}:{port}/metrics", timeout=2) as response:
            body = response.read(200_000).decode("utf-8", "replace")
    except (OSError, ValueError):
        body = ""
    if "flowtel_" in body or "target_info" in body:
        return CheckResult(
            "prometheus", True, f"{host}:{port} is in use and serves metrics (a running service?)"
        )
    return CheckResult(
        "prometheus",
        False,
        f"{host}:{port} is already in use by something else: configure_telemetry() would fail; "
        "choose another prometheus_port",
    )
