"""Where user code lives, and the error the engine raises about it.

Connector and library code are compiled under the pseudo file names "<connector>" and
"<library>": a code object from either is user code. A ConnectorError is an error the engine
reports about user code (a reader returning the wrong type, a chunk that is not bytes, a parser
that cannot read the data), located at a user function when there is one. It lives below every
part of the engine that raises it (the child, the parsers, the Arrow conversion).
"""

from __future__ import annotations

from typing import Any

from connector_engine.protocol import make_error

CONNECTOR_FILENAME = "<connector>"
LIBRARY_FILENAME = "<library>"
USER_FILENAMES = frozenset({CONNECTOR_FILENAME, LIBRARY_FILENAME})


class ConnectorError(Exception):
    """An error the engine reports about user code, e.g. a reader returning the wrong type."""

    def __init__(
        self,
        type_: str,
        message: str,
        *,
        function: str | None = None,
        line: int | None = None,
        file: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message
        self.function = function
        self.line = line
        self.file = file
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        """Return the structured error."""
        error = make_error(
            self.type, self.message, function=self.function, line=self.line, file=self.file
        )
        error.update(self.extra)
        return error

    @classmethod
    def about(cls, type_: str, message: str, func: Any) -> ConnectorError:
        """Build an error located at the definition of a user function."""
        function, line, file = function_location(func)
        return cls(type_, message, function=function, line=line, file=file)

    def located_at(self, func: Any) -> ConnectorError:
        """Point this error at a user function's def when it has no location yet; return it."""
        if self.function is None:
            self.function, self.line, self.file = function_location(func)
        return self


def function_location(func: Any) -> tuple[str | None, int | None, str | None]:
    """Return (name, first line, file) of a user function, or Nones for other callables."""
    code = getattr(func, "__code__", None)
    if code is None or code.co_filename not in USER_FILENAMES:
        return getattr(func, "__name__", None), None, None
    return code.co_name, code.co_firstlineno, code.co_filename
