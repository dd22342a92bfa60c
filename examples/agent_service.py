"""A FastAPI agent service with flowtel's lifecycle: startup checks, probes, graceful shutdown.

It also uses ``@traced`` for the agent's steps and the resilience decorators around the LLM call.

Run it with the plain uvicorn command; nothing else is needed for probes, drain and hooks::

    FLOWTEL_EXPORTER=console uvicorn examples.agent_service:app --port 8000

The dependencies are simulated in-process (the vector store takes a moment to "connect", the
LLM provider is optional), so the example runs anywhere. See docs/lifecycle.md.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import FastAPI, HTTPException

import flowtel
from flowtel.fastapi import instrument_fastapi
from flowtel.lifecycle import (
    add_k8s_probes,
    register_readiness_check,
    register_shutdown_hook,
    register_startup_check,
)
from flowtel.resilience import CircuitOpenError, circuit_breaker, retry, timeout

telemetry = flowtel.configure_telemetry(service_name="agent-service")


class VectorStore:
    """Stands in for a real vector database client."""

    def __init__(self) -> None:
        self.connected = False

    async def connect(self) -> int:
        await asyncio.sleep(float(os.environ.get("AGENT_VECTOR_CONNECT_S", "0.3")))
        self.connected = True
        return 1_204  # documents indexed

    async def search(self, query: str, k: int) -> list[str]:
        if not self.connected:
            raise RuntimeError("vector store not connected")
        return [f"doc-{i}:{query[:12]}" for i in range(k)]

    async def close(self) -> None:
        self.connected = False


store = VectorStore()
prompts: dict[str, str] = {}


# ---------------------------------------------------------------- startup checks
@register_startup_check(name="config", priority=0, timeout_s=2)
def load_config() -> dict[str, str]:
    return {"model": os.environ.get("AGENT_MODEL", "local-echo")}


@register_startup_check(name="prompts", depends_on=["config"], timeout_s=5)
def load_prompts() -> dict[str, int]:
    prompts["answer"] = "Answer using: {docs}\nQuestion: {question}"
    return {"templates": len(prompts)}


@register_startup_check(
    name="vector_store", depends_on=["config"], timeout_s=5, retries=2, backoff_s=0.5
)
async def connect_vector_store() -> dict[str, int]:
    return {"documents": await store.connect()}


@register_startup_check(name="llm_provider", depends_on=["config"], critical=False, timeout_s=2)
async def ping_llm_provider() -> None:
    if os.environ.get("AGENT_LLM_DOWN") == "1":
        raise ConnectionError("llm provider unreachable")


# ---------------------------------------------------------------- readiness and shutdown
@register_readiness_check(name="vector_store", interval_s=5, timeout_s=1)
def vector_store_ready() -> bool:
    return store.connected


register_shutdown_hook("vector_store", store.close, timeout_s=5)


# ---------------------------------------------------------------- the agent
@flowtel.traced(component="agent", operation="retrieve", record_args=["k"])
async def retrieve(question: str, k: int = 3) -> list[str]:
    if "unknown" in question:
        raise LookupError(f"no documents match {question!r}")
    return await store.search(question, k)


@flowtel.traced(component="agent", operation="llm_call")
@retry(attempts=3, backoff_s=0.2)  # retries what the timeout and the breaker raise
@timeout(10.0)  # bounds each attempt
@circuit_breaker("llm", minimum_calls=20, open_for_s=30)  # fails fast while the LLM is down
async def llm_call(prompt: str) -> str:
    await asyncio.sleep(0.01)
    return prompt.splitlines()[-1].removeprefix("Question: ").upper()


@flowtel.traced(component="agent", operation="answer")
async def answer(question: str) -> dict[str, object]:
    docs = await retrieve(question)
    text = await llm_call(prompts["answer"].format(docs=", ".join(docs), question=question))
    return {"answer": text, "sources": docs}


app = FastAPI(title="agent-service")


@app.post("/ask")
async def ask(question: str) -> dict[str, object]:
    if not question.strip():
        raise HTTPException(status_code=422, detail="empty question")
    try:
        return await answer(question)
    except LookupError as exc:
        raise HTTPException(status_code=404, detail="no documents") from exc
    except CircuitOpenError as exc:
        raise HTTPException(status_code=503, detail="LLM provider unavailable") from exc


add_k8s_probes(app, drain_s=float(os.environ.get("AGENT_DRAIN_S", "5")))
instrument_fastapi(app)
