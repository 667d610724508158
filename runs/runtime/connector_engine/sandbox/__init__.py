"""The host side of the sandbox: warm fork servers that fork a supervised child per request."""

from connector_engine.sandbox.client import Sandbox, run_action

__all__ = ["Sandbox", "run_action"]
