"""Run every check and print the report; the exit status says whether anything is wrong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from flowtel._core._options import Options
from flowtel._core._settings import resolve
from flowtel._doctor._checks import CheckResult, check_prometheus, check_sentry
from flowtel._doctor._otlp import probe_otlp
from flowtel._doctor._sources import config_rows
from flowtel.exceptions import ConfigurationError

__all__ = ["run_doctor"]


def run_doctor(
    arguments: Mapping[str, Any],
    *,
    send_test_event: bool = False,
    timeout_s: float = 5.0,
    out: TextIO,
) -> int:
    """Print the configuration and the checks to ``out``; return 0 if all passed, else 1.

    Args:
        arguments: ``configure_telemetry()`` keywords given on the command line.
        send_test_event: also send a test event to Sentry.
        timeout_s: per network check.
        out: where to print.
    """
    try:
        settings = resolve(Options(**arguments))
    except ConfigurationError as exc:
        print(f"✗ configuration: {exc}", file=out)
        print("\n1 problem", file=out)
        return 1
    print("flowtel doctor\n\nconfiguration (scrubbed):", file=out)
    rows = config_rows(settings, arguments)
    width = max(len(r.option) for r in rows)
    value_width = min(48, max(len(r.value) for r in rows))
    for row in rows:
        print(f"  {row.option:<{width}}  {row.value:<{value_width}}  {row.source}", file=out)

    results: list[CheckResult] = []
    if settings.exporter == "otlp":
        try:
            probes = probe_otlp(dict(settings.otlp), dict(settings.resource_attributes), timeout_s)
        except Exception as exc:  # a doctor reports; it does not crash with a traceback
            results.append(CheckResult("otlp", False, f"{type(exc).__name__}: {exc}"))
            probes = []
        for probe in probes:
            results.append(CheckResult(f"otlp {probe.signal}", probe.ok, probe.detail))
    else:
        why = (
            "no OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT): spans go to the console"
            if settings.console_fallback
            else f"exporter={settings.exporter}: nothing is sent over OTLP"
        )
        results.append(CheckResult("otlp", True, why))
    results += check_sentry(settings.sentry_dsn, send_test_event, timeout_s)
    results.append(check_prometheus(settings.prometheus_host, settings.prometheus_port))

    print("\nchecks:", file=out)
    for result in results:
        print(f"  {'✓' if result.ok else '✗'} {result.name}: {result.detail}", file=out)
    problems = [r for r in results if not r.ok]
    if problems:
        print(f"\n{len(problems)} problem{'s' if len(problems) > 1 else ''}:", file=out)
        for problem in problems:
            print(f"✗ {problem.name}: {problem.detail}", file=out)
        return 1
    print("\nall checks passed", file=out)
    return 0
