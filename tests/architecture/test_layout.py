"""The structure docs/architecture.md describes, checked: module sizes, settings, import paths.

The dependency direction itself is checked by import-linter (`lint-imports`, pyproject.toml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import connector_engine

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Path(connector_engine.__file__).resolve().parent
APPS = ["api", "connectors_site", "connections", "environments", "runs"]
MAX_MODULE_LINES = 500


def project_modules() -> list[Path]:
    """Every Python module of the apps and the engine, migrations aside."""
    modules = []
    for top in APPS:
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" not in path.parts:
                modules.append(path)
    return modules


def test_it_keeps_every_module_under_500_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in project_modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}


def test_it_finds_the_engine_inside_the_project_without_hard_coding_it():
    assert ENGINE == ROOT / "runs" / "runtime" / "connector_engine"
    assert Path(connector_engine.IMPORT_ROOT) == ENGINE.parent
    # The engine's import root holds the engine and nothing of the app.
    packages = {p.name for p in ENGINE.parent.iterdir() if (p / "__init__.py").exists()}
    assert packages == {"connector_engine"}


def test_importing_settings_creates_and_writes_nothing(tmp_path):
    data_dir = tmp_path / "fresh-data"
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "CREDENTIALS_KEYS"}}
    result = subprocess.run(
        [sys.executable, "-c", "import connectors_site.settings as s; print(s.DATA_DIR)"],
        cwd=ROOT,
        env=env | {"DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(data_dir)
    assert not data_dir.exists()
