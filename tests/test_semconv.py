"""The semantic-conventions module is the single source of names, and the docs match it."""

from __future__ import annotations

import re
from pathlib import Path

from flowtel import semconv

ROOT = Path(__file__).parents[1]


class TestSemconv:
    def test_reference_doc_in_sync(self) -> None:
        """docs/telemetry-reference.md contains the generated reference verbatim."""
        doc = (ROOT / "docs" / "telemetry-reference.md").read_text()
        assert semconv.reference_markdown() in doc, "run: python -m flowtel reference"

    def test_names_unique_and_well_formed(self) -> None:
        """Metric, span and attribute names are unique, lower-case and dotted."""
        for group in (semconv.METRICS, semconv.SPANS, semconv.EVENTS):
            names = [d.name for d in group]
            assert len(names) == len(set(names))
            for name in names:
                assert re.fullmatch(r"[a-z][a-z0-9_.]*", name), name
        keys = [a.key for a in semconv.ATTRIBUTES]
        assert len(keys) == len(set(keys))

    def test_metric_attributes_are_defined(self) -> None:
        """Every attribute a metric, span or event uses is itself documented."""
        known = {a.key for a in semconv.ATTRIBUTES} | {
            semconv.EXCEPTION_TYPE,
            semconv.EXCEPTION_MESSAGE,
            semconv.EXCEPTION_STACKTRACE,
        }
        for group in (semconv.METRICS, semconv.SPANS, semconv.EVENTS):
            for definition in group:
                assert set(definition.attributes) <= known, definition.name

    def test_durations_are_seconds(self) -> None:
        """Every duration histogram is in seconds, per OTel conventions."""
        for metric in semconv.METRICS:
            if metric.name.endswith("duration"):
                assert metric.unit == "s", metric.name

    def test_prometheus_names(self) -> None:
        """The OTel→Prometheus translation gives the names dashboards use."""
        by_name = {m.name: m for m in semconv.METRICS}
        assert semconv.prometheus_name(by_name["flowtel.operation.calls"]) == (
            "flowtel_operation_calls_total"
        )
        assert semconv.prometheus_name(by_name["flowtel.operation.duration"]) == (
            "flowtel_operation_duration_seconds"
        )
        # Unit "1" gauges end in "ratio" so the scrape exporter and Prometheus' OTLP receiver agree.
        assert semconv.prometheus_name(by_name["flowtel.error_ratio"]) == "flowtel_error_ratio"

    def test_no_literal_telemetry_names_outside_semconv(self) -> None:
        """Source modules use semconv constants, not string literals, for flowtel.* names."""
        pattern = re.compile(r"[\"']flowtel\.[a-z_]+\.[a-z_.]+[\"']")
        offenders = []
        for path in (ROOT / "src" / "flowtel").glob("*.py"):
            if path.name == "semconv.py":
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) and "import" not in line and "getLogger" not in line:
                    offenders.append(f"{path.name}:{lineno}: {line.strip()}")
        assert not offenders, offenders


def test_metric_lookup() -> None:
    """semconv.metric() answers every defined metric and refuses anything else."""
    import pytest

    for definition in semconv.METRICS:
        assert semconv.metric(definition.name) is definition
    with pytest.raises(KeyError):
        semconv.metric("flowtel.not.a.metric")


def test_instruments_take_unit_and_description_from_semconv() -> None:
    """No instrument in src/ restates a unit or description as a literal: they come from one
    definition (semconv.metric), so the exported metadata matches the telemetry reference."""
    creations = re.compile(
        r"create_(?:counter|histogram|up_down_counter|gauge|observable_\w+)\((?P<args>[^)]*)\)",
        re.S,
    )
    offenders = []
    for path in sorted((ROOT / "src" / "flowtel").glob("*.py")):
        for match in creations.finditer(path.read_text()):
            args = match.group("args")
            if re.search(r"\b(?:unit|description)\s*=\s*[\"']", args):
                offenders.append(f"{path.name}: {' '.join(args.split())[:80]}")
    assert offenders == []
