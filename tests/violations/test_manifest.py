"""Evidence manifest: canonical bytes, Ed25519 signatures, schema, tampering, keys.

Packages here are assembled by hand from small byte strings through the public API (no OpenCV), as
the server would see them; `test_evidence.py` checks packages written by the real builder.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from violations.manifest import (
    FORMAT,
    EvidenceError,
    canonical_bytes,
    check_package,
    generate_keypair,
    iso_utc,
    load_private_key,
    load_public_key,
    parse_manifest,
    public_key_fingerprint,
    public_key_pem,
    sha256_hex,
    sign,
    verify_files,
    verify_package,
    verify_signature,
)

FILES = {
    "still_before.jpg": ("still_before", "image/jpeg", b"\xff\xd8before-bytes\xff\xd9"),
    "still_at.jpg": ("still_at", "image/jpeg", b"\xff\xd8at-bytes\xff\xd9"),
    "still_after.jpg": ("still_after", "image/jpeg", b"\xff\xd8after-bytes\xff\xd9"),
    "plate.jpg": ("plate", "image/jpeg", b"\xff\xd8plate\xff\xd9"),
    "clip.mp4": ("clip", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(64))),
}


def make_manifest(files: dict[str, tuple[str, str, bytes]] = FILES) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "event_id": "029f058e-5a3b-5687-bb95-d5c19256f04b",
        "rule": "red_light",
        "legal_reference": "Điểm b khoản 9 Điều 6 Nghị định 168/2024/NĐ-CP",
        "camera_id": "hn-giangvo-01",
        "track_id": 7,
        "frame_index": 30,
        "ts": 5.0,
        "vehicle_class": "motorcycle",
        "box_xyxy": [215.0, 285.0, 275.0, 390.0],
        "details": {"line_id": "sl1", "signal": "red", "red_for_s": 0.7},
        "occurred_at": "2022-09-25T09:15:05.000Z",
        "device_id": "edge-01",
        "location": {"lat": 21.0245, "lon": 105.8123},
        "district": "Đống Đa",
        "scene_version": "a" * 64,
        "plate": {
            "text": "29X123456",
            "formatted": "29-X1 234.56",
            "valid": True,
            "confidence": 0.91,
            "lines": 2,
            "colour": "white",
            "raw": "29-X1 / 234.56",
            "alternatives": [["29-X1 234.56", 0.91], ["29-X1 234.58", 0.05]],
        },
        "signal": {"state": "red", "red_for_s": 0.7},
        "models": [{"name": "yolov8n-coco", "sha256": "b" * 64}],
        "files": [
            {"name": n, "kind": k, "sha256": sha256_hex(d), "size": len(d), "media_type": m}
            for n, (k, m, d) in files.items()
        ],
        "created_at": "2026-11-23T05:16:24.123Z",
    }


def write_package(folder: Path, key: Ed25519PrivateKey, manifest: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True)
    for name, (_, _, data) in FILES.items():
        (folder / name).write_bytes(data)
    data = canonical_bytes(manifest or make_manifest())
    (folder / "manifest.json").write_bytes(data)
    (folder / "manifest.sig").write_text(sign(data, key) + "\n", encoding="ascii")
    return folder


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def package(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    return write_package(tmp_path / "pkg", key)


# ------------------------------------------------------------------------------ canonical bytes


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": "Đống Đa", "c": [1.5, None, True]}) == (
        '{"a":"Đống Đa","b":1,"c":[1.5,null,true]}'.encode()
    )


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    m = make_manifest()
    reordered = dict(reversed(list(m.items())))
    reordered["plate"] = dict(reversed(list(m["plate"].items())))
    assert canonical_bytes(reordered) == canonical_bytes(m)
    # And parsing gives back the same bytes (the check a verifier makes).
    assert canonical_bytes(json.loads(canonical_bytes(m))) == canonical_bytes(m)


@pytest.mark.parametrize("bad", [{"x": float("nan")}, {"x": float("inf")}, {"x": {1, 2}}, {"x": b"raw"}])
def test_canonical_bytes_refuse_what_json_cannot_hold(bad: dict[str, Any]) -> None:
    with pytest.raises(EvidenceError, match="not canonical JSON"):
        canonical_bytes(bad)


# ------------------------------------------------------------------------------ signatures


def test_sign_verify_roundtrip(key: Ed25519PrivateKey) -> None:
    data = canonical_bytes(make_manifest())
    sig = sign(data, key)
    assert len(sig) == 88 and len(base64.b64decode(sig)) == 64
    assert sign(data, key) == sig  # Ed25519 is deterministic
    verify_signature(data, sig, key.public_key())
    verify_signature(data, sig + "\n", key.public_key())


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("not base64 !!", "not valid base64"),
        (base64.b64encode(b"x" * 63).decode(), "64 bytes"),
        (base64.b64encode(b"x" * 64).decode(), "does not match"),
    ],
)
def test_verify_signature_rejects(key: Ed25519PrivateKey, signature: str, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        verify_signature(b"{}", signature, key.public_key())


# ------------------------------------------------------------------------------ schema


def test_parse_manifest_returns_the_json(key: Ed25519PrivateKey) -> None:
    m = make_manifest()
    assert parse_manifest(canonical_bytes(m)) == m


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = m
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _delete(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda m: m.pop(key)


def _drop_file(position: int) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["files"].pop(position)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set("format", "phatnguoi-evidence/2"), "'format'"),
        (_set("event_id", "../../etc"), "'event_id'"),
        (_set("event_id", "029F058E-5A3B-5687-BB95-D5C19256F04B"), "'event_id'"),
        (_set("rule", "jaywalking"), "'rule'"),
        (_set("legal_reference", ""), "'legal_reference'"),
        (_set("track_id", -1), "'track_id'"),
        (_set("track_id", True), "'track_id'"),
        (_set("frame_index", 3.0), "'frame_index'"),
        (_set("ts", "5.0"), "'ts'"),
        (_set("vehicle_class", "van"), "'vehicle_class'"),
        (_set("box_xyxy", [1.0, 2.0, 3.0]), "'box_xyxy'"),
        (_set("box_xyxy", [300.0, 2.0, 100.0, 4.0]), "box_xyxy must have x1 <= x2"),
        (_set("details", []), "'details'"),
        (_set("occurred_at", "2022-09-25 09:15:05"), "'occurred_at'"),
        (_set("occurred_at", "2022-13-45T09:15:05.000Z"), "occurred_at is not a valid date"),
        (_set("device_id", 12), "'device_id'"),
        (_set("location", {"lat": 91.0, "lon": 105.0}), "'location.lat'"),
        (_set("location", {"lat": 21.0}), "'location.lon'"),
        (_set("district", ""), "'district'"),
        (_set("scene_version", "A" * 64), "'scene_version'"),
        (_set("plate.confidence", 1.5), "'plate.confidence'"),
        (_set("plate.lines", 3), "'plate.lines'"),
        (_set("plate.valid", "yes"), "'plate.valid'"),
        (_set("plate.owner", "Nguyễn Văn A"), "'plate.owner'"),
        (_set("plate.alternatives", [["29-X1 234.56"]]), "'plate.alternatives.0.1'"),
        (_set("signal.state", "blue"), "'signal.state'"),
        (_set("signal.red_for_s", -1.0), "'signal.red_for_s'"),
        (_set("models", [{"name": "m", "sha256": "zz"}]), "'models.0.sha256'"),
        (_set("files.0.name", "../escape.jpg"), "'files.0.name'"),
        (_set("files.0.name", ".hidden.jpg"), "'files.0.name'"),
        (_set("files.0.kind", "thumbnail"), "'files.0.kind'"),
        (_set("files.0.size", -1), "'files.0.size'"),
        (_set("files.0.sha256", "0" * 63), "'files.0.sha256'"),
        (_set("files.4.media_type", "video/webm"), "clip.mp4 of kind clip must be video/mp4"),
        (_set("files.1.kind", "still_before"), "duplicate kind 'still_before'"),
        (_set("files.1.name", "still_before.jpg"), "duplicate name 'still_before.jpg'"),
        (_set("files.3.name", "manifest.sig"), "cannot be listed"),
        (_drop_file(1), "no still_at file"),
        (_set("extra", 1), "'extra'"),
        (_delete("created_at"), "'created_at'"),
        (_delete("plate"), "'plate'"),
    ],
)
def test_parse_manifest_names_the_bad_field(change: Callable[[dict[str, Any]], None], field: str) -> None:
    m = copy.deepcopy(make_manifest())
    change(m)
    with pytest.raises(EvidenceError, match=r"^manifest[ :]") as err:
        parse_manifest(canonical_bytes(m))
    message = str(err.value)
    assert field in message
    assert "\n" not in message


def test_plate_and_signal_may_be_null() -> None:
    m = make_manifest()
    m.update(plate=None, signal=None, location=None, district=None, models=[])
    assert parse_manifest(canonical_bytes(m))["plate"] is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"ts":NaN}', "NaN"),
        (b'{"a":1,"a":2}', "repeats the key 'a'"),
        (b'{"a":' + b"1" * 5000 + b"}", "cannot be read: Exceeds the limit"),
        (b"[" * 200_000 + b"]" * 200_000, "cannot be read"),
    ],
)
def test_parse_manifest_rejects_non_manifests(raw: bytes, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        parse_manifest(raw)


def test_parse_manifest_rejects_a_lone_surrogate() -> None:
    """Valid JSON (an escaped half of a UTF-16 pair) that no UTF-8 manifest can hold."""
    m = make_manifest()
    m["details"] = {"note": "\ud800"}
    raw = json.dumps(m, sort_keys=True, separators=(",", ":")).encode("ascii")
    with pytest.raises(EvidenceError, match="not canonical JSON"):
        parse_manifest(raw)


def test_parse_manifest_requires_canonical_form() -> None:
    pretty = json.dumps(make_manifest(), ensure_ascii=False, indent=1).encode()
    with pytest.raises(EvidenceError, match="canonical form"):
        parse_manifest(pretty)


# ------------------------------------------------------------------------------ files


def test_verify_files_accepts_the_listed_files() -> None:
    verify_files(make_manifest(), {n: d for n, (_, _, d) in FILES.items()})


# ------------------------------------------------------------------------------ whole packages


def test_verify_package_passes(package: Path, key: Ed25519PrivateKey) -> None:
    manifest = verify_package(package, key.public_key())
    assert manifest == make_manifest()
    report = check_package(package, key.public_key())
    assert report.ok and report.signature_checked and report.failure is None
    assert report.event_id == manifest["event_id"]
    sizes = {f.name: f.size for f in report.files}
    assert sizes["clip.mp4"] == len(FILES["clip.mp4"][2])
    assert {f.status for f in report.files if f.name in FILES} == {"ok"}


def _flip_byte(name: str, at: int = 3) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        data[at] ^= 0x01
        (folder / name).write_bytes(bytes(data))

    return apply


def _edit_manifest(old: bytes, new: bytes) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        data = (folder / "manifest.json").read_bytes()
        assert old in data
        (folder / "manifest.json").write_bytes(data.replace(old, new, 1))

    return apply


def _resign(
    change: Callable[[dict[str, Any]], None], raw: Callable[[dict[str, Any]], bytes] | None = None
) -> Callable[[Path, Ed25519PrivateKey], None]:
    """Change the manifest and sign it again with the DEVICE's key (a buggy device, not an attacker)."""

    def apply(folder: Path, key: Ed25519PrivateKey) -> None:
        m = json.loads((folder / "manifest.json").read_bytes())
        change(m)
        data = raw(m) if raw else canonical_bytes(m)
        (folder / "manifest.json").write_bytes(data)
        (folder / "manifest.sig").write_text(sign(data, key), encoding="ascii")

    return apply


