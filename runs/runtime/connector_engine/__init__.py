"""The engine that runs connector code, free of Django.

Public surface: `connector_engine.protocol` (requests, results, limits, vocabularies, the error
shape) and one sub-package per place code runs: `child` (inside the sandboxed connector process
and Spark's Python workers), `sandbox` (the host side: warm workers, supervisors, registry),
`environments` (package environments), `spark` (the Connect server, session pool, data source)
and `ingest` (planning and batching). See docs/architecture.md.
"""

from pathlib import Path

# The directory this package is imported from: the sandbox worker's and Spark's import path.
IMPORT_ROOT = str(Path(__file__).resolve().parent.parent)
