"""Read partitions as Spark DataFrames (the spark interface)."""


def list_objects(context, metadata):
    for day in ("2025-01-01", "2025-01-02"):
        yield {"name": day, "fingerprint": day, "is_prefix": False}


def read_spark_dataframe(spark, context, metadata):
    # `spark` is a Spark Connect session; build or load a DataFrame for one partition.
    rows = [(metadata["name"], 1), (metadata["name"], 2)]
    return spark.createDataFrame(rows, "day string, n long")
