"""A request's shape: what a spare supervisor prepares before the request itself comes.

The client sends the shape first on each connection (one length-prefixed JSON frame), then the
request. The fork server hands the connection to a spare supervisor prepared for exactly that
shape (connector_engine.sandbox.forkserver): its namespaces (network, /tmp size), its connector
process's limits and, for a tenant whose earlier runs imported modules, those modules imported
ahead. A spare that imported a tenant's modules serves only that tenant: nothing one connection's
code imports runs for another.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from dataclasses import dataclass
from typing import Any

from connector_engine.protocol import Limits, SandboxRequest

MAX_SHAPE_BYTES = 64 * 1024
MAX_MODULES = 512  # modules learned per tenant, at most
_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size
_MODULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}(\.[A-Za-z_][A-Za-z0-9_]{0,99}){0,9}$")


@dataclass(frozen=True)
class Shape:
    network: bool = True
    tmp_mb: int = Limits.tmp_mb
    memory_mb: int = Limits.memory_mb
    cpu_s: int = Limits.cpu_s
    max_processes: int = Limits.max_processes
    max_file_mb: int = Limits.max_file_mb
    tenant: str = ""  # set only with modules: a spare without them may serve anyone
    modules: tuple[str, ...] = ()  # top-level modules to import before the request

    @classmethod
    def of(cls, request: SandboxRequest, modules: tuple[str, ...] = ()) -> Shape:
        limits = request.limits
        modules = tuple(module_names(modules)) if request.tenant else ()
        return cls(
            network=request.network,
            tmp_mb=limits.tmp_mb,
            memory_mb=limits.memory_mb,
            cpu_s=limits.cpu_s,
            max_processes=limits.max_processes,
            max_file_mb=limits.max_file_mb,
            tenant=request.tenant if modules else "",
            modules=modules,
        )

    def limits(self) -> Limits:
        """The limits the connector process takes before its request comes."""
        return Limits(
            cpu_s=self.cpu_s,
            memory_mb=self.memory_mb,
            tmp_mb=self.tmp_mb,
            max_processes=self.max_processes,
            max_file_mb=self.max_file_mb,
        )

    def pack(self, *, prepare_only: bool = False) -> bytes:
        """The frame the client sends first; `prepare_only`: no request follows, the fork
        server only prepares a spare of this shape (for a tenant's next request)."""
        body = json.dumps({**dataclasses.asdict(self), "prepare_only": prepare_only}).encode()
        return _HEADER.pack(len(body)) + body

    @classmethod
    def unpack(cls, body: bytes) -> tuple[Shape, bool]:
        """The shape in a frame's body, and whether only a spare is asked for."""
        data: dict[str, Any] = json.loads(body)
        data["modules"] = tuple(module_names(data.get("modules") or ()))
        known = {f.name for f in dataclasses.fields(cls)}
        shape = cls(**{key: value for key, value in data.items() if key in known})
        return shape, data.get("prepare_only") is True

    @staticmethod
    def body_size(header: bytes) -> int:
        (size,) = _HEADER.unpack(header)
        return size


def module_names(names: Any) -> list[str]:
    """The valid module names among `names`, in order (they come from a process that ran user
    code), at most MAX_MODULES."""
    if not isinstance(names, list | tuple):
        return []
    valid = [name for name in names if isinstance(name, str) and _MODULE_NAME.match(name)]
    return list(dict.fromkeys(valid))[:MAX_MODULES]
