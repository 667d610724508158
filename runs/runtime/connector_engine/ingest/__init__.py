"""Ingest on the engine's side: planning (what to read, skip, delete), batch sizing, run logs."""
