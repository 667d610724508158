"""The Spark status line: which Spark the app uses and whether it is up."""

from __future__ import annotations

from typing import Any

from django import template

from runs import spark

register = template.Library()


@register.simple_tag
def spark_status() -> dict[str, Any]:
    """Return runs.spark.spark_status() (never starts a server)."""
    return spark.spark_status()