def _resign_with_other_key(folder: Path) -> None:
    m = json.loads((folder / "manifest.json").read_bytes())
    m["track_id"] = 8
    data = canonical_bytes(m)
    (folder / "manifest.json").write_bytes(data)
    (folder / "manifest.sig").write_text(sign(data, Ed25519PrivateKey.generate()), encoding="ascii")


def _swap_signature(folder: Path) -> None:
    other = make_manifest()
    other["track_id"] = 9
    (folder / "manifest.sig").write_text(sign(canonical_bytes(other), _DEVICE_KEY), encoding="ascii")


def _add_file(name: str, data: bytes = b"extra") -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / name).write_bytes(data)

    return apply


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def _add_dir(folder: Path) -> None:
    (folder / "more").mkdir()


def _add_symlink(folder: Path) -> None:
    (folder / "link.jpg").symlink_to(folder / "still_at.jpg")


_DEVICE_KEY = Ed25519PrivateKey.generate()

TAMPERING: list[tuple[str, Callable[..., None], str, str]] = [
    # (case, change, failed check, message)
    *[(f"byte of {n}", _flip_byte(n), "files", f"file {n} does not match its SHA-256") for n in FILES],
    (
        "byte appended to clip",
        lambda f: (f / "clip.mp4").write_bytes((f / "clip.mp4").read_bytes() + b"\0"),
        "files",
        f"clip.mp4 has {len(FILES['clip.mp4'][2]) + 1} bytes, manifest says {len(FILES['clip.mp4'][2])}",
    ),
    ("manifest track_id", _edit_manifest(b'"track_id":7', b'"track_id":8'), "signature", "does not match"),
    ("manifest plate text", _edit_manifest(b"29X123456", b"29X123457"), "signature", "does not match"),
    (
        "manifest file hash",
        _edit_manifest(sha256_hex(FILES["still_at.jpg"][2]).encode(), b"0" * 64),
        "signature",
        "does not match",
    ),
    ("manifest re-signed by another key", _resign_with_other_key, "signature", "does not match"),
    ("signature of another manifest", _swap_signature, "signature", "does not match"),
    ("signature truncated", lambda f: (f / "manifest.sig").write_text("AAAA"), "signature", "64 bytes"),
    ("signature garbled", lambda f: (f / "manifest.sig").write_text("%%%"), "signature", "not valid base64"),
    ("unlisted file", _add_file("notes.txt"), "files", "notes.txt is not listed"),
    ("hidden unlisted file", _add_file(".DS_Store"), "files", ".DS_Store is not listed"),
    ("listed file removed", _remove("plate.jpg"), "files", "plate.jpg is listed in the manifest but missing"),
    ("manifest.sig removed", _remove("manifest.sig"), "read", "manifest.sig is missing"),
    ("manifest.json removed", _remove("manifest.json"), "read", "manifest.json is missing"),
    ("sub-folder added", _add_dir, "read", "more in the package is not a regular file"),
    ("symlink added", _add_symlink, "read", "link.jpg in the package is not a regular file"),
]


