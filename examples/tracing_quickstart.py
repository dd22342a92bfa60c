"""The docs/tracing.md example: @traced on a coroutine and a generator, span(), scrubbing."""

import asyncio
import contextlib

import flowtel

flowtel.configure_telemetry(service_name="docs", exporter="console", console_colors=False)


@flowtel.traced(component="checkout", operation="charge", record_args=["order_id", "card_token"])
async def charge(order_id: str, card_token: str, amount_cents: int) -> str:
    with flowtel.span("fraud_check", order_id=order_id):
        await asyncio.sleep(0.001)
    if amount_cents > 10_000:
        raise ValueError(f"amount {amount_cents} over limit for token={card_token}")
    return "ok"


@flowtel.traced
def pages(n: int):
    yield from range(n)


async def main() -> None:
    await charge("o-1", "tok_live_4242", 500)
    with contextlib.suppress(ValueError):
        await charge("o-2", "tok_live_4242", 50_000)
    list(pages(2))


asyncio.run(main())
