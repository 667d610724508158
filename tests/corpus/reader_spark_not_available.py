# The spark interface is not available yet: a clear error, not a crash.
# expect-action: read
# expect-interface: spark
# expect-error: NotAvailable
# expect-message: spark interface is not available yet


def list_objects(context, metadata):
    yield {"name": "a", "fingerprint": "v1"}


def read_spark_dataframe(spark, context, metadata):
    return spark.range(10)
