"""A connector test that asks for `spark` gets a Spark Connect session; others never start one."""

from __future__ import annotations

import pytest

from runs.models import RunStatus
from runs.services import connector_tests_run
from tests.factories import TRIVIAL_CODE, make_connector

pytestmark = [pytest.mark.django_db, pytest.mark.spark, pytest.mark.usefixtures("spark_server")]

CODE = (
    TRIVIAL_CODE
    + """

def test_spark_counts(spark):
    assert spark.range(3).count() == 4
"""
)


def test_a_test_asking_for_spark_gets_a_session(connection):
    connector = make_connector(connection=connection, name="Spark tests", code=CODE)
    run = connector_tests_run(connector=connector)
    assert run.kind == "test" and run.status == RunStatus.FAILED, run.error
    (test,) = run.result["tests"]
    assert test["outcome"] == "failed"
    assert test["message"] == "assert 3 == 4\n where: spark.range(3).count() == 4"
