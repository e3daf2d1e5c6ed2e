"""Evidence package format ``phatnguoi-evidence/1``: manifest schema, canonical bytes, Ed25519 signing
and verification, device keys.

An evidence package is a folder named after the event id that holds the evidence files (stills, plate
crop, clip), ``manifest.json`` (their SHA-256 and size plus what the device saw) and ``manifest.sig``
(the Ed25519 signature of the exact bytes of ``manifest.json``, base64, one line). Any altered,
added or removed byte makes `verify_package` fail:

- a changed evidence file no longer matches its hash in the manifest,
- a changed manifest no longer matches the signature,
- an added file is not listed, a removed one is missing.

Pure on purpose (standard library, pydantic and ``cryptography``; no numpy, no OpenCV): the server
imports this module to verify uploads and must start without OpenCV.

    manifest_bytes = canonical_bytes(manifest)
    signature = sign(manifest_bytes, private_key)
    verify_package(folder, public_key)          # raises EvidenceError naming what is wrong
    check_package(folder, None).to_dict()       # a report of every check, for `evidence verify DIR`
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from violations.types import RuleId, SignalState

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FORMAT = "phatnguoi-evidence/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"

FileKind = Literal["still_before", "still_at", "still_after", "plate", "clip"]
#: Media type of each kind of evidence file (the server accepts these).
MEDIA_TYPES: Mapping[str, str] = {
    "still_before": "image/jpeg",
    "still_at": "image/jpeg",
    "still_after": "image/jpeg",
    "plate": "image/jpeg",
    "clip": "video/mp4",
}
#: Kinds every package must have.
REQUIRED_KINDS: tuple[FileKind, ...] = ("still_before", "still_at", "still_after")
VehicleClass = Literal["motorcycle", "car", "bus", "truck", "bicycle", "person"]

_UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_SHA256_RE = r"^[0-9a-f]{64}$"
# A UTC instant as `iso_utc` writes it; seconds fraction optional so other writers may omit it.
_ISO_UTC_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
# Plain file names only: no separators, no "..", no hidden files.
_FILE_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: Bounds of the free-form ``details``: the rules write 3 levels (details → legal → fine range) and
#: under 1 KiB (`violations.rules.base.make_event`). Deeper details broke reading the violation back
#: (serialisers stop at a depth) and large ones only fill the database, so both are refused: by the
#: evidence builder before signing and by the server's ingest (422).
DETAILS_MAX_DEPTH = 8
DETAILS_MAX_BYTES = 8192


class EvidenceError(ValueError):
    """An evidence package, manifest or key is invalid. The message is one line naming what failed."""


# ---------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------

Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Probability = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0, le=1.0)]
NonEmpty = Annotated[str, Field(strict=True, min_length=1, max_length=256)]
Sha256Hex = Annotated[str, Field(strict=True, pattern=_SHA256_RE)]
IsoUtc = Annotated[str, Field(strict=True, pattern=_ISO_UTC_RE)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(_Strict):
    """Where the camera is (WGS 84 degrees)."""

    lat: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-90.0, le=90.0)]
    lon: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-180.0, le=180.0)]


class PlateInfo(_Strict):
    """The plate as read on the edge (the reviewer checks it against the plate crop)."""

    text: NonEmpty | None = Field(description="Compact canonical text, None when not readable.")
    formatted: NonEmpty | None = Field(description="Formatted text (59-X1 234.56), None when not readable.")
    valid: StrictBool
    confidence: Probability
    lines: Literal[1, 2]
    colour: NonEmpty | None
    raw: Annotated[str, Field(strict=True, max_length=256)]
    alternatives: list[tuple[NonEmpty, Probability]] = Field(max_length=32)


class SignalInfo(_Strict):
    """The traffic light as the signal reader saw it at the event."""

    state: SignalState
    red_for_s: Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0)] | None


class ModelInfo(_Strict):
    """A model that took part in the decision, by file checksum."""

    name: NonEmpty
    sha256: Sha256Hex


class FileEntry(_Strict):
    """One evidence file of the package."""

    name: Annotated[str, Field(strict=True, pattern=_FILE_NAME_RE)]
    kind: FileKind
    sha256: Sha256Hex
    size: Annotated[int, Field(strict=True, ge=0)]
    media_type: Annotated[str, Field(strict=True, max_length=128)]


class Manifest(_Strict):
    """``manifest.json`` of format ``phatnguoi-evidence/1`` (see the contract in the module docstring)."""

    format: Literal["phatnguoi-evidence/1"]
    event_id: Annotated[str, Field(strict=True, pattern=_UUID_RE)]
    rule: RuleId
    legal_reference: NonEmpty
    camera_id: NonEmpty
    track_id: Annotated[int, Field(strict=True, ge=0)]
    frame_index: Annotated[int, Field(strict=True, ge=0)]
    ts: Finite
    vehicle_class: VehicleClass
    box_xyxy: list[Finite] = Field(min_length=4, max_length=4)
    details: dict[str, Any]
    occurred_at: IsoUtc
    device_id: NonEmpty
    location: Location | None
    district: NonEmpty | None
    scene_version: Sha256Hex
    plate: PlateInfo | None
    signal: SignalInfo | None
    models: list[ModelInfo] = Field(max_length=32)
    files: list[FileEntry] = Field(min_length=len(REQUIRED_KINDS), max_length=16)
    created_at: IsoUtc

    @field_validator("details")
    @classmethod
    def _bounded_details(cls, details: dict[str, Any]) -> dict[str, Any]:
        """At most `DETAILS_MAX_DEPTH` levels of objects and arrays (``details`` itself is the first)
        and `DETAILS_MAX_BYTES` of compact UTF-8 JSON."""
        if _deeper_than(details, DETAILS_MAX_DEPTH):
            raise ValueError(f"nested deeper than {DETAILS_MAX_DEPTH} levels")
        try:
            size = len(json.dumps(details, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        except (TypeError, ValueError):
            return details  # not JSON at all: `canonical_bytes` says so
        if size > DETAILS_MAX_BYTES:
            raise ValueError(f"larger than {DETAILS_MAX_BYTES} bytes as JSON ({size} bytes)")
        return details

    def model_post_init(self, context: Any, /) -> None:
        """Cross-field checks: box order, timestamps, one file per kind, media types."""
        x1, y1, x2, y2 = self.box_xyxy
        if not (x1 <= x2 and y1 <= y2):
            raise ValueError("box_xyxy must have x1 <= x2 and y1 <= y2")
        for name in ("occurred_at", "created_at"):
            try:
                datetime.fromisoformat(getattr(self, name))
            except ValueError as e:
                raise ValueError(f"{name} is not a valid date: {e}") from e
        names = [f.name for f in self.files]
        kinds: list[str] = [f.kind for f in self.files]
        for label, values in (("name", names), ("kind", kinds)):
            dup = sorted({v for v in values if values.count(v) > 1})
            if dup:
                raise ValueError(f"files: duplicate {label} {dup[0]!r}")
        if MANIFEST_NAME in names or SIGNATURE_NAME in names:
            raise ValueError(f"files: {MANIFEST_NAME}/{SIGNATURE_NAME} cannot be listed as evidence")
        missing = [k for k in REQUIRED_KINDS if k not in kinds]
        if missing:
            raise ValueError(f"files: no {missing[0]} file")
        for f in self.files:
            if f.media_type != MEDIA_TYPES[f.kind]:
                raise ValueError(f"files: {f.name} of kind {f.kind} must be {MEDIA_TYPES[f.kind]}")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels in `value` (without recursion: a
    thousand levels must not exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _field_error(e: ValidationError) -> EvidenceError:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    where = f" field '{loc}'" if loc else ""
    msg = str(err["msg"]).removeprefix("Value error, ")
    return EvidenceError(f"manifest{where}: {msg}{more}")


def validate_manifest(manifest: Mapping[str, Any]) -> Manifest:
    """Schema check of a manifest given as a mapping (what the builder is about to sign).

    Raises:
        EvidenceError: naming the first bad field, e.g. ``manifest field 'plate.confidence': ...``.
    """
    try:
        return Manifest.model_validate(dict(manifest))
    except ValidationError as e:
        raise _field_error(e) from None


# ---------------------------------------------------------------------------------------------------
# Canonical bytes, signatures, files
# ---------------------------------------------------------------------------------------------------


def canonical_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The exact bytes that are written to ``manifest.json`` and signed.

    ``json.dumps(manifest, ensure_ascii=False, sort_keys=True, separators=(",", ":"))`` in UTF-8:
    the same mapping always gives the same bytes, whatever its key order.

    Raises:
        EvidenceError: when the manifest is not JSON-serialisable or holds NaN/infinity (which JSON
            cannot represent and other verifiers would reject).
    """
    try:
        text = json.dumps(
            manifest, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
        )
        # a lone surrogate ("\ud800" in the JSON) decodes to a str that has no UTF-8 form
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as e:
        raise EvidenceError(f"manifest is not canonical JSON: {str(e)[:200]}") from None


