"""Geometry of the inline SVG charts: a profile's histograms and an ingest run's charts.

No JavaScript and no library: the templates draw what these functions compute (rectangles,
axis ticks, labels) and each bar carries a <title> that browsers show on hover. Coordinates are
in the SVG's own viewBox units.
"""

from __future__ import annotations

import math
from typing import Any

# A profile histogram: a small sparkline-sized chart.
HISTOGRAM_WIDTH = 120
HISTOGRAM_HEIGHT = 28

# An ingest chart: a plot area inside margins for the tick and axis labels.
CHART_WIDTH = 420
CHART_HEIGHT = 170
CHART_LEFT = 54
CHART_RIGHT = 10
CHART_TOP = 10
CHART_BOTTOM = 36
MAX_CHART_BARS = 400


def histogram_chart(histogram: Any) -> dict[str, Any] | None:
    """Bars of a profile histogram ({"edges", "counts", "per_value"}), each with its title."""
    if not isinstance(histogram, dict):
        return None
    counts, edges = histogram.get("counts"), histogram.get("edges")
    if not isinstance(counts, list) or not isinstance(edges, list) or not counts:
        return None
    if len(edges) != len(counts) + 1:
        return None
    top = max(int(count) for count in counts) or 1
    width = HISTOGRAM_WIDTH / len(counts)
    bars = []
    for index, count in enumerate(counts):
        height = round((HISTOGRAM_HEIGHT - 1) * int(count) / top, 2)
        bars.append(
            {
                "x": round(index * width, 2),
                "width": round(max(width - 1, 0.5), 2),
                "slot": round(width, 2),
                "y": round(HISTOGRAM_HEIGHT - height, 2),
                "height": height,
                "count": int(count),
                "title": _bin_title(histogram, index, int(count), last=index == len(counts) - 1),
            }
        )
    total = sum(int(count) for count in counts)
    return {
        "bars": bars,
        "width": HISTOGRAM_WIDTH,
        "height": HISTOGRAM_HEIGHT,
        "label": f"{len(counts)} bins, {total:,} value{'' if total == 1 else 's'}",
    }


def _bin_title(histogram: dict[str, Any], index: int, count: int, *, last: bool) -> str:
    """Say what range a bin covers and how many values fell in it."""
    edges = histogram["edges"]
    values = f"{count:,} row{'' if count == 1 else 's'}"
    if histogram.get("per_value"):
        return f"{_edge_text(edges[index])}: {values}"
    closing = "]" if last else ")"
    return f"[{_edge_text(edges[index])}, {_edge_text(edges[index + 1])}{closing}: {values}"


def _edge_text(value: Any) -> str:
    """An edge for people: numbers with 6 significant digits, ISO timestamps with a space."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("T", " ")


def ingest_charts(points: list[dict[str, Any]], limit: int = MAX_CHART_BARS) -> dict[str, Any]:
    """Two bar charts of an ingest's finished reads, in plan order: rows and seconds per partition.

    Each has axis lines, tick labels on both axes, axis labels and a title per bar naming the
    partition, its rows and its duration.
    """
    points = points[:limit]
    if not points:
        return {"bars": [], "charts": []}
    titles = [_point_title(point) for point in points]
    rows = [float(point.get("rows") or 0) for point in points]
    seconds = [(point.get("duration_ms") or 0) / 1000 for point in points]
    charts = [
        _bar_chart("rows", "Rows per partition", rows, titles, "#0d6efd"),
        _bar_chart("seconds", "Duration per partition", seconds, titles, "#6f42c1"),
    ]
    return {"bars": points, "charts": charts}


def _point_title(point: dict[str, Any]) -> str:
    """Name a partition with its rows and duration."""
    rows = point.get("rows") or 0
    seconds = (point.get("duration_ms") or 0) / 1000
    return f"{point.get('name')}: {rows:,} row{'' if rows == 1 else 's'} in {seconds:.3g} s"


def _bar_chart(
    unit: str, title: str, values: list[float], titles: list[str], color: str
) -> dict[str, Any]:
    """One bar chart's geometry: bars, axes, ticks and labels."""
    plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT
    plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    bottom = CHART_TOP + plot_height
    top = nice_ceiling(max(values))
    slot = plot_width / len(values)
    bars = []
    for index, (value, bar_title) in enumerate(zip(values, titles, strict=True)):
        height = plot_height * value / top
        bars.append(
            {
                "x": round(CHART_LEFT + index * slot + slot * 0.075, 2),
                "y": round(bottom - height, 2),
                "width": round(slot * 0.85, 2),
                "height": round(height, 2),
                "title": bar_title,
            }
        )
    y_ticks = [
        {"y": round(bottom - plot_height * fraction, 2), "label": _tick_text(top * fraction)}
        for fraction in (0, 0.5, 1)
    ]
    x_ticks = [{"x": round(CHART_LEFT + slot / 2, 2), "label": "1"}]
    if len(values) > 1:
        x_ticks.append(
            {"x": round(CHART_LEFT + slot * (len(values) - 0.5), 2), "label": str(len(values))}
        )
    return {
        "unit": unit,
        "title": title,
        "color": color,
        "bars": bars,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - CHART_RIGHT,
        "top": CHART_TOP,
        "bottom": bottom,
        "middle_y": round(CHART_TOP + plot_height / 2, 2),
        "middle_x": round(CHART_LEFT + plot_width / 2, 2),
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "x_label": _x_label(len(values)),
        "y_label": unit,
    }


def _x_label(count: int) -> str:
    """The x axis's label: which partitions the bars are."""
    return f"partitions (1 to {count}, in plan order)" if count > 1 else "partition"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at least `value` (1 for nothing)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _tick_text(value: float) -> str:
    """A tick label: whole numbers with separators, others with 3 significant digits."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}"
