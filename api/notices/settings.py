"""Settings of notices and SMS alerts, read from `PHATNGUOI_*` environment variables (STYLE.md §5).

| variable | default |
|---|---|
| `PHATNGUOI_SMS_LOOKUP_URL` | empty: notices are created, no SMS alert is queued, no outbox thread |
| `PHATNGUOI_SMS_PROVIDER` | `file` (development, demo) or `http` (a real gateway) |
| `PHATNGUOI_SMS_FILE` | `./sms-outbox.jsonl`: the file provider appends one JSON line per message |
| `PHATNGUOI_SMS_GATEWAY_URL` | the gateway's send endpoint (required with `http`) |
| `PHATNGUOI_SMS_GATEWAY_AUTH_HEADER`, `_SMS_GATEWAY_AUTH` | `Authorization`; credential (for `http`) |
| `PHATNGUOI_SMS_GATEWAY_BODY` | JSON template: `{"to": "{to}", "text": "{text}", "reference": "{key}"}` |
| `PHATNGUOI_SMS_GATEWAY_MESSAGE_ID_FIELD`, `_SMS_GATEWAY_TIMEOUT_S` | `id`; 10 s |
| `PHATNGUOI_SMS_RECEIPT_SECRET` | empty: delivery receipts are refused (403) |
| `PHATNGUOI_SMS_TEMPLATE` | the Vietnamese alert (fields `{plate} {time} {violation} {url} {code}`) |
| `PHATNGUOI_SMS_ACCENTS` | false (GSM-7 text without diacritics, one SMS) |
| `PHATNGUOI_SMS_MAX_SEGMENTS` | 3 |
| `PHATNGUOI_SMS_INTERVAL_S` | 5 s between outbox rounds of the server's own thread; 0: no thread |
| `PHATNGUOI_SMS_MAX_ATTEMPTS`, `_SMS_BACKOFF_S`, `_SMS_BACKOFF_MAX_S` | 8; 60 s doubling, capped at 3600 s |
| `PHATNGUOI_SMS_RATE_LIMIT_COUNT`, `_SMS_RATE_LIMIT_WINDOW_S` | 3 SMS per number per 86400 s |
| `PHATNGUOI_SMS_QUIET_START`, `_SMS_QUIET_END` | 22:00, 06:00 Vietnam time (equal: no quiet hours) |

Nothing is read at import time: `load_notice_settings()` reads the environment when asked
(`api.app.create_app` asks once and keeps the answer on `app.state.notice_settings`, where tests may put
their own before the app starts).
"""

from __future__ import annotations

import json
import logging
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.errors import SettingsError
from api.notices.sms import (
    DEFAULT_TEMPLATE,
    FileProvider,
    GatewayConfig,
    HttpGatewayProvider,
    SmsConfig,
    SmsProvider,
)

log = logging.getLogger(__name__)

_DEFAULT_BODY = '{"to": "{to}", "text": "{text}", "reference": "{key}"}'


