"""Requirement text and package file names: what a connection or connector may ask pip for.

One PEP 508 requirement per line; pip options and direct references are refused with the line
number, so the index stays the server's configuration and files arrive only as uploads.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

PACKAGE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*\.(whl|tar\.gz|zip)$")


class RequirementsError(ValueError):
    """Requirement text with bad lines; `problems` holds one message per bad line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_requirements(text: str) -> tuple[list[str], list[str]]:
    """Return (normalised requirement lines, one problem message per bad line).

    One PEP 508 requirement per line; blank lines and `#` comments are allowed. pip options
    (-e, -r, --index-url, ...) and direct references (name @ URL, paths) are refused: package
    files are uploaded to the connection, the index is the server's configuration.
    """
    requirements: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = re.split(r"(^|\s)#", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        if line.startswith("-"):
            problems.append(
                f"Line {number}: pip options such as {line.split()[0]!r} are not allowed; "
                "write one requirement per line (upload package files to the connection)."
            )
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            message = str(exc).splitlines()[0]
            problems.append(f"Line {number}: {line!r} is not a PEP 508 requirement ({message}).")
            continue
        if requirement.url:
            problems.append(
                f"Line {number}: direct references ({requirement.name} @ ...) are not allowed; "
                f"upload the file to the connection and require {requirement.name!r} by name."
            )
            continue
        requirements.append(str(requirement))
    return requirements, problems


def requirement_lines(text: str) -> list[str]:
    """Return the normalised requirement lines of `text`; raise RequirementsError on bad lines."""
    requirements, problems = parse_requirements(text)
    if problems:
        raise RequirementsError(problems)
    return requirements


def package_file_problem(name: str) -> str | None:
    """Say what is wrong with an uploaded package file's name, or None when it is usable."""
    if not PACKAGE_FILE_NAME.match(name):
        return (
            f"{name!r} is not a package file name: upload a wheel (.whl) or a source "
            "distribution (.tar.gz or .zip) under the name pip gave it."
        )
    try:
        if name.endswith(".whl"):
            parse_wheel_filename(name)
        else:
            parse_sdist_filename(name)
    except (InvalidWheelFilename, InvalidSdistFilename) as exc:
        return f"{name!r} is not a valid package file name: {exc}"
    return None
