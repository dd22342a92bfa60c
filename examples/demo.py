"""A small async agent worker instrumented by flowtel; prints the spans it records.

Run with ``make demo``. It uses the console exporter (the default when no OTLP endpoint is set), so
every finished span appears on stderr as one line, indented by nesting.
"""

from __future__ import annotations

import asyncio
import random

import flowtel


class UpstreamError(Exception):
    """The (simulated) LLM upstream failed."""


@flowtel.traced(component="agent", operation="retrieve", record_args=["query"])
async def retrieve(query: str) -> list[str]:
    await asyncio.sleep(0.002)
    return [f"doc-{i}" for i in range(3)]


@flowtel.traced(component="agent", operation="llm_call")
async def llm_call(prompt: str, api_key: str, fail: bool) -> str:
    await asyncio.sleep(0.003)
    if fail:
        raise UpstreamError(f"upstream 503 for key {api_key}")
    return prompt.upper()


@flowtel.traced(component="agent", operation="stream_tokens")
def stream_tokens(text: str):  # type: ignore[no-untyped-def]
    yield from text.split()


@flowtel.traced(component="agent", operation="handle_task")
async def handle_task(task_id: int, fail: bool) -> str:
    docs = await retrieve(f"task {task_id}")
    with flowtel.span("build_prompt", documents=len(docs)):
        prompt = f"answer task {task_id} using {' '.join(docs)}"
    answer = await llm_call(prompt, api_key="sk-demo-secret-key-0123456789abcdef", fail=fail)
    return " ".join(stream_tokens(answer))


async def main() -> None:
    telemetry = flowtel.configure_telemetry(service_name="demo-agent", environment="dev")
    rng = random.Random(7)
    results = await asyncio.gather(
        *(handle_task(i, fail=rng.random() < 0.3) for i in range(6)), return_exceptions=True
    )
    failed = sum(isinstance(r, Exception) for r in results)
    print(f"\n{len(results)} tasks, {failed} failed (secrets in messages were scrubbed above)")
    stats = getattr(flowtel, "get_error_stats", None)
    if stats is not None:
        print(stats(last_minutes=15))
    telemetry.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
