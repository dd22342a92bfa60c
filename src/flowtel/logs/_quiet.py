"""Quiet defaults and non-blocking output for the logging integration.

* :class:`LibraryLevelFilter`: the application's records pass at ``log_level``; records written by
  third-party libraries (code under ``site-packages`` or the standard library) pass only from
  ``library_log_level`` up (``WARNING`` by default), so an HTTP client's per-request INFO lines
  do not flood the console or the log backend.
* :class:`ConsoleLogHandler` prints through the console span processor, so a record appears
  under the span that was current, in order with the span lines.
* :class:`WriterHandler` prints formatted lines (JSON) through a :class:`ConsoleWriter`, so a
  stdout nobody reads never blocks the application.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING

from flowtel.logs._bridge import record_span_context

if TYPE_CHECKING:
    from flowtel._export._console import ConsoleSpanProcessor
    from flowtel._export._console_writer import ConsoleWriter

__all__ = ["ConsoleLogHandler", "LibraryLevelFilter", "WriterHandler"]

_OWN_LOGGERS = ("flowtel", "__main__")
_CACHE_MAX = 4096  # (logger name, code path) pairs are code-defined; bound the cache anyway


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    import sysconfig  # on first use: it costs process start otherwise

    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(sorted(roots))


def _is_library_file(pathname: str) -> bool:
    if "site-packages" in pathname or "dist-packages" in pathname:
        return True
    return pathname.startswith(_library_roots())


def _is_library_record(name: str, pathname: str) -> bool:
    if any(name == own or name.startswith(own + ".") for own in _OWN_LOGGERS):
        return False
    return _is_library_file(pathname)


class LibraryLevelFilter(logging.Filter):
    """Drops third-party records below ``library_level``; the application's pass untouched.

    "Third-party" is decided by where the record was written (``record.pathname``), not by the
    logger's name, so it needs no list: code installed under ``site-packages`` or in the
    standard library is a library. flowtel's own loggers count as the application's.

    Cheap per record: a record at or above ``library_level`` passes on one comparison; below
    it, the decision is looked up per (logger name, code path), both code-defined.

    Args:
        library_level: the minimum level of library records kept.
    """

    def __init__(self, library_level: int) -> None:
        super().__init__()
        self.library_level = library_level
        self._library: dict[tuple[str, str], bool] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep the record unless a library wrote it below ``library_level``."""
        if record.levelno >= self.library_level:
            return True
        key = (record.name, record.pathname or "")
        library = self._library.get(key)
        if library is None:
            library = _is_library_record(*key)
            if len(self._library) < _CACHE_MAX:
                self._library[key] = library
        return not library


class ConsoleLogHandler(logging.Handler):
    """Prints formatted records through the console span processor (never blocks)."""

    def __init__(self, console: ConsoleSpanProcessor, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and hand it to the console, under its span."""
        try:
            self.console.write_log(self.format(record), record_span_context(record))
        except Exception:
            self.handleError(record)


class WriterHandler(logging.Handler):
    """Writes one formatted line per record through a non-blocking :class:`ConsoleWriter`."""

    def __init__(self, writer: ConsoleWriter, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and queue it (dropped and counted if the stream is stuck)."""
        try:
            self.writer.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        """Wait (at most 1 s) until what is queued is written."""
        self.writer.flush(1.0)

    def close(self) -> None:
        """Write out what is queued (bounded), then stop the writer."""
        self.writer.close(1.0)
        super().close()
