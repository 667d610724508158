"""List a connector's objects: call list_objects, expand prefixes, validate what it yields.

This module is the one place that validates listed metadata.

Rules (the connector contract):
- Every item must be a dict with `name`, a non-empty string.
- `is_prefix` is optional (default False) but, when present, must be True or False.
- Leaves (is_prefix False) need `fingerprint`, a non-empty string, and a unique name. A later
  leaf reusing a name is reported and dropped; the first one is kept.
- Prefixes only need a name: their fingerprint is optional (nothing is read from a prefix, so
  nothing needs change detection), but a fingerprint that is present must be a string or None.
- An invalid item is reported with a JSON-safe copy of itself and is neither recorded nor expanded.

Prefixes are expanded breadth-first with `list_objects(context=..., metadata=<the prefix dict>)`
until there are none left, `limits.max_objects` objects were recorded or a prefix sits at
`limits.max_depth`; a limit that stops the walk sets `truncated`. Depth counts prefixes above an
object: the root call's items have depth 0.

The root call passes `metadata=None`, as the contract says. Code that tests the root with
`if not metadata:` or `if metadata is None:` works. Code written for `{}` behaves differently:
`metadata == {}` is False for None, so such code takes its "prefix" branch, and
`metadata.get("path")` raises AttributeError ('NoneType' object has no attribute 'get'). Write
`metadata = metadata or {}` first; the engine adds that hint to errors of the root call that
mention NoneType. When the UI asks to expand `{}` as a prefix, the engine lists from the root.

If list_objects raises midway (a generator failing after some items), the objects listed before
it are kept and the exception is stored on the Listing for the caller to report
(`listing_error`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from connector_engine.child.errors import user_error
from connector_engine.protocol import ErrorType, Limits
from connector_engine.user_code import ConnectorError
from connector_engine.values import describe, flat_json_copy, json_safe, safe_repr, type_name

# Problems kept in a listing; more are counted, not stored, so a bad listing stays small.
MAX_STORED_PROBLEMS = 1000
ROOT_METADATA_HINT = (
    " (hint: list_objects is called with metadata=None at the root; start with "
    "`metadata = metadata or {}` or test `if not metadata:`)"
)

_MISSING = object()


@dataclass(slots=True)
class ListedObject:
    """One valid object from a listing, with where it was found."""

    name: str
    fingerprint: str | None
    is_prefix: bool
    parent: str | None
    depth: int
    item: dict[str, Any]  # the dict the connector yielded, passed back as metadata

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON shape; `metadata` is what the UI sends back to read or expand it."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "is_prefix": self.is_prefix,
            "parent": self.parent,
            "depth": self.depth,
            "metadata": flat_json_copy(self.item),
        }


@dataclass(slots=True)
class ListingProblem:
    """A validation problem with the offending item."""

    object: Any
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, "message": self.message}


@dataclass
class Listing:
    """The outcome of a listing: objects, problems, and the exception that stopped it, if any."""

    objects: list[ListedObject] = field(default_factory=list)
    problems: list[ListingProblem] = field(default_factory=list)
    problems_omitted: int = 0
    truncated: bool = False
    error: BaseException | None = None
    # The prefix being listed when `error` was raised (None: the root call).
    error_prefix: dict[str, Any] | None = None

    @property
    def leaf_count(self) -> int:
        return sum(1 for obj in self.objects if not obj.is_prefix)

    def add_problem(self, item: Any, message: str) -> None:
        """Record a problem, keeping at most MAX_STORED_PROBLEMS of them."""
        if len(self.problems) < MAX_STORED_PROBLEMS:
            self.problems.append(ListingProblem(offending_object(item), message))
        else:
            self.problems_omitted += 1

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.problems_omitted

    def to_result(self) -> dict[str, Any]:
        """Return the `list` action's result."""
        return {
            "objects": [obj.to_dict() for obj in self.objects],
            "leaf_count": self.leaf_count,
            "truncated": self.truncated,
            "problems": [problem.to_dict() for problem in self.problems],
            "problems_omitted": self.problems_omitted,
        }


