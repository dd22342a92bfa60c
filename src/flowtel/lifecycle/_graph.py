"""Dependency-graph ordering shared by startup checks and shutdown hooks (stdlib ``graphlib``)."""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Mapping

from flowtel.exceptions import StartupError

__all__ = ["dependency_order"]


def dependency_order(graph: Mapping[str, tuple[str, ...]], what: str) -> list[str]:
    """Names of ``graph`` (name -> dependencies) ordered so dependencies come first.

    Of the nodes whose dependencies are done, the one registered first comes first (so
    without dependencies the order is the mapping's). ``what`` names the kind of node in
    error messages.

    Raises:
        StartupError: a dependency is not in the graph, or the graph has a cycle; the message
            names the nodes involved.
    """
    for name, deps in graph.items():
        unknown = [d for d in deps if d not in graph]
        if unknown:
            raise StartupError(
                f"{what} {name!r} depends on unknown {what}(s) "
                f"{', '.join(repr(u) for u in unknown)}; known: {sorted(graph)}"
            )
    position = {name: i for i, name in enumerate(graph)}
    sorter = graphlib.TopologicalSorter(graph)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        ring = list(reversed(exc.args[1]))[1:]  # graphlib lists dependencies first; drop repeat
        first = min(range(len(ring)), key=lambda i: position[ring[i]])  # stable: registration order
        cycle = [*ring[first:], *ring[:first], ring[first]]
        raise StartupError(f"{what}s form a dependency cycle: " + " -> ".join(cycle)) from None
    order: list[str] = []
    ready: list[tuple[int, str]] = []
    while sorter.is_active():  # of what may run next, the earliest registered goes first
        for name in sorter.get_ready():
            heapq.heappush(ready, (position[name], name))
        _, name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
    return order
