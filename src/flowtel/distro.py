"""The zero-code path: ``opentelemetry-instrument`` configures flowtel.

Installed with flowtel, two entry points make ``opentelemetry-instrument python app.py`` (or
``opentelemetry-instrument uvicorn app:app``) build the same pipeline as
``flowtel.configure_telemetry()``, from the ``OTEL_*`` and ``FLOWTEL_*`` environment variables:
scrubbing, exact error statistics, Sentry when ``SENTRY_DSN`` is set, bounded shutdown.

* ``opentelemetry_distro = flowtel.distro:FlowtelDistro``: the distro; it sets nothing itself
  (flowtel's defaults apply) and instruments every installed ``opentelemetry-instrumentation-*``
  package as the standard distro does.
* ``opentelemetry_configurator = flowtel.distro:FlowtelConfigurator``: calls
  ``configure_telemetry()`` before the instrumentors load, so their spans go through flowtel.

If another distro (``opentelemetry-distro``) is installed too, choose flowtel with
``OTEL_PYTHON_DISTRO=flowtel OTEL_PYTHON_CONFIGURATOR=flowtel``. An application that also calls
``configure_telemetry()`` itself gets the handle the configurator made (with a warning).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

__all__ = ["FlowtelConfigurator", "FlowtelDistro"]


class FlowtelDistro(BaseDistro):  # type: ignore[misc]
    """flowtel as an OpenTelemetry distro (``OTEL_PYTHON_DISTRO=flowtel``)."""

    def _configure(self, **kwargs: Any) -> None:
        """Nothing to preset: flowtel reads the standard variables itself."""


class FlowtelConfigurator:
    """Builds flowtel's pipeline for ``opentelemetry-instrument`` (``OTEL_PYTHON_CONFIGURATOR``).

    Raises:
        ConfigurationError: a ``FLOWTEL_*``/``OTEL_*`` variable has a bad value; the
            application does not start, as with ``configure_telemetry()``.
    """

    def configure(self, **kwargs: Any) -> None:
        """Called once by ``opentelemetry-instrument`` before the instrumentors load."""
        import flowtel

        flowtel.configure_telemetry()
