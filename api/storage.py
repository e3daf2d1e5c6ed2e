"""Content-addressed evidence stores: a local directory (default) and an S3-compatible bucket (option).

A blob's address is its SHA-256, so storing the same file twice is free, a stored file cannot be
changed in place without its address no longer matching, and a half-finished ingest leaves at worst an
unreferenced blob (never a row pointing at a missing or partial file). Blobs are fanned out as
`aa/bb/aabb…` so no directory (or key prefix) grows to millions of entries.

URIs stored in the database: `local:aa/bb/<sha256>` (relative to the store root, so the root can move)
and `s3://<bucket>/<prefix>aa/bb/<sha256>`.

Every read is checked against the address: bytes changed or replaced in the store (another valid JPEG
written over a blob, an object overwritten in the bucket) raise `ContentMismatchError` instead of being
returned, so no reader can pass them off as the evidence that was signed. A blob already present is
taken for stored only when its hash matches (not merely its size); otherwise it is rewritten.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from api.errors import StorageError
from api.settings import Settings

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _check_sha(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise StorageError(f"not a lowercase hex SHA-256: {sha256[:80]!r}")
    return sha256


def _fanout(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _verify(data: bytes, sha256: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise StorageError(f"content hash {actual} does not match the address {sha256}")


class ContentMismatchError(StorageError):
    """The bytes stored at an address no longer hash to it: the blob was changed or replaced in the store.

    Attributes:
        uri: where they were read.
        actual: the SHA-256 (hex) of the bytes found there.
    """

    def __init__(self, uri: str, actual: str) -> None:
        super().__init__(f"evidence blob {uri} holds other content (sha256 {actual})")
        self.uri = uri
        self.actual = actual


def address_of(uri: str) -> str:
    """The SHA-256 a store URI addresses (its last path segment).

    Raises:
        StorageError: the URI does not end in a lowercase hex SHA-256.
    """
    return _check_sha(uri.rsplit("/", 1)[-1].rsplit(":", 1)[-1])


def _checked(uri: str, data: bytes) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != address_of(uri):
        raise ContentMismatchError(uri, actual)
    return data


class EvidenceStore(Protocol):
    """Where evidence bytes live. Every method raises `StorageError` on failure."""

    def put(self, data: bytes, sha256: str) -> str:
        """Store `data` (whose SHA-256 must be `sha256`) durably; return its URI. Idempotent."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes at `uri`, checked against the SHA-256 the URI addresses (`ContentMismatchError`)."""
        ...

    def exists(self, uri: str) -> bool:
        """Whether a blob is stored at `uri`."""
        ...

    def delete(self, uri: str) -> None:
        """Remove the blob at `uri` (no error when it is already gone)."""
        ...


class LocalStore:
    """Evidence in a local directory; writes are atomic (temp file, fsync, rename, fsync directory)."""

    scheme = "local:"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this hash lives."""
        return self.root / _fanout(_check_sha(sha256))

    def _path_of(self, uri: str) -> Path:
        if not uri.startswith(self.scheme):
            raise StorageError(f"not a local store URI: {uri[:100]!r}")
        return self.path_for(uri[len(self.scheme) :].rsplit("/", 1)[-1])

    def put(self, data: bytes, sha256: str) -> str:
        """See `EvidenceStore.put`."""
        _verify(data, sha256)
        path = self.path_for(sha256)
        uri = self.scheme + _fanout(sha256)
        try:
            if path.is_file() and path.stat().st_size == len(data):
                if hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
                    return uri  # already stored (written atomically before)
                # Same size, other bytes: changed in place since. The verified upload replaces them.
                log.error("evidence blob %s held other content (altered in the store); rewritten", sha256)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                Path(tmp).replace(path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            # The rename itself must reach the disk before the database row that points at it.
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as e:
            raise StorageError(f"cannot write evidence blob {sha256}: {e}") from e
        return uri

    def get(self, uri: str) -> bytes:
        """See `EvidenceStore.get`."""
        path = self._path_of(uri)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise StorageError(f"cannot read evidence blob {uri}: {e}") from e
        return _checked(uri, data)

    def exists(self, uri: str) -> bool:
        """See `EvidenceStore.exists`."""
        return self._path_of(uri).is_file()

    def delete(self, uri: str) -> None:
        """See `EvidenceStore.delete`."""
        try:
            self._path_of(uri).unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"cannot delete evidence blob {uri}: {e}") from e


class S3Store:
    """Evidence in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW). Needs the optional `boto3`.

    S3 writes are atomic per object; the SHA-256 is sent so the service verifies the upload too.
    Credentials come from boto3's usual sources (environment, config files, instance role).
    """

    def __init__(
        self, bucket: str, prefix: str = "evidence/", endpoint_url: str | None = None, client: Any = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        if client is None:
            try:
                boto3 = importlib.import_module("boto3")
            except ImportError:
                raise StorageError("the s3 evidence store needs boto3: pip install boto3") from None
            client = boto3.client("s3", endpoint_url=endpoint_url)
        self._client = client

    def _key(self, sha256: str) -> str:
        return self.prefix + _fanout(_check_sha(sha256))

    def _key_of(self, uri: str) -> str:
        head = f"s3://{self.bucket}/"
        if not uri.startswith(head):
            raise StorageError(f"not a URI of bucket {self.bucket}: {uri[:100]!r}")
        return self._key(uri.rsplit("/", 1)[-1])

    def put(self, data: bytes, sha256: str) -> str:
        """See `EvidenceStore.put`."""
        import base64

        _verify(data, sha256)
        key = self._key(sha256)
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode("ascii"),
            )
        except Exception as e:
            raise StorageError(f"cannot write evidence blob {sha256} to s3://{self.bucket}: {e}") from e
        return f"s3://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        """See `EvidenceStore.get`."""
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self._key_of(uri))["Body"]
            data: bytes = body.read()
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(f"cannot read evidence blob {uri}: {e}") from e
        return _checked(uri, data)

    def exists(self, uri: str) -> bool:
        """See `EvidenceStore.exists`."""
        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key_of(uri))
        except StorageError:
            raise
        except Exception:  # noqa: BLE001 - a 404 arrives as botocore ClientError
            return False
        return True

    def delete(self, uri: str) -> None:
        """See `EvidenceStore.delete`."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key_of(uri))
        except StorageError:
            raise
        except Exception as e:
            raise StorageError(f"cannot delete evidence blob {uri}: {e}") from e


def make_store(settings: Settings) -> EvidenceStore:
    """The evidence store the settings ask for. Raises `StorageError` (s3 without boto3)."""
    if settings.evidence_store == "s3":
        assert settings.s3_bucket is not None  # checked by Settings
        return S3Store(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url)
    return LocalStore(settings.evidence_dir)
