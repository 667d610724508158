"""Ingest planning (what to read, skip, delete) and batching."""