class NoticeSettings(BaseSettings):
    """Notice and SMS settings (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="PHATNGUOI_", extra="ignore", frozen=True)

    sms_lookup_url: str = Field("", description="Public lookup page printed in the SMS.")
    sms_provider: Literal["file", "http"] = Field("file", description="Who sends the SMS.")
    sms_file: Path = Field(Path("./sms-outbox.jsonl"), description="File of the `file` provider.")
    sms_gateway_url: str = Field("", description="Send endpoint of the `http` provider.")
    sms_gateway_auth_header: str = Field("Authorization", description="Header carrying the credential.")
    sms_gateway_auth: SecretStr | None = Field(None, description="Credential, e.g. 'Bearer <token>'.")
    sms_gateway_body: str = Field(_DEFAULT_BODY, description="JSON object; values use {to} {text} {key}.")
    sms_gateway_message_id_field: str = Field("id", description="Field of the answer with the message id.")
    sms_gateway_timeout_s: float = Field(10.0, gt=0, le=300, description="Timeout of one send.")
    sms_receipt_secret: SecretStr | None = Field(None, description="HMAC key of delivery receipts.")
    sms_template: str = Field(DEFAULT_TEMPLATE, min_length=1, max_length=1000, description="Alert text.")
    sms_accents: bool = Field(False, description="Vietnamese with diacritics (UCS-2) in the SMS.")
    sms_max_segments: int = Field(3, ge=1, le=6, description="Longest alert, in SMS parts.")
    sms_interval_s: float = Field(5.0, ge=0, description="Seconds between outbox rounds (0: no thread).")
    sms_max_attempts: int = Field(8, ge=1, le=1000, description="Attempts before a message fails.")
    sms_backoff_s: float = Field(60.0, gt=0, description="Delay after the first failure (doubling).")
    sms_backoff_max_s: float = Field(3600.0, gt=0, description="Cap of the doubling delay.")
    sms_rate_limit_count: int = Field(3, ge=1, description="SMS per number per window.")
    sms_rate_limit_window_s: float = Field(86400.0, gt=0, description="Window of the per-number limit.")
    sms_quiet_start: time = Field(time(22, 0), description="Vietnam time; no SMS from here ...")
    sms_quiet_end: time = Field(time(6, 0), description="... until here (equal to the start: none).")

    @field_validator("sms_gateway_body")
    @classmethod
    def _body_is_a_json_object_of_strings(cls, v: str) -> str:
        try:
            data = json.loads(v)
        except ValueError as e:
            raise ValueError(f"not JSON: {e}") from None
        if not isinstance(data, dict) or not all(isinstance(x, str) for x in data.values()):
            raise ValueError("must be a JSON object whose values are strings")
        return v

    @model_validator(mode="after")
    def _http_needs_url_and_auth(self) -> NoticeSettings:
        if self.sms_lookup_url and self.sms_provider == "http":
            if not self.sms_gateway_url.startswith(("http://", "https://")):
                raise ValueError("PHATNGUOI_SMS_GATEWAY_URL (http/https) is required with SMS_PROVIDER=http")
            if self.sms_gateway_auth is None or not self.sms_gateway_auth.get_secret_value():
                raise ValueError("PHATNGUOI_SMS_GATEWAY_AUTH is required with PHATNGUOI_SMS_PROVIDER=http")
        return self

    def sms_config(self) -> SmsConfig | None:
        """The SMS configuration, None when no lookup URL is set (no alerts are queued then)."""
        if not self.sms_lookup_url:
            return None
        return SmsConfig(
            lookup_url=self.sms_lookup_url,
            template=self.sms_template,
            accents=self.sms_accents,
            max_segments=self.sms_max_segments,
            max_attempts=self.sms_max_attempts,
            backoff_s=self.sms_backoff_s,
            backoff_max_s=self.sms_backoff_max_s,
            # A claimed row is re-offered only after the send's timeout has surely passed.
            lease_s=max(120.0, 2 * self.sms_gateway_timeout_s),
            rate_limit_count=self.sms_rate_limit_count,
            rate_limit_window_s=self.sms_rate_limit_window_s,
            quiet_start=self.sms_quiet_start,
            quiet_end=self.sms_quiet_end,
        )

    def provider(self) -> SmsProvider:
        """The configured provider (`file`: `FileProvider(sms_file)`; `http`: `HttpGatewayProvider`).

        Raises:
            SettingsError: `http` without a gateway URL or credential.
        """
        if self.sms_provider == "file":
            return FileProvider(self.sms_file)
        if not self.sms_gateway_url or self.sms_gateway_auth is None:
            raise SettingsError("PHATNGUOI_SMS_GATEWAY_URL and _SMS_GATEWAY_AUTH are required for http")
        try:
            config = GatewayConfig(
                url=self.sms_gateway_url,
                auth_header=self.sms_gateway_auth_header,
                auth_value=self.sms_gateway_auth.get_secret_value(),
                body_template=json.loads(self.sms_gateway_body),
                message_id_field=self.sms_gateway_message_id_field,
                timeout_s=self.sms_gateway_timeout_s,
            )
        except ValidationError as e:
            raise SettingsError(f"SMS gateway settings: {e}") from None
        return HttpGatewayProvider(config)


def load_notice_settings(**overrides: object) -> NoticeSettings:
    """Read the environment (plus `overrides`).

    No notice setting is a list or a table, so pydantic-settings never decodes one as JSON (its own
    ``SettingsError``, which `api.settings.load_settings` turns into a line, cannot come from here);
    a JSON template (``PHATNGUOI_SMS_GATEWAY_BODY``) is a string checked by its validator.

    Raises:
        SettingsError: a variable has an invalid value (one line naming each).
    """
    try:
        return NoticeSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            field = ".".join(str(p) for p in err["loc"]).upper()
            problems.append(f"PHATNGUOI_{field}: {msg}" if field else msg)
        raise SettingsError(f"notice settings: {'; '.join(problems)}") from None
