"""The S3-compatible evidence store against a real local S3 server (moto's, speaking the S3 protocol).

Skipped when the optional packages (`boto3`, `moto[server]`) are not installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from api.errors import StorageError
from api.models import EvidenceFile
from api.storage import S3Store
from tests.api.conftest import World
from tests.api.evidence import build_package, jpeg, post_package
from tests.api.pg import _free_port

boto3 = pytest.importorskip("boto3", reason="optional: pip install boto3 for the s3 evidence store")
moto_server = pytest.importorskip(
    "moto.server", reason="optional test dependency: pip install 'moto[server]'"
)

BUCKET = "phatnguoi-evidence"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty bucket on the local S3 server (credentials are the server's test ones)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield s3_endpoint
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def test_s3_store_round_trip(s3: str) -> None:
    store = S3Store(BUCKET, "ev/", endpoint_url=s3)
    data = jpeg(5)
    sha = hashlib.sha256(data).hexdigest()
    uri = store.put(data, sha)
    assert uri == f"s3://{BUCKET}/ev/{sha[:2]}/{sha[2:4]}/{sha}"
    assert store.put(data, sha) == uri and store.get(uri) == data and store.exists(uri)
    with pytest.raises(StorageError, match="does not match"):
        store.put(b"other", sha)
    with pytest.raises(StorageError, match="not a URI of bucket"):
        store.get(f"s3://another-bucket/ev/{sha}")
    store.delete(uri)
    assert not store.exists(uri)
    with pytest.raises(StorageError, match="cannot read"):
        store.get(uri)


def test_ingest_into_s3(
    s3: str, make_client: Callable[..., TestClient], world: World, session: Session
) -> None:
    client = make_client(evidence_store="s3", s3_bucket=BUCKET, s3_endpoint_url=s3)
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1")
    assert post_package(client, pkg, dev.key).status_code == 201
    store = S3Store(BUCKET, endpoint_url=s3)
    rows: list[Any] = list(session.scalars(select(EvidenceFile)))
    assert len(rows) == 4
    for f in rows:
        assert f.storage_uri.startswith(f"s3://{BUCKET}/evidence/")
        assert store.get(f.storage_uri) == pkg.files[f.name]


def test_an_unreachable_store_refuses_the_upload_with_503_and_records_nothing(
    make_client: Callable[..., TestClient], world: World, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    dead = f"http://127.0.0.1:{_free_port()}"
    client = make_client(evidence_store="s3", s3_bucket=BUCKET, s3_endpoint_url=dead)
    dev = world.devices["dev-a"]
    r = post_package(client, build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1"), dev.key)
    assert r.status_code == 503 and "retry later" in r.json()["detail"]
    assert session.scalars(select(EvidenceFile)).all() == []
