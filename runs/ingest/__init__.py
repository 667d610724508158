"""Ingests: plan a connector's partitions, read them on an engine, commit them.

services (create, execute, cancel, recover, plan; runs.tasks enqueues) -> execution (claim and
execute one run) -> planning (list, validate, compare), reads (the read-engine interface and the
sandbox engine), spark_reads (the Spark engine), commits (partitions, job results, progress).
"""
