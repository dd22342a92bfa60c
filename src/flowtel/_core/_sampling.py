"""The ``sampling=`` option: a head rate plus the rules that keep a whole local trace.

Why a record of its own: tail sampling has a handful of knobs (rules, buffer bounds, root
timeout) that belong together, are validated together, and travel as one typed value from
``configure_telemetry`` to the processor in ``flowtel.tracing._tail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from flowtel._core._parse import parse_bool, parse_float, parse_int
from flowtel.exceptions import ConfigurationError

__all__ = ["Sampling", "parse_sampling"]

_MAX_TIMEOUT_S: Final = 3600.0


class Sampling(NamedTuple):
    """Tail sampling: ``configure_telemetry(sampling=Sampling(head_rate=0.1, slow_root_s=2))``.

    A trace the head rate did not pick is buffered until its local root span ends, then exported
    whole when a rule matched, or dropped whole.

    Attributes:
        head_rate: fraction of traces kept whatever happens, 0..1 (None: ``sample_rate``).
        errors: keep every trace with a span that failed or recorded an exception.
        slow_root_s: keep every trace whose local root took at least this long (None: off).
        max_traces: undecided traces buffered at once; more are decided by the head rate.
        max_spans: spans buffered at once, across traces; same overflow rule.
        root_timeout_s: a trace whose root has not ended after this long is decided with what
            has been seen (its spans are exported if a rule matched, else dropped).
    """

    head_rate: float | None = None
    errors: bool = True
    slow_root_s: float | None = None
    max_traces: int = 1024
    max_spans: int = 4096
    root_timeout_s: float = 60.0


_ACCEPTED: Final = (
    "a flowtel.tracing.Sampling, a mapping or 'key=value,...' with keys "
    + ", ".join(Sampling._fields)
)


def parse_sampling(option: str, value: object, sample_rate: float | None) -> Sampling | None:
    """Validate ``value`` (None, a :class:`Sampling`, a mapping or ``key=value,...``).

    ``head_rate`` defaults to ``sample_rate``; both given and different is an error.

    Raises:
        ConfigurationError: an unknown key or a value out of range.
    """
    if value is None:
        return None
    raw: Mapping[str, Any]
    if isinstance(value, Sampling):
        raw = value._asdict()
    elif isinstance(value, Mapping):
        raw = dict(value)
    elif isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigurationError(option, value, _ACCEPTED)
        raw = {k.strip(): v.strip() for k, _, v in pairs}
    else:
        raise ConfigurationError(option, value, _ACCEPTED)
    unknown = set(raw) - set(Sampling._fields)
    if unknown:
        raise ConfigurationError(f"{option}.{sorted(unknown)[0]}", value, _ACCEPTED)
    defaults = Sampling()

    def get(key: str) -> Any:
        found = raw.get(key, getattr(defaults, key))
        return None if found in (None, "", "none", "None") else found

    head = get("head_rate")
    head_rate = (
        None if head is None else parse_float(f"{option}.head_rate", head, minimum=0, maximum=1)
    )
    if head_rate is not None and sample_rate is not None and head_rate != sample_rate:
        raise ConfigurationError(
            f"{option}.head_rate", head_rate, f"the same as sample_rate ({sample_rate}) or unset"
        )
    slow = get("slow_root_s")
    return Sampling(
        head_rate=head_rate if head_rate is not None else sample_rate,
        errors=parse_bool(f"{option}.errors", get("errors")),
        slow_root_s=None
        if slow is None
        else parse_float(
            f"{option}.slow_root_s", slow, minimum=0, maximum=_MAX_TIMEOUT_S, min_exclusive=True
        ),
        max_traces=parse_int(
            f"{option}.max_traces", get("max_traces"), minimum=1, maximum=1_000_000
        ),
        max_spans=parse_int(f"{option}.max_spans", get("max_spans"), minimum=1, maximum=10_000_000),
        root_timeout_s=parse_float(
            f"{option}.root_timeout_s",
            get("root_timeout_s"),
            minimum=0,
            maximum=_MAX_TIMEOUT_S,
            min_exclusive=True,
        ),
    )
