"""Programming languages by decade: a self-contained pandas connector that works offline."""

import hashlib
import json

import pandas as pd

LANGUAGES = [
    ("Fortran", 1957, "John Backus", "imperative"),
    ("Lisp", 1958, "John McCarthy", "functional"),
    ("COBOL", 1959, "CODASYL", "imperative"),
    ("C", 1972, "Dennis Ritchie", "imperative"),
    ("Smalltalk", 1972, "Alan Kay", "object-oriented"),
    ("ML", 1973, "Robin Milner", "functional"),
    ("SQL", 1974, "Donald Chamberlin, Raymond Boyce", "declarative"),
    ("C++", 1985, "Bjarne Stroustrup", "multi-paradigm"),
    ("Erlang", 1986, "Joe Armstrong", "functional"),
    ("Perl", 1987, "Larry Wall", "multi-paradigm"),
    ("Haskell", 1990, "Haskell Committee", "functional"),
    ("Python", 1991, "Guido van Rossum", "multi-paradigm"),
    ("Java", 1995, "James Gosling", "object-oriented"),
    ("JavaScript", 1995, "Brendan Eich", "multi-paradigm"),
    ("Ruby", 1995, "Yukihiro Matsumoto", "object-oriented"),
    ("C#", 2000, "Anders Hejlsberg", "multi-paradigm"),
    ("Scala", 2004, "Martin Odersky", "multi-paradigm"),
    ("Go", 2009, "Robert Griesemer, Rob Pike, Ken Thompson", "imperative"),
    ("Rust", 2010, "Graydon Hoare", "multi-paradigm"),
    ("Kotlin", 2011, "JetBrains", "multi-paradigm"),
    ("Julia", 2012, "Jeff Bezanson, Stefan Karpinski, Viral Shah, Alan Edelman", "multi-paradigm"),
    ("Swift", 2014, "Chris Lattner", "multi-paradigm"),
]
COLUMNS = ["language", "first_appeared", "designed_by", "paradigm"]


def decade_of(year):
    return f"{year // 10 * 10}s"


def rows_of(decade):
    return [row for row in LANGUAGES if decade_of(row[1]) == decade]


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
