"""The Django-free engine that runs connector code: `run_action(request) -> SandboxResult`."""

from runs.runtime.sandbox import Sandbox, configure_default_sandbox, default_sandbox, run_action
from runs.runtime.types import Limits, SandboxRequest, SandboxResult

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxRequest",
    "SandboxResult",
    "configure_default_sandbox",
    "default_sandbox",
    "run_action",
]
