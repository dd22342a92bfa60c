"""The in-process Prometheus scrape endpoint, handed over intact across reconfigurations.

Why a hand-over: reconfiguration builds the new pipeline *before* the old one shuts down (so a
failed build leaves the old one working). With the same ``prometheus_port`` the new reader
cannot bind a port the old one still holds, so it takes over the running HTTP server instead:
the server serves prometheus_client's registry, where the old reader's collector is replaced
by the new one's. The server closes when the last reader using it shuts down, so a failed
build (whose half-built reader is shut down) leaves the old endpoint serving.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from flowtel.exceptions import ConfigurationError

__all__ = ["prometheus_reader"]


@dataclass
class _Server:
    server: Any
    thread: threading.Thread
    users: list[Any]  # readers scraped through it; it closes when the last one shuts down


_servers: dict[tuple[str, int], _Server] = {}
_lock = threading.Lock()


def prometheus_reader(port: int | None, host: str) -> tuple[Any, int]:
    """A ``PrometheusMetricReader`` and the port its scrape endpoint listens on.

    Raises:
        ConfigurationError: the ``prometheus`` extra is missing or the port cannot be bound.
    """
    try:
        import prometheus_client
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError:
        raise ConfigurationError(
            "prometheus_port",
            port,
            "a port, with the 'prometheus' extra installed (pip install 'flowtel[prometheus]')",
        ) from None

    class ScrubbingPrometheusReader(PrometheusMetricReader):
        """Serves what the SDK collected with every data point's attributes scrubbed, like
        every other output: a scrape endpoint is an output too."""

        def _receive_metrics(self, metrics_data: Any, *args: Any, **kwargs: Any) -> None:
            from flowtel._export._scrub import scrub_metrics

            try:
                metrics_data = scrub_metrics(metrics_data)
            except Exception:  # never serve unscrubbed: serve nothing this time
                return
            super()._receive_metrics(metrics_data, *args, **kwargs)

    reader = ScrubbingPrometheusReader()
    with _lock:
        running = _servers.get((host, port)) if port else None
        if running is not None and running.thread.is_alive():
            running.users.append(reader)
            entry = running
        else:
            try:
                server, thread = prometheus_client.start_http_server(port or 0, addr=host)
            except OSError as exc:
                reader.shutdown()
                raise ConfigurationError(
                    "prometheus_port", port, f"a free port to bind ({exc})"
                ) from None
            entry = _Server(server, thread, [reader])
            _servers[(host, int(server.server_address[1]))] = entry
    original_shutdown = reader.shutdown

    def shutdown(timeout_millis: float = 30_000, **kwargs: Any) -> None:
        with _lock:
            if reader in entry.users:
                entry.users.remove(reader)
            last = not entry.users
            key = (host, int(entry.server.server_address[1]))
            if last and _servers.get(key) is entry:
                del _servers[key]
        if last:
            entry.server.shutdown()
            entry.server.server_close()
            entry.thread.join(timeout=1.0)
        original_shutdown(timeout_millis=timeout_millis, **kwargs)

    reader.shutdown = shutdown  # type: ignore[method-assign]
    return reader, int(entry.server.server_address[1])
