"""Retention on the S3-compatible store (moto's real local S3 server): queued blob deletes and the sweep of
unreferenced blobs work there as on the local store. Skipped without `boto3` and `moto[server]`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from starlette.testclient import TestClient

from api.db import utcnow
from api.retention import run_retention
from api.settings import Settings
from api.storage import S3Store
from tests.api.conftest import World
from tests.api.evidence import ingest, jpeg
from tests.api.test_storage_s3 import BUCKET, boto3, s3, s3_endpoint  # noqa: F401 - fixtures

Auth = Callable[[str], dict[str, str]]


def _keys(endpoint: str) -> set[str]:
    client = boto3.client("s3", endpoint_url=endpoint)
    return {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_retention_deletes_and_sweeps_s3_blobs(
    s3: str,  # noqa: F811 - the fixture
    make_client: Callable[..., TestClient],
    make_settings: Callable[..., Settings],
    world: World,
    auth: Auth,
) -> None:
    on_s3 = {"evidence_store": "s3", "s3_bucket": BUCKET, "s3_endpoint_url": s3}
    client = make_client(**on_s3)
    settings = make_settings(**on_s3)
    live = ingest(client, world, seed=1)
    rejected = ingest(client, world, seed=2)
    body = {"decision": "reject", "reason": "duplicate"}
    r = client.post(f"/api/v1/violations/{rejected}/decision", json=body, headers=auth("off-a"))
    assert r.status_code == 200, r.text
    store = S3Store(BUCKET, settings.s3_prefix, endpoint_url=s3)
    orphan = jpeg(99)
    orphan_uri = store.put(orphan, hashlib.sha256(orphan).hexdigest())
    outside = boto3.client("s3", endpoint_url=s3)
    outside.put_object(Bucket=BUCKET, Key="not-evidence/readme.txt", Body=b"someone else's")
    assert len(_keys(s3)) == 4 + 4 + 1 + 1

    report = run_retention(settings, utcnow() + timedelta(days=200))
    assert not store.exists(orphan_uri)
    assert len(_keys(s3)) == 4 + 1 and "not-evidence/readme.txt" in _keys(s3)
    assert (report.violations_purged, report.blobs_deleted, report.orphans_deleted) == (1, 4, 1), report
    r = client.get(f"/api/v1/violations/{live}/files/still_at.jpg", headers=auth("off-a"))
    assert r.status_code == 200