def offending_object(item: Any) -> Any:
    """Return a JSON-safe copy of a dict item, or the repr of anything else."""
    if isinstance(item, dict):
        return json_safe(item)
    return safe_repr(item)


class ObjectValidator:
    """Validate listed items one by one, remembering leaf names to catch duplicates."""

    def __init__(self) -> None:
        self._leaf_parents: dict[str, str | None] = {}

    def check(
        self, item: Any, parent: str | None, depth: int
    ) -> tuple[ListedObject | None, list[str]]:
        """Return (the object, []) for a valid item or (None, problems) for an invalid one."""
        if type(item) is dict:
            name = item.get("name")
            fingerprint = item.get("fingerprint")
            # Fast path: the common well-formed leaf, checked with the fewest operations.
            if (
                type(name) is str
                and name
                and type(fingerprint) is str
                and fingerprint
                and item.get("is_prefix", False) is False
                and name not in self._leaf_parents
            ):
                self._leaf_parents[name] = parent
                return ListedObject(name, fingerprint, False, parent, depth, item), []
        messages = validate_item(item)
        if messages:
            return None, messages
        name = item["name"]
        is_prefix = item.get("is_prefix", False)
        if not is_prefix:
            if name in self._leaf_parents:
                return None, [duplicate_message(name, self._leaf_parents[name])]
            self._leaf_parents[name] = parent
        return ListedObject(name, item.get("fingerprint"), is_prefix, parent, depth, item), []


def duplicate_message(name: str, first_parent: str | None) -> str:
    """Explain a duplicate leaf name."""
    where = f"under prefix {first_parent!r}" if first_parent is not None else "at the root"
    return (
        f"duplicate leaf name {name!r} (first listed {where}): leaf names must be unique; "
        "this one is ignored"
    )


def validate_item(item: Any) -> list[str]:
    """Return the contract problems of one listed item (no duplicate check)."""
    if not isinstance(item, dict):
        return [
            f"list_objects yielded {describe(item)}, not a dict: yield "
            "{'name': ..., 'fingerprint': ...}"
        ]
    messages = []
    is_prefix = item.get("is_prefix", False)
    if not isinstance(is_prefix, bool):
        messages.append(
            f"'is_prefix' must be True or False, not {safe_repr(is_prefix)} "
            f"({type_name(is_prefix)})"
        )
    name = item.get("name", _MISSING)
    if name is _MISSING:
        messages.append("missing key 'name'")
    elif not isinstance(name, str):
        messages.append(f"'name' must be a string, not {describe(name)}")
    elif not name:
        messages.append("'name' must not be empty")
    messages += _fingerprint_problems(item.get("fingerprint", _MISSING), is_prefix is True)
    return messages


def _fingerprint_problems(fingerprint: Any, is_prefix: bool) -> list[str]:
    """Require a non-empty string fingerprint on leaves; allow none on prefixes."""
    if is_prefix:
        if fingerprint is _MISSING or fingerprint is None or isinstance(fingerprint, str):
            return []
        return [
            f"a prefix's 'fingerprint' must be a string when given, not {describe(fingerprint)}"
        ]
    if fingerprint is _MISSING:
        return ["missing key 'fingerprint' (a leaf needs one to detect changes)"]
    if not isinstance(fingerprint, str):
        return [
            f"'fingerprint' must be a string, not {describe(fingerprint)} "
            "(convert it, e.g. str(modified_time))"
        ]
    if not fingerprint:
        return ["'fingerprint' must not be empty"]
    return []


def call_list_objects(
    list_objects: Callable[..., Any], context: Any, metadata: dict[str, Any] | None
) -> Iterator[Any]:
    """Call list_objects by keyword and return an iterator over what it yields."""
    returned = list_objects(context=context, metadata=metadata)
    if returned is None or isinstance(returned, (Mapping, str, bytes)):
        raise ConnectorError.about(
            ErrorType.CONTRACT_ERROR,
            f"list_objects returned {describe(returned)}; it must yield dicts (or return a list "
            "of dicts)",
            list_objects,
        )
    try:
        return iter(returned)
    except TypeError:
        raise ConnectorError.about(
            ErrorType.CONTRACT_ERROR,
            f"list_objects returned {describe(returned)}, which is not iterable; it must yield "
            "dicts (or return a list of dicts)",
            list_objects,
        ) from None


