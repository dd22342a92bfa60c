"""@traced's decoration-time attributes, validated once per configuration instead of per call.

The shortcut must be invisible: the exported span is the same as with the SDK's own validation,
span limits still apply, and a span processor that may read attributes in ``on_start`` turns it
off so that processor sees them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import flowtel
from flowtel import semconv
from flowtel.tracing import _provider as _provider


class StartReader(SpanProcessor):
    """A user processor that reads attributes when spans start."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.seen.append(dict(span.attributes or {}))

    def on_end(self, span: ReadableSpan) -> None:
        pass


@pytest.fixture
def configure(configure: Callable[..., flowtel.Telemetry]) -> Callable[..., InMemorySpanExporter]:
    """The shared factory, exporting to a fresh in-memory exporter per configuration."""

    def make(**options: Any) -> InMemorySpanExporter:
        exporter = InMemorySpanExporter()
        configure(service_name="preset", exporter="none", span_exporters=[exporter], **options)
        return exporter

    return make


def _site(fn: Any) -> Any:
    """The _Site behind a @traced function (held by the wrapper's closure)."""
    for cell in fn.__closure__ or ():
        if type(cell.cell_contents).__name__ == "_Site":
            return cell.cell_contents
    raise AssertionError("no site")


@flowtel.traced(component="billing", operation="charge", attributes={"tier": "gold", "n": 3})
def charge() -> int:
    return 1


@flowtel.traced(component="billing", operation="refund")
async def refund() -> int:
    return 2


def _exported(exporter: InMemorySpanExporter) -> list[dict[str, Any]]:
    return [dict(span.attributes or {}) for span in exporter.get_finished_spans()]


def test_same_span_as_the_sdk_path(configure: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preset path and the SDK's validating path export identical attributes, in order."""
    exporter = configure()
    charge()
    assert _site(charge).preset is not None  # the shortcut was taken
    fast = _exported(exporter)
    monkeypatch.setattr(_provider, "_layout", False)  # as on an SDK with another layout
    exporter = configure()
    charge()
    assert _site(charge).preset is None
    slow = _exported(exporter)
    assert fast == slow
    assert [list(a) for a in fast] == [list(a) for a in slow]  # same order too
    (attributes,) = fast
    assert attributes[semconv.COMPONENT] == "billing"
    assert attributes[semconv.CODE_FUNCTION].endswith("charge")
    assert attributes[semconv.CODE_LINENO] > 0
    assert attributes["tier"] == "gold" and attributes["n"] == 3


def test_coroutines_take_the_shortcut_too(configure: Any) -> None:
    import asyncio

    exporter = configure()
    assert asyncio.run(refund()) == 2
    assert _site(refund).preset is not None
    (attributes,) = _exported(exporter)
    assert attributes[semconv.OPERATION] == "refund"


def test_a_processor_reading_attributes_at_start_turns_it_off(configure: Any) -> None:
    """Added at configuration or later, such a processor sees the attributes in on_start."""
    reader = StartReader()
    configure(span_processors=[reader])
    charge()
    assert _site(charge).preset is None
    assert reader.seen[-1][semconv.OPERATION] == "charge"

    exporter = configure()
    charge()
    assert _site(charge).preset is not None
    late = StartReader()
    from flowtel._core._telemetry import HUB

    flowtel_provider = HUB.current.tracer_provider  # type: ignore[union-attr]
    flowtel_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))  # blind
    charge()
    assert _site(charge).preset is not None
    flowtel_provider.add_span_processor(late)
    charge()
    assert _site(charge).preset is None
    assert late.seen == [dict(_exported(exporter)[0])]


def test_span_limits_still_apply(configure: Any) -> None:
    """Truncation matches the SDK's; more attributes than the limit go the SDK's way (dropped)."""
    exporter = configure(max_attribute_length=4)
    charge()
    assert _site(charge).preset is not None
    (attributes,) = _exported(exporter)
    assert attributes[semconv.COMPONENT] == "bill"
    assert attributes["tier"] == "gold"

    exporter = configure(max_span_attributes=2)
    charge()
    assert _site(charge).preset is None
    (span,) = exporter.get_finished_spans()
    assert len(span.attributes or {}) == 2
    assert span.dropped_attributes > 0


def test_sampled_out_spans_are_left_alone(configure: Any) -> None:
    exporter = configure(sample_rate=0.0, count_unsampled=False)
    assert charge() == 1
    assert exporter.get_finished_spans() == ()


def test_record_args_sites_use_the_sdk_path(configure: Any) -> None:
    @flowtel.traced(record_args=True)
    def with_args(x: int) -> int:
        return x

    exporter = configure()
    with_args(5)
    assert _site(with_args).preset is None
    (attributes,) = _exported(exporter)
    assert attributes[semconv.ARG_PREFIX + "x"] == 5
