"""A request's shape: what a spare supervisor prepares before the request itself comes.

The client sends the shape first on each connection (one length-prefixed JSON frame), then the
request. The fork server hands the connection to a spare supervisor prepared for exactly that
shape (connector_engine.sandbox.forkserver): its namespaces (network, /tmp size), its connector
process's limits and, for a tenant whose earlier runs imported modules, those modules imported
ahead. A spare that imported a tenant's modules serves only that tenant: nothing one connection's
code imports runs for another.

A tenant whose connector defines warm_up() also gets its connector and library code in the
shape (`preload_digest` names it; the code itself travels only when a spare is asked for): that
spare executes the module and runs warm_up() ahead, for requests with exactly that code
(connector_engine.child.loader.preload).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

from connector_engine.protocol import Limits, SandboxRequest

MAX_SHAPE_BYTES = 4 * 1024 * 1024
MAX_PRELOAD_BYTES = 512 * 1024  # connector + library code a spare executes ahead, at most
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
    tenant: str = ""  # set only with modules or a preload: a spare without may serve anyone
    modules: tuple[str, ...] = ()  # top-level modules to import before the request
    preload_digest: str = ""  # the code below, which the spare executes and warms up ahead
    code: str = field(default="", compare=False, repr=False)
    library_code: str = field(default="", compare=False, repr=False)

    @classmethod
    def of(cls, request: SandboxRequest, modules: tuple[str, ...] = (), digest: str = "") -> Shape:
        """The request's shape: its tenant's `modules` imported ahead, and its code preloaded
        when `digest` (the code's preload_digest) is given."""
        limits = request.limits
        tenant = request.tenant
        modules = tuple(module_names(modules)) if tenant else ()
        code, library_code = request.code, request.library_code or ""
        preload = bool(digest and tenant) and fits_preload(code, library_code)
        return cls(
            network=request.network,
            tmp_mb=limits.tmp_mb,
            memory_mb=limits.memory_mb,
            cpu_s=limits.cpu_s,
            max_processes=limits.max_processes,
            max_file_mb=limits.max_file_mb,
            tenant=tenant if modules or preload else "",
            modules=modules,
            preload_digest=digest if preload else "",
            code=code if preload else "",
            library_code=library_code if preload else "",
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

    def pack(self, *, prepare_only: bool = False, together: bool = False) -> bytes:
        """The frame the client sends first; `prepare_only`: no request follows, the fork
        server only prepares a spare of this shape (for a tenant's next request); `together`:
        another request of this shape is running (an ingest's reads: keep more spares)."""
        fields = dataclasses.asdict(self)
        if not prepare_only:  # the spare that serves a request already has the code
            del fields["code"], fields["library_code"]
        fields |= {"prepare_only": prepare_only, "together": together}
        body = json.dumps(fields, ensure_ascii=False).encode()
        return _HEADER.pack(len(body)) + body

    @classmethod
    def unpack(cls, body: bytes) -> tuple[Shape, bool, bool]:
        """The shape in a frame's body, whether only a spare is asked for, and whether another
        request of the shape is running."""
        data: dict[str, Any] = json.loads(body)
        data["modules"] = tuple(module_names(data.get("modules") or ()))
        known = {f.name for f in dataclasses.fields(cls)}
        shape = cls(**{key: value for key, value in data.items() if key in known})
        code = (shape.code, shape.library_code)
        if not all(isinstance(text, str) for text in code):
            raise ValueError("a preload's code is text")
        if shape.code and (preload_digest(*code) != shape.preload_digest or not shape.tenant):
            raise ValueError("a preload's code must match its digest and have a tenant")
        return shape, data.get("prepare_only") is True, data.get("together") is True

    def without_preload(self) -> Shape:
        """The same shape for a spare that imported the modules only."""
        tenant = self.tenant if self.modules else ""
        return dataclasses.replace(self, tenant=tenant, preload_digest="", code="", library_code="")

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


def preload_digest(code: str, library_code: str) -> str:
    """Name the connector and library code a spare preloads."""
    digest = hashlib.sha256(library_code.encode(errors="surrogatepass"))
    digest.update(b"\0")
    digest.update(code.encode(errors="surrogatepass"))
    return digest.hexdigest()[:32]


def fits_preload(code: str, library_code: str) -> bool:
    """Whether the code is small enough to travel in a shape."""
    return len(code) + len(library_code) <= MAX_PRELOAD_BYTES // 4


@dataclass(frozen=True)
class Learned:
    """What a tenant's runs taught: the modules they imported, and the code (by digest) of the
    connector that defines warm_up, for a spare to preload."""

    modules: tuple[str, ...] = ()
    preload_digest: str = ""

    def shape(self, request: SandboxRequest) -> Shape:
        """The request's shape: its spare imports these modules, and preloads its connector
        when that is the code that defines warm_up."""
        if not self.preload_digest:
            return Shape.of(request, self.modules)
        digest = preload_digest(request.code, request.library_code or "")
        return Shape.of(request, self.modules, digest if digest == self.preload_digest else "")
