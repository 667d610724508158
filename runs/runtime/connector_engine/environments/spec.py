"""What an environment holds and its identity: requirement lines, package files and the key.

An environment is identified by `environment_key(spec)`: a hash of the interpreter
(implementation, Python version and the app's installed base packages), the sorted, normalised
requirement lines and the uploaded package files (name and SHA-256), and whether it is built
without network access (only then: the keys of environments with network access are unchanged).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from connector_engine.environments.requirements import requirement_lines


@dataclass(frozen=True)
class PackageFileRef:
    """An uploaded package file: its name (what pip sees), content hash and where it is stored."""

    name: str
    sha256: str
    path: str


@dataclass(frozen=True)
class EnvironmentSpec:
    """What an environment holds: normalised requirement lines and uploaded package files."""

    requirements: tuple[str, ...] = ()
    files: tuple[PackageFileRef, ...] = ()
    # False: built with no network at all (only uploaded files and what the base has).
    network: bool = True

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.files

    @property
    def key(self) -> str:
        return environment_key(self)

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "python": python_tag(),
            "requirements": list(self.requirements),
            "files": [{"name": f.name, "sha256": f.sha256} for f in self.files],
        }
        if not self.network:
            described["network"] = False
        return described


def environment_spec(
    requirement_texts: Iterable[str],
    files: Iterable[PackageFileRef] = (),
    *,
    network: bool = True,
) -> EnvironmentSpec:
    """Combine requirement texts (connection's, then connector's) and files into a spec;
    `network` False builds it without network access.

    Raises RequirementsError when a text has bad lines.
    """
    lines: set[str] = set()
    for text in requirement_texts:
        lines.update(requirement_lines(text))
    ordered_files = sorted(set(files), key=lambda f: (f.name, f.sha256))
    return EnvironmentSpec(tuple(sorted(lines)), tuple(ordered_files), network)


def python_tag() -> str:
    return f"{sys.implementation.name}-{platform.python_version()}"


@lru_cache(maxsize=1)
def base_constraints() -> str:
    """Pin every distribution installed in the app's interpreter to its version (pip -c)."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and dist.version:
            pins[name.lower()] = f"{name}=={dist.version}"
    return "".join(f"{pins[name]}\n" for name in sorted(pins))


def environment_key(spec: EnvironmentSpec) -> str:
    """The environment's identity: a hash of the interpreter, the base, requirements and files."""
    identity = {
        **spec.describe(),
        "base": hashlib.sha256(base_constraints().encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
