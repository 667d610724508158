"""Programming languages by decade: a pandas connector that works offline.

The languages table and its helpers come from the connection's library code.
"""

import hashlib
import json

import pandas as pd
from library import LANGUAGES, decade_of, rows_of

COLUMNS = ["language", "first_appeared", "designed_by", "paradigm"]


def context(credentials):
    # No credentials needed; a real connector would parse them here (often JSON).
    return {"source": "built-in list"}


def list_objects(context, metadata):
    # One partition per decade; the fingerprint changes when that decade's rows change.
    for decade in sorted({decade_of(year) for _, year, _, _ in LANGUAGES}):
        digest = hashlib.sha256(json.dumps(rows_of(decade)).encode()).hexdigest()
        yield {"name": decade, "fingerprint": digest, "is_prefix": False}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame(rows_of(metadata["name"]), columns=COLUMNS)


def infer_schema(context):
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType(
        [
            StructField("language", StringType(), False),
            StructField("first_appeared", LongType(), False),
            StructField("designed_by", StringType(), True),
            StructField("paradigm", StringType(), True),
        ]
    )
