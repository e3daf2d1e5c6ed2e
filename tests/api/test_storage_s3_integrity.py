"""The S3-compatible store checks what it reads against the blob's address (a real local S3 server).

Skipped when the optional packages (`boto3`, `moto[server]`) are not installed.
"""

from __future__ import annotations

import hashlib

import pytest

from api.storage import ContentMismatchError, S3Store
from tests.api.evidence import jpeg
from tests.api.test_storage_s3 import BUCKET, boto3, s3, s3_endpoint  # noqa: F401  (fixtures)


def test_s3_store_refuses_an_object_overwritten_in_the_bucket(s3: str) -> None:  # noqa: F811
    store = S3Store(BUCKET, "ev/", endpoint_url=s3)
    data = jpeg(5)
    sha = hashlib.sha256(data).hexdigest()
    uri = store.put(data, sha)
    # Someone with write access to the bucket replaces the object with another valid JPEG.
    boto3.client("s3", endpoint_url=s3).put_object(Bucket=BUCKET, Key=uri.split("/", 3)[3], Body=jpeg(6))
    with pytest.raises(ContentMismatchError, match=sha):
        store.get(uri)
    assert store.put(data, sha) == uri and store.get(uri) == data
