"""Every module that writes data out of the process is a known, scrubbed output.

Sinks are found in the source, not listed by hand: a module that writes to a stream, answers
an HTTP body, hands data to an exporter or to sentry-sdk, or serves a scrape endpoint. Each must
map to an output measured by ``test_outputs.py`` (or say why it carries no telemetry), so a new
output fails here until it is scrubbed and measured.
"""

from __future__ import annotations

import re
from pathlib import Path

_SRC = Path(__file__).parents[2] / "src" / "flowtel"
_SINK = re.compile(
    r"\.write\(|capture_event\(|http\.response\.body|json\.dumps\(|start_http_server|"
    r"\.exporter\.export\(|sys\.stdout|sys\.stderr|print\("
)

# module -> the output of the measured table that covers it, or why it is not telemetry.
OUTPUTS: dict[str, str] = {
    "_export/_prometheus.py": "Prometheus /metrics (data point attributes scrubbed per scrape)",
    "_pipelines.py": "console (wires stdout/stderr into the console processor)",
    "_export/_console.py": "console",
    "_export/_console_writer.py": "console and JSON log lines (the writer thread)",
    "_export/_guarded.py": "OTLP traces, OTLP logs, OTLP metrics",
    "lifecycle/_probes.py": "/health (uvicorn)",
    "logs/_handler.py": "JSON log lines, console",
    "logs/_stdout.py": "JSON log lines, console",
    "sentry/_bridge.py": "Sentry events",
    "sentry/_event.py": "Sentry events (the event scrubber itself)",
    "semconv.py": "not telemetry: prints the telemetry reference (python -m flowtel.semconv)",
    "cli.py": "not telemetry: the flowtel command's own report to the operator",
    "_doctor/_checks.py": "not telemetry: flowtel doctor's report to the operator",
    "_doctor/_run.py": "not telemetry: flowtel doctor's report to the operator",
}
# Outputs known to be unscrubbed; listed so they are visible, and so a new one still fails.
KNOWN_GAPS: dict[str, str] = {}


def _sinks() -> set[str]:
    found = set()
    for path in _SRC.rglob("*.py"):
        if _SINK.search(path.read_text(encoding="utf-8")):
            found.add(path.relative_to(_SRC).as_posix())
    return found


class TestEveryOutputIsKnown:
    def test_no_unknown_output(self) -> None:
        """Each module with a sink is a measured output, not telemetry, or a listed gap."""
        unknown = _sinks() - set(OUTPUTS) - set(KNOWN_GAPS)
        assert not unknown, f"new outputs: scrub them and add them to tests/privacy: {unknown}"

    def test_the_lists_are_current(self) -> None:
        """A listed module still has a sink (the list does not rot)."""
        assert set(OUTPUTS) | set(KNOWN_GAPS) <= _sinks()
