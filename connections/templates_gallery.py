"""The starting points offered when creating a connector."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STARTERS_DIR = Path(__file__).resolve().parent / "starters"


@dataclass(frozen=True)
class Starter:
    key: str
    title: str
    description: str
    interface: str
    parser: str
    filename: str

    @property
    def code(self) -> str:
        return (STARTERS_DIR / self.filename).read_text()


STARTERS = [
    Starter("pandas", "pandas DataFrame", "Call an API or a database; return a DataFrame per "
            "partition.", "pandas", "", "pandas_api.py"),
    Starter("spark", "Spark DataFrame", "Build each partition with a Spark Connect session.",
            "spark", "", "spark_range.py"),
    Starter("bytes-csv", "Bytes + CSV", "Stream file bytes; the CSV parser makes the rows.",
            "bytes", "csv", "bytes_csv.py"),
    Starter("folders", "Folder hierarchy", "Folders as prefixes that expand, files as "
            "partitions fingerprinted by content.", "pandas", "", "folders.py"),
]  # fmt: skip
STARTERS_BY_KEY = {starter.key: starter for starter in STARTERS}
