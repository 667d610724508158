"""A conflict with the app's packages, told in one sentence from pip's account of it."""

from __future__ import annotations

from connector_engine.environments.pip_errors import base_conflict, pip_error

# pip 26's output for boto3 on a base with python-dateutil 4 (its resolver backtracked once).
BOTO3_ON_DATEUTIL_4 = """\
Collecting boto3==1.44.8
INFO: pip is looking at multiple versions of botocore to determine which version is compatible \
with other requirements. This could take a while.
ERROR: Cannot install boto3 because these package versions have conflicting dependencies.

The conflict is caused by:
    botocore 1.44.18 depends on python-dateutil<3.0.0 and >=2.1
    botocore 1.44.8 depends on python-dateutil<3.0.0 and >=2.1
    The user requested (constraint) python-dateutil==4.0.0

Additionally, some packages in these conflicts have no matching distributions available for \
your environment:
    python-dateutil

To fix this you could try to:
1. loosen the range of package versions you've specified
2. remove package versions to allow pip to attempt to solve the dependency conflict

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts
"""


def test_it_names_the_requirement_and_the_apps_version():
    assert pip_error(BOTO3_ON_DATEUTIL_4) == (
        "botocore 1.44.18 needs python-dateutil<3.0.0,>=2.1; "
        "the app provides python-dateutil 4.0.0."
    )


def test_it_names_a_requirement_of_the_packages_themselves():
    log = """\
The conflict is caused by:
    The user requested pandas<2
    The user requested (constraint) pandas==3.1.1
"""
    assert base_conflict(log) == "The packages ask for pandas<2; the app provides pandas 3.1.1."


def test_it_leaves_markers_out_and_matches_names_as_pip_does():
    log = """\
The conflict is caused by:
    pyspark[connect] 4.3.0 depends on Typing_Extensions>=5, <6 and !=5.1; python_version >= "3.8"
    The user requested (constraint) typing-extensions==4.16.0
"""
    assert base_conflict(log) == (
        "pyspark[connect] 4.3.0 needs Typing_Extensions>=5,<6,!=5.1; "
        "the app provides typing-extensions 4.16.0."
    )


def test_other_failures_keep_pips_error_lines():
    log = """\
Collecting nosuchpkg==1.0
ERROR: Could not find a version that satisfies the requirement nosuchpkg==1.0 (from versions: none)
ERROR: No matching distribution found for nosuchpkg==1.0
"""
    assert base_conflict(log) == ""
    assert pip_error(log) == "\n".join(log.splitlines()[1:])
    # A conflict between two requirements of the packages, the app's not involved: pip's lines.
    log = """\
ERROR: Cannot install a==1 and b==2 because these package versions have conflicting dependencies.

The conflict is caused by:
    The user requested a==1
    b 2 depends on a>=2
"""
    assert pip_error(log) == log.splitlines()[0]
