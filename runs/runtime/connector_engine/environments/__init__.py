"""Package environments: requirements, the pip-built store."""
