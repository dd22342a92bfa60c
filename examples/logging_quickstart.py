"""flowtel logging in console mode: stdlib log lines carry the short trace id of their span.

Run: ``python examples/logging_quickstart.py`` (shown in docs/logging.md).
"""

import logging

import flowtel

telemetry = flowtel.configure_telemetry(service_name="orders", exporter="console")
log = logging.getLogger("orders.api")

with flowtel.span("checkout", order_id=42):
    log.info("order placed", extra={"order_id": 42, "card_token": "tok_4242"})
    try:
        {}["sku"]
    except KeyError:
        log.exception("inventory lookup failed for password=%s", "hunter2")
log.warning("no span here")
telemetry.shutdown()