@pytest.mark.parametrize(("case", "change", "check", "message"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_detected(
    tmp_path: Path, case: str, change: Callable[[Path], None], check: str, message: str
) -> None:
    folder = write_package(tmp_path / "pkg", _DEVICE_KEY)
    change(folder)
    with pytest.raises(EvidenceError, match=message):
        verify_package(folder, _DEVICE_KEY.public_key())
    report = check_package(folder, _DEVICE_KEY.public_key())
    assert not report.ok
    assert report.failure is not None and report.failure.startswith(f"{check}: ")


RESIGNED = [
    ("extra field", _resign(_set("note", "x")), "manifest field 'note'"),
    ("pretty-printed", _resign(lambda m: None, lambda m: json.dumps(m, indent=1).encode()), "canonical form"),
    (
        "repeated key",
        _resign(lambda m: None, lambda m: b'{"rule":"speeding",' + canonical_bytes(m)[1:]),
        "repeats the key 'rule'",
    ),
]


@pytest.mark.parametrize(("case", "change", "message"), RESIGNED, ids=[r[0] for r in RESIGNED])
def test_signed_but_malformed_manifest_is_rejected(
    tmp_path: Path, case: str, change: Callable[..., None], message: str
) -> None:
    folder = write_package(tmp_path / "pkg", _DEVICE_KEY)
    change(folder, _DEVICE_KEY)
    with pytest.raises(EvidenceError, match=message):
        verify_package(folder, _DEVICE_KEY.public_key())
    report = check_package(folder, _DEVICE_KEY.public_key())
    assert [c.status for c in report.checks] == ["ok", "ok", "failed", "not checked"]


def test_wrong_public_key_is_detected(package: Path) -> None:
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(EvidenceError, match="signed by another key"):
        verify_package(package, other)
    assert check_package(package, other).failure == (
        "signature: signature does not match manifest.json (manifest altered, or signed by another key)"
    )


def test_check_without_key_checks_hashes_only(tmp_path: Path, package: Path) -> None:
    report = check_package(package, None)
    assert report.ok and not report.signature_checked
    assert "signature not checked" in report.lines()[0]
    # Hashes are still checked...
    _flip_byte("still_at.jpg")(package)
    assert check_package(package, None).failure == "files: still_at.jpg altered"
    # ...but a consistent edit of the manifest is only caught with the key: that is what it is for.
    edited = write_package(tmp_path / "edited", _DEVICE_KEY)
    _edit_manifest(b'"track_id":7', b'"track_id":8')(edited)
    assert check_package(edited, None).ok
    assert not check_package(edited, _DEVICE_KEY.public_key()).ok


def test_check_package_reports_every_problem(package: Path, key: Ed25519PrivateKey) -> None:
    _flip_byte("still_before.jpg")(package)
    _remove("clip.mp4")(package)
    _add_file("x.bin")(package)
    report = check_package(package, key.public_key())
    assert report.failure == "files: still_before.jpg altered, clip.mp4 missing, x.bin not listed"
    status = {f.name: f.status for f in report.files}
    assert status == {
        "clip.mp4": "missing",
        "manifest.json": "manifest",
        "manifest.sig": "signature",
        "plate.jpg": "ok",
        "still_after.jpg": "ok",
        "still_at.jpg": "ok",
        "still_before.jpg": "altered",
        "x.bin": "unlisted",
    }
    assert json.loads(json.dumps(report.to_dict()))["ok"] is False


def test_check_package_on_a_missing_folder(tmp_path: Path) -> None:
    report = check_package(tmp_path / "nope", None)
    assert not report.ok and report.failure is not None and report.failure.startswith("read: ")


# ------------------------------------------------------------------------------ keys


def test_generate_and_load_keys(tmp_path: Path) -> None:
    priv, pub = tmp_path / "keys" / "device.key", tmp_path / "keys" / "device.pub"
    generate_keypair(priv, pub)
    assert priv.stat().st_mode & 0o777 == 0o600
    assert priv.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    key = load_private_key(priv)
    public = load_public_key(pub)
    assert public_key_pem(key) == public_key_pem(public) == pub.read_text()
    assert load_public_key(pub.read_bytes()).public_bytes_raw() == public.public_bytes_raw()
    assert load_public_key(pub.read_text()).public_bytes_raw() == public.public_bytes_raw()
    assert public_key_fingerprint(key) == public_key_fingerprint(public)
    assert len(public_key_fingerprint(key)) == 64
    data = b"payload"
    verify_signature(data, sign(data, key), public)
    assert not list(priv.parent.glob(".*.tmp"))


def test_generate_keypair_does_not_replace_a_key(tmp_path: Path) -> None:
    priv, pub = tmp_path / "device.key", tmp_path / "device.pub"
    generate_keypair(priv, pub)
    before = priv.read_bytes()
    with pytest.raises(EvidenceError, match="already exists"):
        generate_keypair(priv, pub)
    assert priv.read_bytes() == before
    generate_keypair(priv, pub, overwrite=True)
    assert priv.read_bytes() != before


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_private_key_file_mode(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    priv, pub = tmp_path / "device.key", tmp_path / "device.pub"
    generate_keypair(priv, pub)
    priv.chmod(0o644)
    with pytest.raises(EvidenceError, match="accessible to other users"):
        load_private_key(priv)
    priv.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="violations.manifest"):
        load_private_key(priv)
    assert "readable by its group" in caplog.text


def _pem_private(key: Any) -> bytes:
    return bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a key", "not a PEM private key"),
        (_pem_private(X25519PrivateKey.generate()), "not Ed25519"),
        (
            Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
            "encrypted",
        ),
    ],
)
def test_load_private_key_rejects(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(EvidenceError, match=message):
        load_private_key(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        (public_key_pem(X25519PrivateKey.generate().public_key()).encode(), "not Ed25519"),  # type: ignore[arg-type]
    ],
)
def test_load_public_key_rejects(content: bytes, message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        load_public_key(content)


# ------------------------------------------------------------------------------ time


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1664097305.1234, "2022-09-25T09:15:05.123Z"),
        (1664097305.9996, "2022-09-25T09:15:06.000Z"),
        (1795411584.123, "2026-11-23T05:26:24.123Z"),
    ],
)
def test_iso_utc(epoch: float, expected: str) -> None:
    assert iso_utc(epoch) == expected


