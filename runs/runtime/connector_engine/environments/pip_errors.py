"""What a failed build tells the user: pip's conflict with the app's packages in one sentence, or
pip's own error lines. The whole output stays in the build log."""

from __future__ import annotations

import re

from connector_engine.environments.build import canonical_name

# A cause pip lists under "The conflict is caused by:": "<name> <version> depends on <requirement>",
# "The user requested <requirement>" and, for a package of the app, "The user requested
# (constraint) <name>==<version>" (the constraints file pins every base package).
CONFLICT_CAUSE = re.compile(
    r"^\s+(?:(?P<parent>\S+ \S+) depends on |The user requested (?P<base>\(constraint\) )?)"
    r"(?P<requirement>(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)[^;]*)"
)


def pip_error(log: str) -> str:
    """What a failed build tells the user: a conflict with the app's packages in one sentence,
    else pip's own error lines (or its last lines when there are none)."""
    conflict = base_conflict(log)
    if conflict:
        return conflict
    lines = log.strip().splitlines()
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors or lines[-5:]
    return "\n".join(chosen)[-4000:]


def base_conflict(log: str) -> str:
    """pip's conflicts with the app's packages as sentences naming the requirement and the app's
    version ("botocore 1.44.8 needs python-dateutil<3.0.0,>=2.1; the app provides python-dateutil
    4.0.0."), or "" when pip reported none."""
    provided: dict[str, str] = {}  # canonical name -> "<name> <version>" of the app's package
    needs: dict[str, str] = {}  # canonical name -> the first "<who> needs <requirement>"
    causes = False
    for line in log.splitlines():
        if line.strip() == "The conflict is caused by:":
            causes = True
            continue
        match = CONFLICT_CAUSE.match(line) if causes else None
        if not match:
            causes = causes and bool(line.strip())  # the list ends at a blank line
            continue
        # pip writes "a<3, >=1 and !=2" for "a<3,>=1,!=2"; a marker (after ";") is left out.
        requirement = re.sub(r",? and |, ", ",", match["requirement"].strip())
        name = canonical_name(match["name"])
        if match["base"]:
            provided[name] = requirement.replace("==", " ", 1)
        else:
            who = f"{match['parent']} needs" if match["parent"] else "The packages ask for"
            needs.setdefault(name, f"{who} {requirement}")
    return " ".join(
        f"{needs[name]}; the app provides {version}."
        for name, version in provided.items()
        if name in needs
    )
