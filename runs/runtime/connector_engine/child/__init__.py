"""Code that runs inside the sandboxed connector process (and in Spark's Python workers)."""
