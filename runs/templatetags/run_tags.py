"""Template helpers for run results."""

from __future__ import annotations

import json
import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from runs import charts

register = template.Library()

# A traceback frame in the user's connector code, as the runtime writes it.
_USER_FRAME = re.compile(r"(File &quot;&lt;connector&gt;&quot;, line )(\d+)")


@register.filter
def traceback_links(text: str) -> SafeString:
    """Escape a traceback and turn each frame in the connector's code into a line link."""
    escaped = escape(text or "")
    linked = _USER_FRAME.sub(r'<a href="#" class="line-link" data-line="\2">\1\2</a>', escaped)
    return mark_safe(linked)  # built from escaped text only


@register.filter
def pretty_json(value) -> str:
    """Indented JSON for display."""
    return json.dumps(value, indent=2, default=str)


@register.filter
def cell(value) -> str:
    """Show a JSON-safe cell value: null as an empty marker, others as text."""
    if value is None:
        return "∅"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


CUT_MARK = "[output cut:"


@register.simple_tag
def result_rows(rows) -> str:
    """The preview's rows as table rows: the same markup a template loop gives, built here
    because a preview shows up to thousands of cells and the template loop is slow."""
    parts = []
    for row in rows or ():
        parts.append("<tr>")
        for value in row:
            parts.append('<td class="text-body-tertiary">' if value is None else "<td>")
            if isinstance(value, str) and CUT_MARK in value:
                marker = escape(value.splitlines()[-1])
                parts.append(f'<span class="badge text-bg-warning cut-marker">{marker}</span> ')
            parts.append(escape(cell(value)))
            parts.append("</td>")
        parts.append("</tr>")
    return mark_safe("".join(parts))  # every value above is escaped


_RAW_USER_FRAME = re.compile(r'File "<connector>", line (\d+)')


@register.filter
def connector_error_line(traceback: str) -> int | None:
    """The innermost line of the connector's own code in a traceback (not the library's)."""
    lines = _RAW_USER_FRAME.findall(traceback or "")
    return int(lines[-1]) if lines else None


@register.filter
def sub(value: float, amount: float) -> float:
    """`value - amount`, for chart coordinates."""
    return value - amount


@register.filter
def histogram_chart(histogram) -> dict | None:
    """The bars of a profile column's histogram, for templates/runs/_histogram.html."""
    return charts.histogram_chart(histogram)
