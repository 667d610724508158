"""The export file of a connector: a header a person can read, then the code (no Django).

```
# --- connector-studio export ---
# name: Sales
# slug: sales
# interface: bytes
# parser: csv
# parser_options: {"delimiter": ";"}
# package: requests>=2
# --- end of header ---
<the connector's code, exactly>
```

`package` repeats, one line per requirement; `parser_options` is JSON (sorted keys). Rendering
what parsing gave back gives the same file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

START_MARKER = "# --- connector-studio export ---"
END_MARKER = "# --- end of header ---"
SINGLE_KEYS = ("name", "slug", "interface", "parser", "parser_options")
KEYS = (*SINGLE_KEYS, "package")


class ExportFormatError(ValueError):
    """A malformed export file; `line` is the 1-based line at fault."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ConnectorExport:
    """What an export file holds."""

    name: str
    slug: str
    interface: str
    code: str
    parser: str = ""
    parser_options: dict[str, Any] = field(default_factory=dict)
    packages: str = ""


def render(export: ConnectorExport) -> str:
    """Return the export file's text."""
    lines = [
        START_MARKER,
        f"# name: {_one_line(export.name)}",
        f"# slug: {_one_line(export.slug)}",
        f"# interface: {export.interface}",
        f"# parser: {export.parser}",
        f"# parser_options: {json.dumps(export.parser_options or {}, sort_keys=True)}",
    ]
    lines += [f"# package: {line.strip()}" for line in export.packages.splitlines() if line.strip()]
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n" + export.code


def parse(text: str) -> ConnectorExport:
    """Read an export file; raise ExportFormatError naming the line at fault."""
    lines = text.split("\n")
    if lines[0].rstrip("\r") != START_MARKER:
        raise ExportFormatError(1, f"an export starts with the line {START_MARKER!r}")
    values: dict[str, str] = {}
    packages: list[str] = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        if line == END_MARKER:
            code = "\n".join(lines[number:])
            return _export(number, values, packages, code)
        key, value = _header_line(number, line)
        if key == "package":
            if value:
                packages.append(value)
        elif key in values:
            raise ExportFormatError(number, f"{key!r} is given twice")
        else:
            values[key] = value
        if key == "parser_options":
            _parser_options(number, value)
    raise ExportFormatError(len(lines), f"the header never ends: no line {END_MARKER!r}")


def _header_line(number: int, line: str) -> tuple[str, str]:
    if not line.startswith("# ") or ":" not in line:
        raise ExportFormatError(
            number, f"a header line must look like '# key: value', not {line[:80]!r}"
        )
    key, _, value = line[2:].partition(":")
    key = key.strip()
    if key not in KEYS:
        raise ExportFormatError(number, f"unknown key {key!r}: use one of {', '.join(KEYS)}")
    return key, value.strip()


def _parser_options(number: int, value: str) -> dict[str, Any]:
    try:
        options = json.loads(value or "{}")
    except json.JSONDecodeError as exc:
        raise ExportFormatError(number, f"parser_options is not valid JSON: {exc.msg}") from None
    if not isinstance(options, dict):
        raise ExportFormatError(number, 'parser_options must be a JSON object, like {"a": 1}')
    return options


def _export(end: int, values: dict[str, str], packages: list[str], code: str) -> ConnectorExport:
    for key in ("name", "interface"):
        if not values.get(key):
            raise ExportFormatError(end, f"the header ends without {key!r}")
    return ConnectorExport(
        name=values["name"],
        slug=values.get("slug", ""),
        interface=values["interface"],
        code=code,
        parser=values.get("parser", ""),
        parser_options=json.loads(values.get("parser_options") or "{}"),
        packages="\n".join(packages),
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
