"""Settings of notices and SMS alerts, read from `PHATNGUOI_*` environment variables (STYLE.md §5).

| variable | default |
|---|---|
| `PHATNGUOI_SMS_LOOKUP_URL` | empty: notices are created but no SMS alert is queued |
| `PHATNGUOI_SMS_RECEIPT_SECRET` | empty: delivery receipts are refused (403) |
| `PHATNGUOI_SMS_ACCENTS` | false (GSM-7 text without diacritics, one SMS) |

Nothing is read at import time: `load_notice_settings()` reads the environment when asked (the routes
ask once per app and keep the answer on `app.state.notice_settings`, where tests put their own).
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.errors import SettingsError
from api.notices.sms import SmsConfig


class NoticeSettings(BaseSettings):
    """Notice and SMS settings (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="PHATNGUOI_", extra="ignore", frozen=True)

    sms_lookup_url: str = Field("", description="Public lookup page printed in the SMS.")
    sms_receipt_secret: SecretStr | None = Field(None, description="HMAC key of delivery receipts.")
    sms_accents: bool = Field(False, description="Vietnamese with diacritics (UCS-2) in the SMS.")

    def sms_config(self) -> SmsConfig | None:
        """The SMS configuration, None when no lookup URL is set (no alerts are queued then)."""
        if not self.sms_lookup_url:
            return None
        return SmsConfig(lookup_url=self.sms_lookup_url, accents=self.sms_accents, max_segments=3)


def load_notice_settings() -> NoticeSettings:
    """Read the environment.

    Raises:
        SettingsError: a variable has an invalid value.
    """
    try:
        return NoticeSettings()
    except ValidationError as e:
        raise SettingsError(f"notice settings: {e}") from e
