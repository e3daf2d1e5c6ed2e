"""A manifest's free-form `details` is bounded: nested deeper than 8 levels or larger than 8 KiB as JSON, a
correctly signed package is refused at ingest with a one-line reason (422) and nothing is stored. Such
details were stored, and then every read of the violation answered 500. What the rules write stays far
within the bounds."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from api.models import EvidenceFile, Violation
from api.settings import Settings
from tests.api.conftest import World, stored_blobs
from tests.api.evidence import build_package, post_package
from tests.violations import make_scene, phases, run
from tests.violations.test_rules_zones import NO_PARKING, parked
from violations import manifest
from violations.manifest import EvidenceError, validate_manifest
from violations.rules import RuleEngine

Count = Callable[[type[Any]], int]
Auth = Callable[[str], dict[str, str]]
DETAILS_MAX_DEPTH = 8
DETAILS_MAX_BYTES = 8192


def nested(levels: int) -> dict[str, Any]:
    """Details `levels` containers deep: {"x": 1} is 1, {"x": [1]} is 2, {"x": [[1]]} is 3 ..."""
    value: Any = 1
    for _ in range(levels - 1):
        value = [value]
    return {"x": value}


def _post(client: TestClient, world: World, details: dict[str, Any]) -> Any:
    dev = world.devices["dev-a"]
    pkg = build_package(dev.private_key, device_id=dev.id, camera_id="cam-a1", overrides={"details": details})
    return post_package(client, pkg, dev.key)


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        (nested(DETAILS_MAX_DEPTH + 1), f"nested deeper than {DETAILS_MAX_DEPTH} levels"),
        (nested(300), f"nested deeper than {DETAILS_MAX_DEPTH} levels"),
        ({"note": "x" * 5_000_000}, f"larger than {DETAILS_MAX_BYTES} bytes as JSON"),
        ({f"k{i}": "Đèn đỏ" for i in range(1000)}, f"larger than {DETAILS_MAX_BYTES} bytes as JSON"),
    ],
    ids=["depth_9", "depth_300", "5_MB_string", "1000_keys"],
)
def test_details_too_deep_or_too_large_are_refused_with_a_reason(
    details: dict[str, Any], reason: str, client: TestClient, world: World, count: Count, settings: Settings
) -> None:
    r = _post(client, world, details)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("manifest: manifest field 'details': ") and reason in detail
    assert "\n" not in detail and len(detail) < 200
    assert count(Violation) == 0 and count(EvidenceFile) == 0
    assert stored_blobs(settings.evidence_dir) == []  # refused before the store step


def test_details_at_the_bounds_are_stored_and_read_back(client: TestClient, world: World, auth: Auth) -> None:
    deep = nested(DETAILS_MAX_DEPTH)
    r = _post(client, world, deep)
    assert r.status_code == 201, r.text
    vid = r.json()["id"]
    assert client.get(f"/api/v1/violations/{vid}", headers=auth("sup")).json()["details"] == deep
    r = client.post(f"/api/v1/violations/{vid}/decision", json={"decision": "confirm"}, headers=auth("sup"))
    assert r.status_code == 200, r.text

    # Exactly the byte limit, as canonical JSON, is accepted too.
    base = json.dumps({"note": ""}, ensure_ascii=False, separators=(",", ":")).encode()
    big = {"note": "x" * (DETAILS_MAX_BYTES - len(base))}
    r = _post(client, world, big)
    assert r.status_code == 201, r.text


def test_what_the_rules_write_is_far_within_the_bounds() -> None:
    """The details of the rule that writes the most (illegal stop: nine fields and the legal block),
    with the longest zone id a scene allows, through the real rule engine."""
    zone = {**NO_PARKING, "id": "z" * 40, "light": "L1"}
    engine = RuleEngine(make_scene(stop_zones=[zone]), rules=["illegal_stop"])
    (event,) = run(engine, [parked(1, 2.0, 45.0)], phases((0.0, "red"), (20.0, "green")))
    size = len(json.dumps(event.details, ensure_ascii=False, separators=(",", ":")).encode())
    assert size * 8 < DETAILS_MAX_BYTES, size

    def depth(v: Any) -> int:
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else None
        return 0 if children is None else 1 + max((depth(c) for c in children), default=0)

    assert depth(event.details) == 3 < DETAILS_MAX_DEPTH  # details → legal → fine_vnd


def test_the_edge_refuses_to_sign_such_details() -> None:
    assert (manifest.DETAILS_MAX_DEPTH, manifest.DETAILS_MAX_BYTES) == (DETAILS_MAX_DEPTH, DETAILS_MAX_BYTES)
    dev_manifest = build_package(Ed25519PrivateKey.generate(), device_id="d", camera_id="c").manifest
    with pytest.raises(EvidenceError, match=r"^manifest field 'details': nested deeper than 8 levels$"):
        validate_manifest({**dev_manifest, "details": nested(9)})
    validate_manifest({**dev_manifest, "details": nested(8)})
