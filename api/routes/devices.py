"""`GET /api/v1/devices/me`: the calling device as the server has it registered.

The edge worker asks at start and then every few minutes, and compares the fingerprint of the
registered signing key with its own: a box whose key is not the registered one holds its evidence
(every package would be refused) and says so on its health (see `phatnguoi.uploader`).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentDevice
from api.schemas import DevicePublic, Message
from violations.manifest import load_public_key, public_key_fingerprint

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.get("/me", response_model=DevicePublic, responses={code: {"model": Message} for code in (401, 403)})
def device_me(device: CurrentDevice) -> DevicePublic:
    """The calling device (its API key): id, cameras, and the SHA-256 fingerprint of its registered
    public key. 401 without a valid device key, 403 when the device is disabled."""
    return DevicePublic(
        id=device.id,
        active=device.active,
        cameras=sorted(device.camera_ids),
        public_key_sha256=public_key_fingerprint(load_public_key(device.public_key_pem.encode())),
    )
