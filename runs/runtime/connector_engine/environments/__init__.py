"""Package environments: `requirements` (requirement lines, package file names), `spec` (what an
environment holds and its key), `build` (running pip under bubblewrap), `store` (the on-disk
store of built environments)."""