@pytest.mark.parametrize("epoch", [float("nan"), float("inf"), 1e15])
def test_iso_utc_rejects(epoch: float) -> None:
    with pytest.raises(EvidenceError):
        iso_utc(epoch)


def test_module_is_importable_without_opencv() -> None:
    """The server imports this module and must not pull in OpenCV or numpy through it."""
    import subprocess
    import sys

    code = (
        "import sys; import violations.manifest; "
        "bad = [m for m in ('cv2', 'numpy') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, check=False)
    assert done.returncode == 0, "violations.manifest imported cv2 or numpy"


def test_copy_of_package_still_verifies(tmp_path: Path, package: Path, key: Ed25519PrivateKey) -> None:
    """Moving a package (as the outbox and server do) keeps it valid: nothing depends on its path."""
    moved = shutil.copytree(package, tmp_path / "elsewhere" / package.name)
    verify_package(moved, key.public_key())


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({}, "'files' is missing"),
        ({"files": "still_at.jpg"}, "'files' is missing or not a list"),
        ({"files": [{"name": "still_at.jpg"}]}, "'files.0' needs name, size and sha256"),
    ],
)
def test_verify_files_on_broken_manifests(manifest: dict[str, Any], message: str) -> None:
    with pytest.raises(EvidenceError, match=message):
        verify_files(manifest, {})
