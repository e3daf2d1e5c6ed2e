"""Deployment settings of the server, read from `PHATNGUOI_*` environment variables (STYLE.md §5).

Secrets are required and placeholder values are refused. Nothing is read at import time: call
`get_settings()` (cached) or build `Settings(...)` yourself (tests do).

| variable | default |
|---|---|
| `PHATNGUOI_DATABASE_URL` | `sqlite:///./phatnguoi.db`; `postgresql://user:pw@host/db` in production |
| `PHATNGUOI_EVIDENCE_STORE` | `local` (or `s3`, needs the optional `boto3`) |
| `PHATNGUOI_EVIDENCE_DIR` | `./evidence` (local store root) |
| `PHATNGUOI_S3_BUCKET`, `_S3_PREFIX`, `_S3_ENDPOINT_URL` | for the `s3` store |
| `PHATNGUOI_JWT_SECRET` | required, ≥ 32 characters, not a placeholder |
| `PHATNGUOI_TOKEN_MINUTES` | 480 (one shift) |
| `PHATNGUOI_UPLOAD_MAX_BYTES`, `_MAX_FILES`, `_MEDIA_TYPES` (JSON list) | 64 MiB, 8, JPEG/PNG/MP4 |
| `PHATNGUOI_REQUEST_MAX_BYTES` | 1 MiB (every other request body; the registry import has 24 MiB) |
| `PHATNGUOI_INGEST_FUTURE_SKEW_S` | 600: violations or flow intervals dated further ahead: refused (422) |
| `PHATNGUOI_INGEST_MAX_AGE_DAYS` | none: only dates before 2000 are refused as too old (422); see below |
| `PHATNGUOI_LOGIN_MAX_FAILURES`, `PHATNGUOI_LOGIN_WINDOW_S` | 5 failures per username+IP per 300 s |
| `PHATNGUOI_PENALTY_WEBHOOK_URL`, `_PENALTY_WEBHOOK_SECRET` | optional; the secret is needed with the URL |
| `PHATNGUOI_PENALTY_WEBHOOK_TIMEOUT_S`, `_MAX_ATTEMPTS` | 10 s, 20 |
| `PHATNGUOI_PENALTY_WEBHOOK_BACKOFF_S`, `_BACKOFF_MAX_S` | 30 s doubling per failure, capped at 3600 s |
| `PHATNGUOI_PENALTY_WEBHOOK_INTERVAL_S` | 15 s between delivery rounds of the server's thread; 0: no thread |
| `PHATNGUOI_CAMERA_STALE_AFTER_S` | 900: a camera not heard from for longer is `stale` on the map |
| `PHATNGUOI_RETENTION_REJECTED_DAYS`, `_RETENTION_UNREVIEWED_DAYS` | 180, 365 (evidence deletion) |

The Docker image sets the database, the evidence store and the SMS file into its volume
`/var/lib/phatnguoi` (see the Dockerfile). A list variable (`PHATNGUOI_UPLOAD_MEDIA_TYPES`) is JSON:
`["image/jpeg", "video/mp4"]`.

A device clock gone wrong dated violations 9999 or 1899 (they broke the due list and paging), hence the
two ingest bounds. Where recorded video is never replayed, set `PHATNGUOI_INGEST_MAX_AGE_DAYS` (365,
the unreviewed retention, keeps the retention job from deleting a package just received); the default
takes replayed recordings, which carry their own, older dates.

Owner notices and SMS alerts (`PHATNGUOI_SMS_LOOKUP_URL`, `_SMS_PROVIDER`, `_SMS_GATEWAY_*`,
`_SMS_RECEIPT_SECRET`, `_SMS_INTERVAL_S`, ...) have their own settings: `api.notices.settings`. The
notices' lookup codes are derived from `PHATNGUOI_JWT_SECRET` (`api.notices.workflow.derived_lookup_code`):
rotating it keeps issued codes valid, but staff pages can no longer show them.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from api.errors import SettingsError

MIN_SECRET_CHARS = 32
# Values people paste from tutorials. A secret containing one of these words is refused even when long:
# "change-me-change-me-change-me-change-me" is no more secret than "change-me".
_PLACEHOLDER_WORDS = (
    "change-me",
    "changeme",
    "change_me",
    "secret",
    "password",
    "placeholder",
    "example",
    "your-",
    "dummy",
    "default",
)


def check_secret(name: str, value: str) -> None:
    """Refuse a secret that is short, a placeholder or made of one repeated character.

    Raises:
        ValueError: naming the variable and the reason (never echoing the value).
    """
    lowered = value.strip().lower()
    if len(value) < MIN_SECRET_CHARS:
        raise ValueError(
            f"{name} must be at least {MIN_SECRET_CHARS} characters (got {len(value)}); "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    if any(word in lowered for word in _PLACEHOLDER_WORDS) or len(set(lowered)) < 8:
        raise ValueError(f"{name} looks like a placeholder; set a random value")


class Settings(BaseSettings):
    """Server settings. Immutable; build one per process (or per test)."""

    model_config = SettingsConfigDict(env_prefix="PHATNGUOI_", extra="ignore", frozen=True)

    database_url: str = Field(
        "sqlite:///./phatnguoi.db",
        description="SQLAlchemy URL. sqlite:///path or postgresql://user:password@host:port/db.",
    )
    evidence_store: Literal["local", "s3"] = Field("local", description="Where evidence files are kept.")
    evidence_dir: Path = Field(Path("./evidence"), description="Root folder of the local evidence store.")
    s3_bucket: str | None = Field(None, description="Bucket of the s3 evidence store.")
    s3_prefix: str = Field("evidence/", description="Key prefix inside the bucket.")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO, Ceph...).")

    jwt_secret: SecretStr = Field(description="HS256 key for officer tokens (≥ 32 random characters).")
    token_minutes: int = Field(480, ge=1, le=7 * 24 * 60, description="Lifetime of an officer token.")

    upload_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest ingest request body.")
    upload_max_files: int = Field(8, ge=1, le=64, description="Most evidence files in one package.")
    upload_media_types: tuple[str, ...] = Field(
        ("image/jpeg", "image/png", "video/mp4"), description="Media types accepted as evidence."
    )
    request_max_bytes: int = Field(1024 * 1024, ge=1024, description="Largest body of any other request.")

    login_max_failures: int = Field(5, ge=1, description="Failed logins per username+IP in the window.")
    login_max_failures_per_ip: int = Field(
        30, ge=1, description="Failed logins per IP, any username, in the window (password spraying)."
    )
    login_window_s: float = Field(300.0, gt=0, description="Window of the login rate limit.")

    penalty_webhook_url: str | None = Field(None, description="Penalty system endpoint (confirmed fines).")
    penalty_webhook_secret: SecretStr | None = Field(None, description="HMAC key of the penalty webhook.")
    penalty_webhook_timeout_s: float = Field(10.0, gt=0, le=300, description="Timeout of one delivery.")
    penalty_webhook_max_attempts: int = Field(20, ge=1, le=1000, description="Attempts before giving up.")
    penalty_webhook_backoff_s: float = Field(30.0, gt=0, description="Delay after the first failure.")
    penalty_webhook_backoff_max_s: float = Field(3600.0, gt=0, description="Cap of the doubling delay.")
    penalty_webhook_interval_s: float = Field(
        15.0, ge=0, description="Seconds between delivery rounds of the server's own thread (0: no thread)."
    )

    camera_stale_after_s: float = Field(
        900.0, gt=0, description="A camera not heard from for longer is shown as stale on the map."
    )
    retention_rejected_days: int = Field(
        180, ge=1, le=36500, description="Evidence of rejected violations is deleted this long after review."
    )
    retention_unreviewed_days: int = Field(
        365, ge=1, le=36500, description="Evidence of never-reviewed violations is deleted this long after."
    )
    ingest_max_age_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="Violations that occurred longer ago than this are refused (422); none: only those "
        "before 2000 (a device clock gone wrong). Recorded video replayed with its own date is older.",
    )
    ingest_future_skew_s: float = Field(
        600.0,
        ge=0,
        le=86400,
        description="Violations dated, and flow intervals starting, further ahead are refused (422).",
    )

    @field_validator("jwt_secret")
    @classmethod
    def _jwt_secret_is_secret(cls, v: SecretStr) -> SecretStr:
        check_secret("PHATNGUOI_JWT_SECRET", v.get_secret_value())
        return v

    @field_validator("penalty_webhook_secret")
    @classmethod
    def _webhook_secret_is_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            check_secret("PHATNGUOI_PENALTY_WEBHOOK_SECRET", v.get_secret_value())
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.penalty_webhook_url and self.penalty_webhook_secret is None:
            raise ValueError(
                "PHATNGUOI_PENALTY_WEBHOOK_SECRET is required with PHATNGUOI_PENALTY_WEBHOOK_URL"
            )
        if self.evidence_store == "s3" and not self.s3_bucket:
            raise ValueError("PHATNGUOI_S3_BUCKET is required with PHATNGUOI_EVIDENCE_STORE=s3")
        return self


def _one_line(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        field = ".".join(str(p) for p in err["loc"])
        name = f"PHATNGUOI_{field.upper()}" if field else "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(msg if msg.startswith("PHATNGUOI_") else f"{name}: {msg}")
    return "; ".join(parts)


def source_error_line(e: SourceError, prefix: str = "PHATNGUOI_") -> str:
    """One line for a variable pydantic-settings could not even parse: a list or table variable
    (`PHATNGUOI_UPLOAD_MEDIA_TYPES`) holds JSON, and `image/jpeg` is not JSON. Never echoes the value."""
    found = re.search(r'field "(\w+)"', str(e))
    name = f"{prefix}{found.group(1).upper()}" if found else "a setting"
    cause = f": {e.__cause__}" if e.__cause__ is not None else ""
    return f'{name} is not valid JSON (write a list as ["image/jpeg", "video/mp4"]){cause}'


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (plus `overrides`).

    Raises:
        SettingsError: one line naming each bad variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        raise SettingsError(_one_line(e)) from None
    except SourceError as e:
        raise SettingsError(source_error_line(e)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings from the environment, read once. Raises `SettingsError`."""
    return load_settings()
