"""Grafana dashboard JSON building blocks: datasources, panel layout, targets and the envelope.

Why a module: both dashboards share the same panel, query target and dashboard shapes; keeping
them here leaves the dashboard modules with only what each panel shows.
"""

from __future__ import annotations

from typing import Any

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
TEMPO = {"type": "tempo", "uid": "tempo"}

Json = dict[str, Any]


class Layout:
    """Places panels left to right in rows of 24 grid units."""

    def __init__(self) -> None:
        self.panels: list[Json] = []
        self._x = 0
        self._y = 0
        self._row_h = 0
        self._id = 0

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "id": self._next_id(),
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self._y},
                "panels": [],
            }
        )
        self._y += 1

    def add(self, panel: Json, w: int = 12, h: int = 8) -> None:
        if self._x + w > 24:
            self._newline()
        panel["id"] = self._next_id()
        panel["gridPos"] = {"h": h, "w": w, "x": self._x, "y": self._y}
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)

    def _newline(self) -> None:
        if self._x:
            self._y += self._row_h
        self._x = 0
        self._row_h = 0


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> Json:
    t: Json = {"datasource": PROMETHEUS, "expr": expr, "refId": ref, "range": True}
    t["legendFormat"] = legend or "__auto"
    t.update(extra)
    return t


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[Json],
    unit: str = "short",
    **options: Any,
) -> Json:
    p: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": PROMETHEUS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": options,
    }
    return p


def dashboard(uid: str, title: str, panels: list[Json], templating: list[Json]) -> Json:
    return {
        "uid": uid,
        "title": title,
        "tags": ["flowtel", "opentelemetry"],
        "timezone": "browser",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": templating},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
