"""Build tiny wheels inside tests: a wheel is a zip with a dist-info, no build backend needed."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile

from connections.models import Connection
from environments import services
from environments.models import PackageFile

# A connector that imports the test package and returns what it says, in preview and ingest.
IMPORTING_CODE = """
import pandas as pd
import tinypkg


def list_objects(context, metadata):
    yield {"name": "only", "fingerprint": "v1"}


def read_pandas_dataframe(context, metadata):
    return pd.DataFrame({"value": [tinypkg.VALUE], "pandas": [pd.__version__]})
"""


def wheel_bytes(
    name: str = "tinypkg", version: str = "0.1", requires: tuple[str, ...] = ()
) -> bytes:
    """Return a minimal, valid pure-Python wheel whose module has VALUE = "<name> <version>"."""
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    files = {
        f"{name}/__init__.py": f"VALUE = {f'{name} {version}'!r}\n".encode(),
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(
        f"{path},sha256={_record_hash(data)},{len(data)}\n" for path, data in files.items()
    )
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            # A fixed timestamp: the same wheel has the same bytes (and hash) every time.
            archive.writestr(zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def wheel_name(name: str = "tinypkg", version: str = "0.1") -> str:
    return f"{name}-{version}-py3-none-any.whl"


def upload_wheel(
    connection: Connection,
    name: str = "tinypkg",
    version: str = "0.1",
    requires: tuple[str, ...] = (),
) -> PackageFile:
    """Upload a freshly built wheel (requiring `requires`) to the connection through the service."""
    return services.package_file_add(
        connection=connection,
        filename=wheel_name(name, version),
        chunks=[wheel_bytes(name, version, requires)],
    )


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def sdist_bytes(setup: str, name: str = "probe", version: str = "0.1") -> bytes:
    """A source distribution `name`-`version`.tar.gz whose setup.py is `setup` (build code)."""
    files = {
        f"{name}-{version}/setup.py": setup.encode(),
        f"{name}-{version}/PKG-INFO": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        ).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
