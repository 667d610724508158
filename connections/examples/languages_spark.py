"""Programming languages by decade, read as a Spark DataFrame (the spark interface)."""

import hashlib
import json

from library import LANGUAGES, decade_of, rows_of

SCHEMA = "language string, first_appeared long, designed_by string, paradigm string"


def list_objects(context, metadata):
    for decade in sorted({decade_of(year) for _, year, _, _ in LANGUAGES}):
        digest = hashlib.sha256(json.dumps(rows_of(decade)).encode()).hexdigest()
        yield {"name": decade, "fingerprint": digest, "is_prefix": False}


def read_spark_dataframe(spark, context, metadata):
    return spark.createDataFrame(rows_of(metadata["name"]), schema=SCHEMA)
