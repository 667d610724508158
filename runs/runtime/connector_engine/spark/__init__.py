"""Spark: the local Connect server, the session pool and the connector as a Data Source."""
