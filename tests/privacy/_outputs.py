"""Every output that leaves the process, each run with both corpora through configure_telemetry.

Each ``measure_*`` function configures flowtel the way a user does, places every secret shape
and every harmless value where that output carries them, reads what the output really produced
(OTLP decoded from the test receiver, the Sentry envelopes of the local endpoint, the stdout
lines, ``/health`` from uvicorn) and returns the leak and false-positive counts. The tests
assert zeros; ``python -m tests.privacy.measure`` prints the table of ``docs/reliability.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

from opentelemetry import metrics, trace

import flowtel
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.secrets_corpus import HARMLESS, SECRETS, changed, leaks
from tests.support.sentry_server import SentryServer

Configure = Callable[..., flowtel.Telemetry]

_log = logging.getLogger("app.privacy")
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


class Item(NamedTuple):
    """One thing to place: free text, the key it is stored under and the stored value."""

    text: str
    key: str
    value: str


class Outcome(NamedTuple):
    """What one output let through: secret shapes leaked, harmless values altered."""

    output: str
    leaked: list[str]
    changed: list[str]


def items() -> list[Item]:
    """Both corpora as placements."""
    return [Item(s.text, s.key, s.value) for s in SECRETS] + [
        Item(h.text, h.key, h.text) for h in HARMLESS
    ]


def outcome(output: str, blobs: Iterable[str]) -> Outcome:
    text = "\n".join(blobs)
    return Outcome(output, leaks(text), changed(text))


class _Failure(Exception):
    """Raised inside spans so every output sees an exception carrying the text."""


def emit_spans(batch: Iterable[Item]) -> None:
    """Span names, attributes (innocent key, own key, raw OTel API), events, exceptions."""
    for item in batch:
        with flowtel.span(item.text, detail=item.text, **{item.key: item.value}):
            current = trace.get_current_span()
            current.set_attribute("raw.note", item.text)
            current.add_event("raw.event", {"detail": item.text, item.key: item.value})
        try:
            with flowtel.span(item.text, note=item.text):
                raise _Failure(item.text)
        except _Failure:
            pass


def emit_logs(batch: Iterable[Item]) -> None:
    """Log messages, arguments, extras (innocent key and own key) and logged exceptions."""
    for item in batch:
        key = f"app.{item.key}" if item.key in _RESERVED else item.key
        _log.warning(item.text)
        _log.warning("calling upstream with %s", item.text, extra={key: item.value})
        try:
            raise _Failure(item.text)
        except _Failure:
            _log.exception("request failed", extra={"note": item.text})


def emit_metrics(batch: Iterable[Item]) -> None:
    """Metric attribute values and names set by application code on its own instruments."""
    counter = metrics.get_meter("app.privacy").create_counter("app.privacy.calls")
    for item in batch:
        counter.add(1, {"detail": item.text, item.key: item.value})


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def decoded_spans(receiver: OtlpReceiver) -> list[str]:
    out: list[str] = []
    for s in receiver.spans():
        out += [s.name, s.span.status.message, *_strings(s.attributes)]
        for name, attrs in s.events:
            out += [name, *_strings(attrs)]
    return out


def decoded_logs(receiver: OtlpReceiver) -> list[str]:
    out: list[str] = []
    for r in receiver.logs():
        out += [*_strings(r.body), *_strings(r.attributes)]
    return out


def decoded_metric_attributes(receiver: OtlpReceiver) -> list[str]:
    out: list[str] = []
    for name in receiver.metric_names():
        for p in receiver.metric_points(name):
            out += list(_strings(p.attributes))
    return out


def measure_otlp(configure: Configure, receiver: OtlpReceiver) -> list[Outcome]:
    """Traces, logs and metrics over OTLP/gRPC, decoded from the receiver."""
    all_items = items()
    telemetry = configure(
        exporter="otlp",
        otlp_endpoint=receiver.endpoint,
        otlp_protocol="grpc",
        logging=True,
        metric_export_interval_s=3600,
    )
    emit_spans(all_items)
    emit_logs(all_items)
    emit_metrics(all_items)
    assert telemetry.force_flush(timeout_s=30.0)
    receiver.wait_for_spans(2 * len(all_items))
    receiver.wait_for_logs(3 * len(all_items))
    receiver.wait_for_metric("app.privacy.calls")
    return [
        outcome("OTLP traces", decoded_spans(receiver)),
        outcome("OTLP logs", decoded_logs(receiver)),
        outcome("OTLP metrics", decoded_metric_attributes(receiver)),
    ]


def measure_json_lines(configure: Configure, read_stdout: Callable[[], str]) -> Outcome:
    """The JSON log lines on stdout."""
    telemetry = configure(exporter="none", logging=True, json_logs=True)
    emit_logs(items())
    telemetry.shutdown()
    return outcome("JSON log lines", [read_stdout()])


def measure_console(configure: Configure, read_output: Callable[[], str]) -> Outcome:
    """The console exporter: span lines and console log lines."""
    telemetry = configure(exporter="console", console_colors=False, logging=True)
    all_items = items()
    emit_spans(all_items)
    emit_logs(all_items)
    telemetry.shutdown()
    return outcome("console", [read_output()])


def measure_sentry(configure: Configure, server: SentryServer) -> Outcome:
    """Sentry events from failing spans with user tags, contexts and breadcrumbs."""
    import sentry_sdk

    telemetry = configure(exporter="none", sentry_dsn=server.dsn, logging=True)
    all_items = items()
    for start in range(0, len(all_items), 20):  # flush in chunks: queues are bounded
        for item in all_items[start : start + 20]:
            with sentry_sdk.isolation_scope() as scope:
                scope.set_tag("detail", item.text[:190])
                scope.set_context("request_data", {"url": item.text, item.key: item.value})
                _log.info("breadcrumb %s", item.text)
                try:
                    with flowtel.span(item.text, detail=item.text, **{item.key: item.value}):
                        raise _Failure(item.text)
                except _Failure:
                    pass
        assert telemetry.force_flush(timeout_s=30.0)
    server.wait_for_events(len(all_items), timeout_s=30.0)
    return outcome("Sentry events", [i.payload.decode() for i in server.items()])


def measure_health(configure: Configure) -> Outcome:
    """``/health`` from a real uvicorn: failing operations named after every item.

    ``top_operations`` lists five operations, so items fail in batches of five, each batch
    more often than the one before, and ``/health`` is read after each batch.
    """
    from fastapi import FastAPI

    from flowtel.lifecycle import Lifecycle, ReadinessMonitor, StartupOrchestrator, add_k8s_probes
    from tests.lifecycle._server import poll_status, running_server

    telemetry = configure(exporter="none", error_window_minutes=15)
    bodies: list[str] = []
    try:
        app = FastAPI()
        lifecycle = Lifecycle(StartupOrchestrator(), flush=lambda timeout_s: True)
        add_k8s_probes(app, lifecycle=lifecycle, readiness=ReadinessMonitor(), handle_signals=False)
        all_items = items()
        with running_server(app) as client:
            poll_status(client, "/ready", 200)
            for n, start in enumerate(range(0, len(all_items), 5), start=1):
                for item in all_items[start : start + 5]:
                    for _ in range(n):
                        try:
                            with flowtel.span(item.text):
                                raise _Failure(item.text)
                        except _Failure:
                            pass
                bodies.append(client.get("/health").text)
    finally:
        telemetry.shutdown()
    return outcome("/health (uvicorn)", bodies)
