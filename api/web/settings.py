"""Settings of the review web app, read from `PHATNGUOI_*` environment variables (STYLE.md §5).

| variable | default |
|---|---|
| `PHATNGUOI_MAP_TILE_URL` | empty: no tiles, markers on a blank background (see below) |
| `PHATNGUOI_MAP_TILE_ATTRIBUTION` | empty (OpenStreetMap tiles need `© OpenStreetMap`) |
| `PHATNGUOI_MAP_CENTER_LAT`, `_LON`, `_ZOOM` | Hà Nội (21.0285, 105.8542), 13 (map with nothing on it) |
| `PHATNGUOI_LOOKUP_MAX_REQUESTS`, `_LOOKUP_WINDOW_S` | 10 public lookups per client IP per 300 s |

Police networks have no internet, so the default map has no tiles. A tile URL is a Leaflet template such
as `https://tiles.city.gov.vn/{z}/{x}/{y}.png` (its origin is added to the pages'
Content-Security-Policy) or a path served by the app itself (`/tiles/{z}/{x}/{y}.png`).

Nothing is read at import time: `load_web_settings()` reads the environment when the app is built.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.errors import SettingsError

# Characters that would let a configured value break out of the CSP header or the page's JSON.
_UNSAFE = re.compile(r"[\s;,'\"<>\\]")


def tile_origin(url: str) -> str | None:
    """The Content-Security-Policy source that allows `url`'s tiles; None for a same-origin URL.

    `https://{s}.tile.example.org/{z}/{x}/{y}.png` → `https://*.tile.example.org` (Leaflet puts a
    subdomain letter where `{s}` is); `/tiles/{z}/{x}/{y}.png` → None (served by the app itself).

    Raises:
        ValueError: not an http(s) URL or an absolute path, or a template in the host other than a
            leading `{s}.`.
    """
    if url.startswith("/") and not url.startswith("//"):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http(s) URL or a path starting with /")
    host = parts.netloc
    if host.startswith("{s}."):
        host = "*." + host[4:]
    if "{" in host or "}" in host or "@" in host:
        raise ValueError("only a leading {s}. may be a template in the host")
    return f"{parts.scheme}://{host}"


class WebSettings(BaseSettings):
    """What the web pages need beyond the server's settings. Immutable."""

    model_config = SettingsConfigDict(env_prefix="PHATNGUOI_", extra="ignore", frozen=True)

    map_tile_url: str = Field(
        "", max_length=500, description="Leaflet tile URL template; empty: markers on a blank background."
    )
    map_tile_attribution: str = Field("", max_length=300, description="Attribution text of the tiles.")
    map_center_lat: float = Field(21.0285, ge=-90, le=90, description="Initial map centre, latitude.")
    map_center_lon: float = Field(105.8542, ge=-180, le=180, description="Initial map centre, longitude.")
    map_zoom: int = Field(13, ge=1, le=19, description="Initial zoom level.")
    lookup_max_requests: int = Field(10, ge=1, le=10_000, description="Public lookups per IP per window.")
    lookup_window_s: float = Field(300.0, gt=0, le=86_400, description="Window of the lookup rate limit.")

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url(cls, v: str) -> str:
        v = v.strip()
        if not v:
            return v
        if _UNSAFE.search(v):
            raise ValueError("may not contain spaces, quotes, ';', ',', '<', '>' or '\\'")
        if not all(part in v for part in ("{z}", "{x}", "{y}")):
            raise ValueError("must contain {z}, {x} and {y}")
        tile_origin(v)
        return v

    @property
    def tile_csp_source(self) -> str | None:
        """The CSP source of the configured tile server; None without one or when it is the app."""
        return tile_origin(self.map_tile_url) if self.map_tile_url else None


def load_web_settings(**overrides: object) -> WebSettings:
    """Web settings from the environment (plus `overrides`).

    Raises:
        SettingsError: one line naming each bad variable.
    """
    try:
        return WebSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as e:
        problems = "; ".join(
            f"PHATNGUOI_{'.'.join(str(p) for p in err['loc']).upper()}: "
            f"{str(err['msg']).removeprefix('Value error, ')}"
            for err in e.errors()
        )
        raise SettingsError(problems) from None
