"""The ``flowtel`` command (also ``python -m flowtel``).

* ``flowtel doctor``: print the effective configuration (scrubbed, with where each value came
  from), send a test span, metric point and log record to the OTLP endpoint and say what it
  answered, validate the Sentry DSN (``--send-test-event`` sends one), check the Prometheus port.
  Exits 1 with one line per problem.
* ``flowtel reference``: print the telemetry reference (``docs/telemetry-reference.md``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowtel", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser(
        "doctor",
        help="check the configuration, the OTLP endpoint, Sentry and the Prometheus port",
        description="Options override the environment, as configure_telemetry() keywords do.",
    )
    doctor.add_argument("--service-name")
    doctor.add_argument("--otlp-endpoint")
    doctor.add_argument("--otlp-protocol", choices=("grpc", "http/protobuf"))
    doctor.add_argument("--sentry-dsn")
    doctor.add_argument("--prometheus-port", type=int)
    doctor.add_argument(
        "--send-test-event", action="store_true", help="also send one test event to Sentry"
    )
    doctor.add_argument("--timeout-s", type=float, default=5.0, help="per check (default 5)")
    commands.add_parser("reference", help="print the telemetry reference (markdown)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``flowtel`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "reference":
        from flowtel import semconv

        sys.stdout.write(semconv.reference_markdown())
        return 0
    from flowtel._doctor import run_doctor

    given = {
        key: getattr(args, key)
        for key in (
            "service_name",
            "otlp_endpoint",
            "otlp_protocol",
            "sentry_dsn",
            "prometheus_port",
        )
        if getattr(args, key) is not None
    }
    return run_doctor(
        given, send_test_event=args.send_test_event, timeout_s=args.timeout_s, out=sys.stdout
    )
