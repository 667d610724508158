# A spark read without a Spark Connect server (no spark_remote): a clear error, not a crash.
# expect-action: read
# expect-interface: spark
# expect-error: NotAvailable
# expect-message: no Spark Connect server was given


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "v1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(10)
