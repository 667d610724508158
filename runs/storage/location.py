"""Where the partitions store is: settings.PARTITIONS_URL, read into a PartitionStore.

PARTITIONS_URL is a local directory (an absolute path; empty: PARTITIONS_DIR) or
`s3://bucket/prefix` on AWS S3 or any S3 API (MinIO, Ceph...). An S3 store takes its endpoint,
region and keys from PARTITIONS_S3_ENDPOINT_URL, PARTITIONS_S3_REGION,
PARTITIONS_S3_ACCESS_KEY_ID and PARTITIONS_S3_SECRET_ACCESS_KEY; without keys, pyarrow's AWS
credential chain applies (AWS_* variables, the instance's role). A bad value raises
ImproperlyConfigured naming what is wrong with it (never the secret).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# S3's rules for new bucket names: 3-63 lowercase letters, digits, dots and hyphens, starting
# and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._=+-]+")


@dataclass(frozen=True)
class S3Location:
    """A bucket, a key prefix in it (no leading or trailing "/"; may be empty) and how to reach
    it."""

    bucket: str
    prefix: str
    endpoint: str = ""  # host[:port], empty: AWS
    scheme: str = "https"
    region: str = ""
    access_key: str = ""
    secret_key: str = ""

    def __repr__(self) -> str:  # never the secret
        return f"S3Location(bucket={self.bucket!r}, prefix={self.prefix!r})"


@dataclass(frozen=True)
class PartitionStore:
    """The store's filesystem and its root there: a local directory, or "bucket/prefix"."""

    filesystem: pafs.FileSystem
    root: str
    local: bool
    url: str  # what to show people: the directory or s3://bucket/prefix

    def path(self, relative: str) -> str:
        """Return the filesystem path of a key relative to the root (checked by the caller)."""
        return f"{self.root}/{relative}" if self.root else relative


def partition_store() -> PartitionStore:
    """Return the store the settings name (the S3 filesystem is made once per configuration)."""
    url = str(getattr(settings, "PARTITIONS_URL", "") or "").strip()
    if not url:
        return _local_store(str(Path(settings.PARTITIONS_DIR)))
    if "://" not in url:
        if not Path(url).is_absolute():
            raise ImproperlyConfigured(
                f"PARTITIONS_URL {url!r} is a relative path: give an absolute directory or "
                "s3://bucket/prefix"
            )
        return _local_store(url)
    location = s3_location(url)
    return _s3_store(location)


def local_root() -> Path:
    """Return the store's directory, refusing an object store (which has none)."""
    store = partition_store()
    if not store.local:
        raise ValueError(f"the partitions store {store.url} is not a local directory")
    return Path(store.root)


def s3_location(url: str) -> S3Location:
    """Read `s3://bucket/prefix` and the PARTITIONS_S3_* settings into an S3Location."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ImproperlyConfigured(
            f"PARTITIONS_URL {url!r} has the scheme {parts.scheme!r}: only a local directory or "
            "s3://bucket/prefix is supported"
        )
    if "@" in parts.netloc:
        raise ImproperlyConfigured(
            "PARTITIONS_URL must not hold credentials (user:password@): set "
            "PARTITIONS_S3_ACCESS_KEY_ID and PARTITIONS_S3_SECRET_ACCESS_KEY instead"
        )
    if parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"PARTITIONS_URL {url!r} has a query or a fragment: give s3://bucket/prefix only"
        )
    bucket = parts.netloc
    if not bucket:
        raise ImproperlyConfigured(f"PARTITIONS_URL {url!r} names no bucket (s3://bucket/prefix)")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ImproperlyConfigured(
            f"PARTITIONS_URL {url!r}: {bucket!r} is not a valid S3 bucket name (3-63 lowercase "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit)"
        )
    prefix = parts.path.strip("/")
    for segment in prefix.split("/") if prefix else []:
        if segment in (".", "..") or not _PREFIX_SEGMENT.fullmatch(segment):
            raise ImproperlyConfigured(
                f"PARTITIONS_URL {url!r}: the prefix segment {segment!r} is empty, '.' or '..', "
                "or has characters other than letters, digits and . _ = + -"
            )
    endpoint, scheme = _endpoint(getattr(settings, "PARTITIONS_S3_ENDPOINT_URL", "") or "")
    access_key = getattr(settings, "PARTITIONS_S3_ACCESS_KEY_ID", "") or ""
    secret_key = getattr(settings, "PARTITIONS_S3_SECRET_ACCESS_KEY", "") or ""
    if bool(access_key) != bool(secret_key):
        raise ImproperlyConfigured(
            "PARTITIONS_S3_ACCESS_KEY_ID and PARTITIONS_S3_SECRET_ACCESS_KEY go together: set "
            "both, or neither to use the AWS credential chain"
        )
    region = getattr(settings, "PARTITIONS_S3_REGION", "") or ""
    return S3Location(bucket, prefix, endpoint, scheme, region, access_key, secret_key)


def _endpoint(url: str) -> tuple[str, str]:
    """Return (host[:port], scheme) of PARTITIONS_S3_ENDPOINT_URL; ("", "https") when unset."""
    if not url:
        return "", "https"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"PARTITIONS_S3_ENDPOINT_URL {url!r} must be http(s)://host[:port]"
        )
    if parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ImproperlyConfigured(
            f"PARTITIONS_S3_ENDPOINT_URL {url!r} must be http(s)://host[:port], with no path, "
            "query or credentials"
        )
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise ImproperlyConfigured(f"PARTITIONS_S3_ENDPOINT_URL {url!r}: {exc}") from None
    return parts.netloc, parts.scheme


@functools.lru_cache(maxsize=8)
def _local_store(directory: str) -> PartitionStore:
    return PartitionStore(pafs.LocalFileSystem(), directory.rstrip("/") or "/", True, directory)


@functools.lru_cache(maxsize=8)
def _s3_store(location: S3Location) -> PartitionStore:
    options = {}
    if location.endpoint:
        options["endpoint_override"] = location.endpoint
    if location.region:
        options["region"] = location.region
    if location.access_key:
        options["access_key"] = location.access_key
        options["secret_key"] = location.secret_key
    filesystem = pafs.S3FileSystem(scheme=location.scheme, **options)
    root = f"{location.bucket}/{location.prefix}" if location.prefix else location.bucket
    return PartitionStore(filesystem, root, False, f"s3://{root}")
