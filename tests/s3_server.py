"""A real S3 API on loopback for tests: moto's standalone server in a virtualenv of its own.

The server is installed from requirements-moto.txt (hashes checked) into its own virtualenv, not
into the tests' interpreter: every distribution of that interpreter is a constraint on connection
environments and importable by connector code, and moto brings boto3. The tests' side talks to it
with plain HTTP (`S3Bucket`): moto checks no signatures (its default), so a SigV4-shaped
Authorization header naming an access key stands for a signed request (without one, moto treats
the request as anonymous and refuses object reads).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from email.message import Message
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
LOCK_FILE = REPO / "requirements-moto.txt"
START_TIMEOUT_S = 60
S3_XMLNS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class MotoServer:
    """moto's S3 server on 127.0.0.1, a real subprocess: `start`, then `stop`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        """Install the server (uv's cache makes it fast after the first time), start it on a
        free port and return once it answers."""
        venv = self.directory / "venv"
        environment = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        uv = str(Path(sys.executable).parent / "uv")  # requirements-dev.txt has it
        python = str(venv / "bin" / "python")
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], environment)
        install = [uv, "pip", "install", "--quiet", "--python", python, "--require-hashes"]
        _run([*install, "-r", str(LOCK_FILE)], environment)
        self.port = free_port()
        log = (self.directory / "moto.log").open("ab")
        self.process = subprocess.Popen(
            [str(venv / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        log.close()
        self._wait_until_answering()
        return self

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log()}")
            try:
                request("GET", self.endpoint + "/")  # ListBuckets
                return
            except OSError:  # not listening yet (URLError is an OSError)
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer in {START_TIMEOUT_S} s: {self.log()}")

    def stop(self) -> None:
        """Stop the server and wait for it: no process is left behind."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log(self) -> str:
        path = self.directory / "moto.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class S3Bucket:
    """One bucket of the server, changed and listed over plain HTTP."""

    def __init__(self, endpoint: str, name: str, region: str) -> None:
        self.url = f"{endpoint}/{name}"
        self.name, self.region = name, region

    def create(self) -> None:
        configuration = (
            f'<CreateBucketConfiguration xmlns="{S3_XMLNS[1:-1]}">'
            f"<LocationConstraint>{self.region}</LocationConstraint>"
            "</CreateBucketConfiguration>"
        )
        request("PUT", self.url, configuration.encode())

    def put(self, key: str, body: bytes) -> str:
        """Store an object; return its ETag, as S3 gives it (quoted MD5 of the bytes)."""
        etag = request("PUT", self._object_url(key), body)[0]["ETag"]
        assert etag == f'"{hashlib.md5(body).hexdigest()}"'
        return etag

    def delete(self, key: str) -> None:
        request("DELETE", self._object_url(key))

    def etags(self) -> dict[str, str]:
        """{key: ETag} of every object, from the server's own listing."""
        found: dict[str, str] = {}
        token = ""
        while True:
            query = "?list-type=2" + (f"&continuation-token={quote(token)}" if token else "")
            root = ET.fromstring(request("GET", self.url + query)[1])
            for item in root.iter(S3_XMLNS + "Contents"):
                found[item.findtext(S3_XMLNS + "Key")] = item.findtext(S3_XMLNS + "ETag")
            token = root.findtext(S3_XMLNS + "NextContinuationToken") or ""
            if not token:
                return found

    def destroy(self) -> None:
        """Delete every object, then the bucket."""
        for key in self.etags():
            self.delete(key)
        request("DELETE", self.url)

    def _object_url(self, key: str) -> str:
        return f"{self.url}/{quote(key)}"


def request(method: str, url: str, body: bytes | None = None) -> tuple[Message, bytes]:
    """Send one "signed" request (see the module docstring); return its headers and body."""
    headers = {
        "Authorization": (
            "AWS4-HMAC-SHA256 Credential=AKIATESTS/20240101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=0"
        ),
        # Not urllib's form type: the server would take the body as form fields.
        "Content-Type": "application/octet-stream",
    }
    outgoing = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(outgoing, timeout=30) as response:
        return response.headers, response.read()


def _run(argv: list[str], environment: dict[str, str]) -> None:
    done = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-4000:]}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
