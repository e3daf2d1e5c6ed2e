"""Request body limits per path: the registry import takes its schema's 20 MB of CSV, every other
non-ingest request 1 MiB; a body over its limit is answered 413 with the limit in the reason."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from api.app import REGISTRY_IMPORT_MAX_BYTES

Auth = Callable[[str], dict[str, str]]


def test_a_registry_import_over_1_mib_is_taken_and_one_over_its_own_limit_is_413(
    client: TestClient, auth: Auth
) -> None:
    """The import was capped at the 1 MiB of other requests while its schema allows 20 MB of CSV."""
    rows = "".join(f"NOT-A-PLATE-{i:06d},Chủ xe {i},0912345678,,Hà Nội,car,trắng\n" for i in range(25_000))
    csv = "plate,owner_name,phone,national_id,address,vehicle_class,colour\n" + rows
    assert 1_400_000 < len(csv.encode()) < 2_000_000
    r = client.post("/api/v1/registry/import", json={"csv": csv}, headers=auth("admin"))
    assert r.status_code == 200, r.text[:300]
    assert r.json()["created"] == 0 and len(r.json()["rejected"]) == 25_000

    over = client.post(
        "/api/v1/registry/import",
        content=b'{"csv": "' + b"x" * REGISTRY_IMPORT_MAX_BYTES + b'"}',
        headers={**auth("admin"), "Content-Type": "application/json"},
    )
    assert over.status_code == 413
    assert over.json() == {"detail": f"request body too large: limit {REGISTRY_IMPORT_MAX_BYTES} bytes"}


def test_other_requests_keep_the_1_mib_limit(client: TestClient, auth: Auth) -> None:
    r = client.post(
        "/api/v1/notices",
        content=b'{"violation_id": 1, "pad": "' + b"x" * (1024 * 1024) + b'"}',
        headers={**auth("sup"), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json() == {"detail": f"request body too large: limit {1024 * 1024} bytes"}
