"""Deployment settings: secrets are required and placeholders refused, with one clear line."""

from __future__ import annotations

import pytest

from api.errors import SettingsError
from api.settings import get_settings, load_settings

GOOD = "Vf3kq9ZxL2mT8wYp4sRb7nHc1jGd6eUa0iKo5PlQ"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "PHATNGUOI_JWT_SECRET: Field required"),
        ("change-me", "at least 32 characters"),
        ("short-but-random-Zx81", "at least 32 characters"),
        ("change-me-change-me-change-me-change-me", "looks like a placeholder"),
        ("my-super-secret-key-for-the-jwt-tokens-2026", "looks like a placeholder"),
        ("a" * 40, "looks like a placeholder"),
        ("abababababababababababababababababababab", "looks like a placeholder"),
    ],
)
def test_weak_jwt_secrets_are_refused(
    secret: str | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PHATNGUOI_JWT_SECRET", raising=False)
    kwargs = {} if secret is None else {"jwt_secret": secret}
    with pytest.raises(SettingsError) as e:
        load_settings(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value)
    if secret:
        assert secret not in str(e.value)  # never echo a secret


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("PHATNGUOI_JWT_SECRET", GOOD)
    monkeypatch.setenv("PHATNGUOI_DATABASE_URL", "postgresql://u:p@db:5432/phatnguoi")
    monkeypatch.setenv("PHATNGUOI_UPLOAD_MAX_FILES", "5")
    monkeypatch.setenv("PHATNGUOI_UPLOAD_MEDIA_TYPES", '["image/jpeg"]')
    get_settings.cache_clear()
    try:
        s = get_settings()
        assert get_settings() is s
        assert s.jwt_secret.get_secret_value() == GOOD and GOOD not in repr(s)
        assert (s.database_url, s.upload_max_files, s.upload_media_types) == (
            "postgresql://u:p@db:5432/phatnguoi",
            5,
            ("image/jpeg",),
        )
        assert s.evidence_store == "local" and s.penalty_webhook_url is None
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"penalty_webhook_url": "https://penalty.example/hook"}, "PENALTY_WEBHOOK_SECRET is required"),
        ({"penalty_webhook_url": "https://p/h", "penalty_webhook_secret": "secret"}, "at least 32"),
        ({"evidence_store": "s3"}, "PHATNGUOI_S3_BUCKET is required"),
        ({"upload_max_files": 0}, "PHATNGUOI_UPLOAD_MAX_FILES"),
        ({"token_minutes": 0}, "PHATNGUOI_TOKEN_MINUTES"),
    ],
)
def test_inconsistent_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(jwt_secret=GOOD, **overrides)


def test_unsupported_database_urls_are_refused() -> None:
    from api.db import make_engine

    for url, message in (
        ("mysql://x@y/z", "unsupported database 'mysql'"),
        ("not a url", "not a database URL"),
    ):
        with pytest.raises(SettingsError, match=message):
            make_engine(url)
