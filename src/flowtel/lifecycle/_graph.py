"""Dependency-graph ordering shared by startup checks and shutdown hooks."""

from __future__ import annotations

from collections.abc import Mapping

from flowtel.exceptions import StartupError

__all__ = ["dependency_order"]


def dependency_order(graph: Mapping[str, tuple[str, ...]], what: str) -> list[str]:
    """Names of ``graph`` (name -> dependencies) ordered so dependencies come first.

    Ties keep the mapping's order. ``what`` names the kind of node in error messages.

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
    order: list[str] = []
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        path: list[str] = [start]
        on_path: set[str] = {start}
        stack: list[int] = [0]  # next dependency index per node on the path
        while path:
            node, index = path[-1], stack[-1]
            deps = graph[node]
            if index == len(deps):
                path.pop()
                stack.pop()
                on_path.discard(node)
                done.add(node)
                order.append(node)
                continue
            stack[-1] += 1
            dep = deps[index]
            if dep in done:
                continue
            if dep in on_path:
                cycle = [*path[path.index(dep) :], dep]
                raise StartupError(f"{what}s form a dependency cycle: " + " -> ".join(cycle))
            path.append(dep)
            on_path.add(dep)
            stack.append(0)
    return order
