"""Both corpora through every output: no secret shape leaks, no harmless value is altered.

Everything goes through ``configure_telemetry`` and the real output: OTLP/gRPC decoded from the
test receiver, JSON lines and console lines on stdout, Sentry envelopes from the local
endpoint, ``/health`` from uvicorn. The counts are the table of ``docs/reliability.md``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import flowtel
from tests.privacy import _outputs as out
from tests.support.otlp_receiver import OtlpGrpcReceiver
from tests.support.secrets_corpus import HARMLESS, SECRETS, changed, leaks
from tests.support.sentry_server import SentryServer


class TestCorpora:
    def test_corpora_are_large_enough(self) -> None:
        """At least 75 secret shapes and 40 harmless values, all distinct."""
        assert len(SECRETS) >= 75 and len({s.name for s in SECRETS}) == len(SECRETS)
        assert len(HARMLESS) >= 40 and len({h.name for h in HARMLESS}) == len(HARMLESS)

    def test_detectors_can_fail(self) -> None:
        """The leak detector sees every raw shape; the change detector sees a missing value."""
        assert sorted(leaks([s.text for s in SECRETS])) == sorted(s.name for s in SECRETS)
        assert changed([h.text for h in HARMLESS]) == []
        assert changed("") == [h.name for h in HARMLESS]


class TestEveryOutput:
    """0 leaks and 0 false positives on every output."""

    def test_otlp_traces_logs_metrics(
        self, otlp_grpc: OtlpGrpcReceiver, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Spans, log records and metric points decoded from the gRPC receiver."""
        for result in out.measure_otlp(configure, otlp_grpc):
            assert (result.leaked, result.changed) == ([], []), result.output

    def test_json_lines(
        self, capsys: pytest.CaptureFixture[str], configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """JSON log lines on stdout."""
        result = out.measure_json_lines(configure, lambda: capsys.readouterr().out)
        assert (result.leaked, result.changed) == ([], [])

    def test_console(
        self, capsys: pytest.CaptureFixture[str], configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Console span and log lines."""

        def read() -> str:
            captured = capsys.readouterr()
            return captured.out + captured.err

        result = out.measure_console(configure, read)
        assert (result.leaked, result.changed) == ([], [])

    def test_sentry(
        self, sentry_server: SentryServer, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """Sentry events: transaction, tags, contexts, breadcrumbs, exceptions."""
        result = out.measure_sentry(configure, sentry_server)
        assert (result.leaked, result.changed) == ([], [])

    def test_health(self, configure: Callable[..., flowtel.Telemetry]) -> None:
        """``/health`` top_operations from a real uvicorn."""
        result = out.measure_health(configure)
        assert (result.leaked, result.changed) == ([], [])

    def test_scrub_false_leaks_everywhere(
        self, otlp_grpc: OtlpGrpcReceiver, configure: Callable[..., flowtel.Telemetry]
    ) -> None:
        """With ``scrub=False`` every shape arrives: the checks above can fail."""
        original = out.measure_otlp
        results = original(lambda **kw: configure(scrub=False, **kw), otlp_grpc)
        assert sorted(results[0].leaked) == sorted(s.name for s in SECRETS)
