"""docs/errors.md quickstart: exact error rates at 10% sampling, and a health check."""

import contextlib

import flowtel
from flowtel.errors import get_error_stats, record_error


class CardDeclinedError(Exception):
    pass


@flowtel.traced(component="billing", operation="charge")
def charge(order: int) -> None:
    if order % 25 == 0:
        raise CardDeclinedError(f"order {order}: card declined")


@flowtel.traced(component="search", operation="query")
def query(term: int) -> list[str]:
    if term % 40 == 0:
        raise TimeoutError("index shard timed out")
    if term % 50 == 0:
        try:
            raise ConnectionResetError("cache unavailable, served from the database")
        except ConnectionResetError as exc:
            record_error(exc, cache="redis", password="hunter2")  # handled: does not fail query
    return []


def health(component: str | None = None, rate: float = 0.05) -> tuple[int, str]:
    stats = get_error_stats(last_minutes=5, component=component)
    if stats.exceeds(rate=rate, min_calls=20):
        return 503, f"error rate {stats.error_rate:.1%} over {stats.total} calls"
    return 200, "ok"


telemetry = flowtel.configure_telemetry(
    service_name="shop", exporter="none", sample_rate=0.1, logging=False
)
for i in range(1, 1001):
    with contextlib.suppress(CardDeclinedError):
        charge(i)
    with contextlib.suppress(TimeoutError):
        query(i)

stats = get_error_stats(last_minutes=15)
print(stats.total, stats.errors, stats.handled, f"{stats.error_rate:.2%}", stats.window)
print(dict(stats.by_type))
for (component, operation), op in stats.top(3):
    print(f"{component}/{operation}: {op.errors}/{op.total} failed ({op.error_rate:.1%}), "
          f"{op.handled} handled")  # fmt: skip
print(get_error_stats(component="search"))
print(health())
print(health(component="billing", rate=0.03))
telemetry.shutdown()