def walk_tree(
    list_objects: Callable[..., Any],
    context: Any,
    limits: Limits,
    listing: Listing,
    *,
    root: dict[str, Any] | None = None,
    expand: bool = True,
) -> Iterator[ListedObject]:
    """List breadth-first into `listing`, yielding each object as it is recorded.

    With `root` given, lists that prefix's children (depth 1); `expand=False` lists one level.
    Stops on a limit (truncated) or an exception (stored in listing.error); closing the
    iterator early closes the connector's generator too.
    """
    validator = ObjectValidator()
    root_name = root.get("name") if isinstance(root, dict) else None
    root_name = root_name if isinstance(root_name, str) else None
    queue: deque[tuple[dict[str, Any] | None, str | None, int]] = deque()
    queue.append((root, root_name, 0 if root is None else 1))
    while queue:
        prefix, prefix_name, depth = queue.popleft()
        try:
            iterator = call_list_objects(list_objects, context, prefix)
        except BaseException as exc:  # user code: even SystemExit must not end the listing
            listing.error, listing.error_prefix = exc, prefix
            return
        try:
            for item in iterator:
                obj, messages = validator.check(item, prefix_name, depth)
                if messages:
                    for message in messages:
                        listing.add_problem(item, message)
                    if listing.problem_count > limits.max_objects:
                        listing.truncated = True  # an endless stream of bad items
                        return
                    continue
                assert obj is not None
                if len(listing.objects) >= limits.max_objects:
                    listing.truncated = True
                    return
                listing.objects.append(obj)
                yield obj
                if obj.is_prefix and expand:
                    if depth >= limits.max_depth:
                        listing.truncated = True
                    else:
                        queue.append((obj.item, obj.name, depth + 1))
        except BaseException as exc:
            if isinstance(exc, GeneratorExit):
                raise
            listing.error, listing.error_prefix = exc, prefix
            return
        finally:
            close_quietly(iterator)


def close_quietly(iterator: Any) -> None:
    """Close a connector's generator, ignoring what its cleanup raises."""
    close = getattr(iterator, "close", None)
    if close is None:
        return
    with suppress(BaseException):  # cleanup errors must not replace the real outcome
        close()


def list_tree(list_objects: Callable[..., Any], context: Any, limits: Limits) -> Listing:
    """List every object from the root, expanding prefixes breadth-first."""
    listing = Listing()
    for _ in walk_tree(list_objects, context, limits, listing):
        pass
    return listing


def expand_prefix(
    list_objects: Callable[..., Any], context: Any, prefix: dict[str, Any], limits: Limits
) -> Listing:
    """List one prefix's direct children only (for a lazily expanded tree)."""
    listing = Listing()
    for _ in walk_tree(list_objects, context, limits, listing, root=prefix, expand=False):
        pass
    return listing


def first_leaf(
    list_objects: Callable[..., Any], context: Any, limits: Limits
) -> tuple[ListedObject | None, Listing]:
    """Find the first valid leaf, listing no further than needed."""
    listing = Listing()
    walker = walk_tree(list_objects, context, limits, listing)
    try:
        for obj in walker:
            if not obj.is_prefix:
                return obj, listing
    finally:
        walker.close()
    return None, listing


def listing_error(listing: Listing, memory_mb: int | None) -> dict[str, Any]:
    """Return the error that stopped a listing, with a hint for None-at-root mistakes."""
    assert listing.error is not None
    error = user_error(listing.error, memory_mb)
    at_root = listing.error_prefix is None
    mentions_none = "NoneType" in (error.get("message") or "")
    if at_root and mentions_none and isinstance(listing.error, (TypeError, AttributeError)):
        error["message"] += ROOT_METADATA_HINT
    return error