def sign(manifest_bytes: bytes, private_key: Ed25519PrivateKey) -> str:
    """The Ed25519 signature of `manifest_bytes`, base64 (standard alphabet, 88 characters)."""
    return base64.b64encode(private_key.sign(manifest_bytes)).decode("ascii")


def verify_signature(manifest_bytes: bytes, signature_b64: str, public_key: Ed25519PublicKey) -> None:
    """Check that `signature_b64` is the signature of exactly `manifest_bytes` by `public_key`.

    Surrounding whitespace (the newline ending ``manifest.sig``) is ignored.

    Raises:
        EvidenceError: the signature is not base64 of 64 bytes, or does not match.
    """
    try:
        raw = base64.b64decode(signature_b64.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceError("manifest.sig is not valid base64") from None
    if len(raw) != 64:
        raise EvidenceError(f"manifest.sig must decode to 64 bytes, got {len(raw)}")
    try:
        public_key.verify(raw, manifest_bytes)
    except InvalidSignature:
        raise EvidenceError(
            "signature does not match manifest.json (manifest altered, or signed by another key)"
        ) from None


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def verify_files(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """Check the evidence files against the manifest's ``files`` list.

    Args:
        manifest: a parsed manifest (``files``: name, sha256, size per file).
        files: name -> content of every file in the package except ``manifest.json`` and
            ``manifest.sig``.

    Raises:
        EvidenceError: naming the first file that is missing, unlisted, or whose size or SHA-256
            differs from the manifest.
    """
    entries = manifest.get("files")
    if not isinstance(entries, Sequence) or isinstance(entries, str):
        raise EvidenceError("manifest field 'files' is missing or not a list")
    listed: set[str] = set()
    for k, entry in enumerate(entries):
        try:
            name, size, digest = str(entry["name"]), entry["size"], entry["sha256"]
        except (KeyError, TypeError):
            raise EvidenceError(f"manifest field 'files.{k}' needs name, size and sha256") from None
        listed.add(name)
        if name not in files:
            raise EvidenceError(f"file {name} is listed in the manifest but missing")
        data = files[name]
        if len(data) != size:
            raise EvidenceError(f"file {name} has {len(data)} bytes, manifest says {size}")
        if sha256_hex(data) != digest:
            raise EvidenceError(f"file {name} does not match its SHA-256 in the manifest (altered)")
    unlisted = sorted(set(files) - listed)
    if unlisted:
        raise EvidenceError(f"file {unlisted[0]} is not listed in the manifest")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may keep different values of a repeated key: a signed manifest must be unambiguous.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise EvidenceError(f"manifest.json repeats the key {key!r}")
        out[key] = value
    return out


def parse_manifest(manifest_bytes: bytes) -> dict[str, Any]:
    """Parse and schema-check ``manifest.json``.

    The bytes must be UTF-8 JSON without repeated keys, in canonical form (`canonical_bytes` of
    themselves), and satisfy the `Manifest` model (``extra="forbid"``: no unknown field anywhere).

    Returns:
        The manifest as plain JSON values (as written, not coerced).

    Raises:
        EvidenceError: naming the bad field, or saying why the bytes are not a manifest.
    """
    try:
        text = manifest_bytes.decode("utf-8")
    except UnicodeDecodeError as e:
        raise EvidenceError(f"manifest.json is not UTF-8 (byte {e.start})") from None

    def _no_constants(name: str) -> Any:
        raise EvidenceError(f"manifest.json holds {name}, which is not JSON")

    try:
        obj = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise EvidenceError(
            f"manifest.json is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except (ValueError, RecursionError) as e:
        # an integer of more than 4,300 digits (int() refuses it) or nesting deeper than Python recurses
        raise EvidenceError(f"manifest.json cannot be read: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(obj, dict):
        raise EvidenceError("manifest.json must hold a JSON object")
    validate_manifest(obj)
    if canonical_bytes(obj) != manifest_bytes:
        raise EvidenceError("manifest.json is not in canonical form (sorted keys, no spaces, UTF-8)")
    return obj


def _read_package(folder: Path) -> tuple[bytes, str, dict[str, bytes]]:
    if not folder.is_dir():
        raise EvidenceError(f"{folder} is not a folder")
    manifest_bytes: bytes | None = None
    signature: str | None = None
    files: dict[str, bytes] = {}
    for path in sorted(folder.iterdir()):
        mode = path.lstat().st_mode
        if not stat.S_ISREG(mode):
            # A link or sub-folder could point outside the package or hide content: never follow it.
            raise EvidenceError(f"{path.name} in the package is not a regular file")
        if path.name == MANIFEST_NAME:
            manifest_bytes = path.read_bytes()
        elif path.name == SIGNATURE_NAME:
            try:
                signature = path.read_text(encoding="ascii")
            except UnicodeDecodeError:
                raise EvidenceError("manifest.sig is not ASCII base64 text") from None
        else:
            files[path.name] = path.read_bytes()
    if manifest_bytes is None:
        raise EvidenceError(f"{MANIFEST_NAME} is missing")
    if signature is None:
        raise EvidenceError(f"{SIGNATURE_NAME} is missing")
    return manifest_bytes, signature, files


def verify_package(folder: Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """Verify an evidence package folder: signature, manifest schema, then every file.

    The signature is checked first, on the raw bytes, so a manifest that was edited is reported as
    such rather than as a schema error.

    Returns:
        The parsed manifest.

    Raises:
        EvidenceError: on the first failed check, naming it.
        OSError: when the folder cannot be read.
    """
    manifest_bytes, signature, files = _read_package(Path(folder))
    verify_signature(manifest_bytes, signature, public_key)
    manifest = parse_manifest(manifest_bytes)
    verify_files(manifest, files)
    return manifest


# ---------------------------------------------------------------------------------------------------
# Report for `phatnguoi evidence verify DIR`
# ---------------------------------------------------------------------------------------------------

CheckStatus = Literal["ok", "failed", "not checked"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of a package: ``read``, ``signature``, ``manifest`` or ``files``."""

    name: str
    status: CheckStatus
    message: str = ""


@dataclass(frozen=True, slots=True)
class FileReport:
    """One file found in (or listed for) the package."""

    name: str
    size: int | None
    kind: str | None
    status: Literal["ok", "altered", "missing", "unlisted", "manifest", "signature"]


@dataclass(frozen=True, slots=True)
class PackageReport:
    """Outcome of `check_package`.

    Attributes:
        folder: the package folder.
        ok: every check that ran passed (a signature that was not checked does not make it fail,
            but `signature_checked` says so).
        checks: read, signature, manifest, files, in that order.
        files: every file seen or listed, sorted by name.
        event_id: from the manifest, when it could be read.
    """

    folder: Path
    ok: bool
    checks: tuple[CheckResult, ...]
    files: tuple[FileReport, ...] = field(default=())
    event_id: str | None = None

    @property
    def signature_checked(self) -> bool:
        """True when the signature was verified against a public key."""
        return any(c.name == "signature" and c.status == "ok" for c in self.checks)

    @property
    def failure(self) -> str | None:
        """The first failed check as ``name: message``, or None."""
        for c in self.checks:
            if c.status == "failed":
                return f"{c.name}: {c.message}"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``evidence verify --json``)."""
        return {
            "folder": str(self.folder),
            "ok": self.ok,
            "event_id": self.event_id,
            "signature_checked": self.signature_checked,
            "checks": [{"name": c.name, "status": c.status, "message": c.message} for c in self.checks],
            "files": [
                {"name": f.name, "size": f.size, "kind": f.kind, "status": f.status} for f in self.files
            ],
        }

    def lines(self) -> list[str]:
        """Human-readable lines: verdict, each check, each file with its size."""
        verdict = "OK" if self.ok else "FAILED"
        if self.ok and not self.signature_checked:
            verdict = "OK (hashes only; signature not checked)"
        out = [f"{self.folder}: {verdict}"]
        out += [f"  {c.name:<10} {c.status}{': ' + c.message if c.message else ''}" for c in self.checks]
        for f in self.files:
            size = "-" if f.size is None else f"{f.size:,} B"
            out.append(f"  {f.name:<20} {size:>14}  {f.kind or '':<12} {f.status}")
        return out


def check_package(folder: Path, public_key: Ed25519PublicKey | None) -> PackageReport:
    """Run every check of a package and report each, instead of stopping at the first failure.

    Without a public key the hashes and the schema are checked and the signature is reported as
    "not checked": such a package proves only that it is self-consistent, not who made it.

    Never raises for a bad package; an unreadable folder is reported as a failed ``read`` check.
    """
    folder = Path(folder)
    try:
        manifest_bytes, signature, files = _read_package(folder)
    except (EvidenceError, OSError) as e:
        return PackageReport(
            folder=folder,
            ok=False,
            checks=(
                CheckResult("read", "failed", str(e)),
                CheckResult("signature", "not checked"),
                CheckResult("manifest", "not checked"),
                CheckResult("files", "not checked"),
            ),
        )
    checks = [CheckResult("read", "ok")]
    if public_key is None:
        checks.append(CheckResult("signature", "not checked", "no public key given"))
    else:
        try:
            verify_signature(manifest_bytes, signature, public_key)
            checks.append(CheckResult("signature", "ok"))
        except EvidenceError as e:
            checks.append(CheckResult("signature", "failed", str(e)))

    manifest: dict[str, Any] | None = None
    try:
        manifest = parse_manifest(manifest_bytes)
        checks.append(CheckResult("manifest", "ok"))
    except EvidenceError as e:
        checks.append(CheckResult("manifest", "failed", str(e)))

    reports = [
        FileReport(MANIFEST_NAME, len(manifest_bytes), None, "manifest"),
        FileReport(SIGNATURE_NAME, len(signature.encode("ascii")), None, "signature"),
    ]
    if manifest is None:
        checks.append(CheckResult("files", "not checked", "manifest unreadable"))
        reports += [FileReport(n, len(b), None, "unlisted") for n, b in files.items()]
    else:
        problems: list[str] = []
        listed = {str(e["name"]): e for e in manifest["files"]}
        for name, entry in listed.items():
            if name not in files:
                reports.append(FileReport(name, None, entry["kind"], "missing"))
                problems.append(f"{name} missing")
                continue
            data = files[name]
            good = len(data) == entry["size"] and sha256_hex(data) == entry["sha256"]
            reports.append(FileReport(name, len(data), entry["kind"], "ok" if good else "altered"))
            if not good:
                problems.append(f"{name} altered")
        for name in sorted(set(files) - set(listed)):
            reports.append(FileReport(name, len(files[name]), None, "unlisted"))
            problems.append(f"{name} not listed")
        checks.append(
            CheckResult("files", "failed", ", ".join(problems)) if problems else CheckResult("files", "ok")
        )
    ok = all(c.status != "failed" for c in checks)
    return PackageReport(
        folder=folder,
        ok=ok,
        checks=tuple(checks),
        files=tuple(sorted(reports, key=lambda r: r.name)),
        event_id=None if manifest is None else str(manifest["event_id"]),
    )


# ---------------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------------


def _check_key_file_mode(path: Path) -> None:
    if os.name != "posix":
        return
    mode = path.stat().st_mode
    if mode & 0o007:
        # Like ssh: a signing key that any local user can read signs nothing we can trust.
        raise EvidenceError(
            f"private key {path} is accessible to other users (mode {mode & 0o777:o}); chmod 600 it"
        )
    if mode & 0o070:
        logger.warning("private key %s is readable by its group (mode %o); 600 is safer", path, mode & 0o777)


def _generate_hint(path: Path) -> str:
    return f"`phatnguoi keys generate --private {path} --public {path.with_suffix('.pub')}`"


def _user_name() -> str:
    """Who this process runs as, for error messages."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "this user"


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Load a device's Ed25519 private key (unencrypted PKCS8 PEM).

    Raises:
        EvidenceError: the file cannot be read (missing, not readable by this user: the message says
            how to make or fix it), is readable by other users (mode & 007), is not PEM, is encrypted,
            or holds another kind of key. A group-readable file is only warned about.
    """
    path = Path(path)
    try:
        _check_key_file_mode(path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise EvidenceError(
            f"cannot read private key {path}: no such file; create it with {_generate_hint(path)}"
        ) from None
    except PermissionError:
        user = _user_name()
        raise EvidenceError(
            f"cannot read private key {path}: permission denied for user {user}; make it readable by "
            f"that user only (chown {user} {path}; chmod 600 {path})"
        ) from None
    except OSError as e:
        raise EvidenceError(f"cannot read private key {path}: {e.strerror or e}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise EvidenceError(f"private key {path} is encrypted; encrypted keys are not supported") from None
    except (ValueError, UnsupportedAlgorithm) as e:
        reason = " ".join(str(e).split())  # one line, whatever the library wrote
        raise EvidenceError(f"private key {path} is not a PEM private key: {reason}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError(f"private key {path} is {type(key).__name__}, not Ed25519")
    return key


def load_public_key(path_or_pem: Path | bytes | str) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM file (Path) or PEM text (bytes or str).

    Raises:
        EvidenceError: not a SubjectPublicKeyInfo PEM, or not an Ed25519 key.
        OSError: the file cannot be read.
    """
    if isinstance(path_or_pem, Path):
        data, where = path_or_pem.read_bytes(), str(path_or_pem)
    else:
        data = path_or_pem.encode("ascii", "replace") if isinstance(path_or_pem, str) else path_or_pem
        where = "PEM text"
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise EvidenceError(f"public key ({where}) is not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError(f"public key ({where}) is {type(key).__name__}, not Ed25519")
    return key


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SubjectPublicKeyInfo PEM text of a key's public half (what the server registers)."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """``sha256`` hex of the 32 raw public key bytes: a short id of a device key for logs and listings."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return sha256_hex(pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def _write_file(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        # O_CREAT's mode is filtered by the umask and ignored for an existing file: set it explicitly.
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)


def generate_keypair(private_path: Path, public_path: Path, *, overwrite: bool = False) -> None:
    """Create a new Ed25519 device key: private PKCS8 PEM (mode 0600) and public SubjectPublicKeyInfo PEM.

    Both files are written to a temporary name, synced and renamed, so a crash leaves no half key.

    Raises:
        EvidenceError: a key file already exists and `overwrite` is False (replacing a device key
            orphans every package it signed unless the server keeps the old public key).
        OSError: the files cannot be written.
    """
    private_path, public_path = Path(private_path), Path(public_path)
    if not overwrite:
        for p in (private_path, public_path):
            if p.exists():
                raise EvidenceError(f"key file {p} already exists; refusing to replace a device key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    _write_file(private_path, pem, 0o600)
    _write_file(public_path, public_key_pem(key).encode("ascii"), 0o644)
    logger.info("generated device key %s (fingerprint %s)", private_path, public_key_fingerprint(key)[:16])


# ---------------------------------------------------------------------------------------------------
# Helpers for writers
# ---------------------------------------------------------------------------------------------------


def iso_utc(epoch_s: float) -> str:
    """``2026-11-23T05:16:24.123Z``: a UTC instant with milliseconds, as manifests write it.

    Raises:
        EvidenceError: `epoch_s` is not finite or outside years 1..9999.
    """
    if not math.isfinite(epoch_s):
        raise EvidenceError(f"timestamp must be finite, got {epoch_s}")
    ms = round(epoch_s * 1000.0)
    try:
        dt = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        raise EvidenceError(f"timestamp {epoch_s} is out of range") from None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


__all__ = [
    "DETAILS_MAX_BYTES",
    "DETAILS_MAX_DEPTH",
    "FORMAT",
    "MANIFEST_NAME",
    "MEDIA_TYPES",
    "SIGNATURE_NAME",
    "CheckResult",
    "EvidenceError",
    "FileEntry",
    "FileReport",
    "Location",
    "Manifest",
    "ModelInfo",
    "PackageReport",
    "PlateInfo",
    "SignalInfo",
    "canonical_bytes",
    "check_package",
    "generate_keypair",
    "iso_utc",
    "load_private_key",
    "load_public_key",
    "parse_manifest",
    "public_key_fingerprint",
    "public_key_pem",
    "sha256_hex",
    "sign",
    "validate_manifest",
    "verify_files",
    "verify_package",
    "verify_signature",
]
