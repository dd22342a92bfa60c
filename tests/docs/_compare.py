"""Compare the output a page shows with the output its block really printed.

Both sides are normalised the same way, so the page can show a real run while what varies
from run to run is compared as a placeholder:

| what varies                                | becomes        |
| ------------------------------------------ | -------------- |
| 32-hex trace ids                           | ``<trace_id>`` |
| 16-hex span ids                            | ``<span_id>``  |
| the console's 8-hex trace prefix           | ``<trace8>``   |
| UUIDs (``service.instance.id``)            | ``<uuid>``     |
| ISO timestamps, clock times                | ``<timestamp>``, ``<time>`` |
| durations (``1.15ms``, ``0.80s``, ``30µs``) and ``timedelta``s | ``<duration>`` |
| loopback and localhost ports               | ``127.0.0.1:<port>`` |
| absolute paths                             | ``<path>/``    |
| line numbers inside flowtel's own modules  | ``<line>``     |
| process ids (``[12156]``)                  | ``[<pid>]``    |

Runs of spaces count as one (tables realign when a duration changes width), trailing blank
lines are ignored, and a line that is only ``...`` matches any number of lines (a trimmed
traceback, an elided stretch of output).
"""

from __future__ import annotations

import difflib
import re

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, flags), replacement)
    for pattern, replacement, flags in (
        (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>", 0),
        (r"\b[0-9a-f]{32}\b", "<trace_id>", 0),
        (r"\b[0-9a-f]{16}\b", "<span_id>", 0),
        (r"^[0-9a-f]{8}(?= )", "<trace8>", re.MULTILINE),
        (r"\[trace [0-9a-f]{8}\]", "[trace <trace8>]", 0),
        (r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?", "<timestamp>", 0),
        (r"datetime\.timedelta\([^)]*\)", "<duration>", 0),
        (r"\b\d+:\d\d:\d\d\.\d{6}\b", "<duration>", 0),  # str(timedelta)
        (r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b", "<time>", 0),
        (r"\b\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s)\b", "<duration>", 0),
        (r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):\d+", r"\1:<port>", 0),
        (r"\b(flowtel(?:\.[\w<>]+)+):\d+\b", r"\1:<line>", 0),
        (r"\b(flowtel/[\w/]+\.py):\d+\b", r"\1:<line>", 0),
        (r"(?<=[\"'\s(=])/(?:[\w.@+-]+/)+", "<path>/", 0),
        (r"\[\d{2,}\]", "[<pid>]", 0),
        (r"[ \t]+", " ", 0),
    )
)


def normalise(text: str) -> list[str]:
    """The lines of ``text`` with every varying part replaced by its placeholder."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _matches(expected: list[str], actual: list[str], *, partial: bool = False) -> bool:
    """``expected`` matches ``actual`` line by line; a ``...`` line matches any run of lines."""
    pattern = "".join(
        r"(?:[^\n]*\n)*?" if line.strip() == "..." else re.escape(line + "\n") for line in expected
    )
    if partial:  # the shown lines are one stretch of the output
        pattern = r"(?:[^\n]*\n)*?" + pattern + r"(?:[^\n]*\n)*"
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def mismatch(expected: str, actual: str, *, partial: bool = False) -> str | None:
    """None when the shown output matches the real one, else a diff of the normalised lines.

    With ``partial``, the shown lines need only appear as one stretch of the real output.
    """
    want, got = normalise(expected), normalise(actual)
    if _matches(want, got, partial=partial):
        return None
    diff = difflib.unified_diff(want, got, "shown in the docs", "printed", lineterm="")
    return "\n".join(diff) + "\n\nreal output:\n" + actual
