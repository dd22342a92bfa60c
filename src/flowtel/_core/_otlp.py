"""OTLP exporter settings per signal: keyword > per-signal OTEL_* variable > OTEL_* variable."""

from __future__ import annotations

from collections.abc import Mapping

from flowtel._core._options import _Unset, pick
from flowtel._core._parse import (
    COMPRESSIONS,
    PROTOCOLS,
    env,
    parse_bool,
    parse_choice,
    parse_endpoint,
    parse_float,
    parse_headers,
)
from flowtel._core._record import Record

__all__ = ["OtlpSignal", "otlp_endpoint_configured", "resolve_otlp"]


class OtlpSignal(Record):
    """Resolved OTLP settings for one signal (traces, metrics or logs)."""

    protocol: str
    endpoint: str | None  # None: let the exporter use its default / env
    headers: Mapping[str, str]
    timeout_s: float | None
    compression: str | None
    insecure: bool | None

    def __repr__(self) -> str:
        # Headers usually carry credentials (Authorization, api keys): never print their values.
        masked = {key: "<redacted>" for key in self.headers}
        return (
            f"OtlpSignal(protocol={self.protocol!r}, endpoint={self.endpoint!r}, "
            f"headers={masked!r}, timeout_s={self.timeout_s!r}, "
            f"compression={self.compression!r}, insecure={self.insecure!r})"
        )


def resolve_otlp(
    signal: str, kw_endpoint: object, kw_protocol: object, kw_headers: object
) -> OtlpSignal:
    sig = signal.upper()

    src, protocol = pick(
        kw_protocol,
        f"OTEL_EXPORTER_OTLP_{sig}_PROTOCOL"
        if env(f"OTEL_EXPORTER_OTLP_{sig}_PROTOCOL")
        else "OTEL_EXPORTER_OTLP_PROTOCOL",
        "grpc",  # what opentelemetry-python's distro defaults to; also the fastest to start
    )
    protocol = parse_choice(src or "otlp_protocol", protocol, PROTOCOLS)

    endpoint: str | None
    if not isinstance(kw_endpoint, _Unset) and kw_endpoint is not None:
        base = parse_endpoint("otlp_endpoint", kw_endpoint)
        endpoint = base if protocol == "grpc" else base.rstrip("/") + f"/v1/{signal}"
    elif env(f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT"):
        endpoint = parse_endpoint(
            f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT", env(f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT")
        )
    elif env("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = parse_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        endpoint = base if protocol == "grpc" else base.rstrip("/") + f"/v1/{signal}"
    else:
        endpoint = None

    headers: dict[str, str] = {}
    for env_name in ("OTEL_EXPORTER_OTLP_HEADERS", f"OTEL_EXPORTER_OTLP_{sig}_HEADERS"):
        raw = env(env_name)
        if raw is not None:
            headers.update(parse_headers(env_name, raw))
    if not isinstance(kw_headers, _Unset) and kw_headers is not None:
        headers.update(parse_headers("otlp_headers", kw_headers))

    timeout_s: float | None = None
    for env_name in (f"OTEL_EXPORTER_OTLP_{sig}_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"):
        raw = env(env_name)
        if raw is not None:
            # The spec says milliseconds; the Python SDK has historically read seconds. Values
            # above 1000 can only be milliseconds, small ones only seconds.
            number = parse_float(env_name, raw, minimum=0, min_exclusive=True)
            timeout_s = number / 1000.0 if number > 1000 else number
            break

    compression: str | None = None
    for env_name in (f"OTEL_EXPORTER_OTLP_{sig}_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        raw = env(env_name)
        if raw is not None:
            compression = parse_choice(env_name, raw, COMPRESSIONS)
            break

    insecure: bool | None = None
    for env_name in (f"OTEL_EXPORTER_OTLP_{sig}_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"):
        raw = env(env_name)
        if raw is not None:
            insecure = parse_bool(env_name, raw)
            break

    return OtlpSignal(
        protocol=protocol,
        endpoint=endpoint,
        headers=headers,
        timeout_s=timeout_s,
        compression=compression,
        insecure=insecure,
    )


def otlp_endpoint_configured() -> bool:
    return any(
        env(name)
        for name in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        )
    )
