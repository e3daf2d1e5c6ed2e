"""Schemathesis against the app's own /openapi.json: generated requests to every operation, with an
admin token and a device key, must never get a 5xx — on SQLite and on PostgreSQL.

Schemathesis's pytest integration makes one test per operation (and per database). The schema is
the document of an app built at import with throwaway settings (building an app connects to nothing;
the document does not depend on settings; `test_openapi_document_is_served` checks it is what the
server serves); each test sends its cases to an app on its own fresh copy of the
test world, with a few stored violations so that ids 1..3 exist and generated decisions, reopenings
and evidence reads get past the lookups. Examples per operation are bounded (both databases together
take about half a minute). `schemathesis.pytest.from_fixture` would avoid the import-time app, but
its lazy loader does not work with pytest 9 (it sets `request.node._nodeid`).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from tests.api.conftest import World
from tests.api.evidence import build_package, post_package

# More for a deeper run: PHATNGUOI_SCHEMATHESIS_EXAMPLES=500 pytest tests/api/test_schemathesis.py
MAX_EXAMPLES = int(os.environ.get("PHATNGUOI_SCHEMATHESIS_EXAMPLES", "12"))

_nowhere = Path(tempfile.gettempdir()) / "phatnguoi-schema-only"
_schema_only = create_app(
    Settings(
        database_url=f"sqlite:///{_nowhere}/never-opened.db",
        evidence_dir=_nowhere,
        jwt_secret=secrets.token_urlsafe(48),
    )
)
# The same document `GET /openapi.json` serves (FastAPI builds it from the routes, not the settings).
schema = schemathesis.openapi.from_dict(_schema_only.openapi())


@pytest.fixture
def app(make_settings: Callable[..., Settings], world: World) -> FastAPI:
    app = create_app(make_settings())
    with TestClient(app) as client:
        for seed, camera, device in ((1, "cam-a1", "dev-a"), (2, "cam-b1", "dev-b"), (3, "cam-a1", "dev-a")):
            dev = world.devices[device]
            pkg = build_package(dev.private_key, device_id=dev.id, camera_id=camera, seed=seed)
            assert post_package(client, pkg, dev.key).status_code == 201
    return app


@pytest.fixture
def credentials(world: World, auth: Callable[[str], dict[str, str]]) -> dict[str, str]:
    # Officer routes read the Authorization header, device routes X-Device-Key first: both at once
    # reach every operation with valid credentials.
    return {**auth("admin"), "X-Device-Key": world.devices["dev-a"].key}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, app: FastAPI, credentials: dict[str, str]) -> None:
    case.call_and_validate(app=app, headers=credentials, checks=[not_a_server_error])


def test_openapi_document_is_served(client: TestClient) -> None:
    assert client.get("/openapi.json").json() == _schema_only.openapi()
