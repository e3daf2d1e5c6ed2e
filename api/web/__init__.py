"""The police review web app, served by the API's own FastAPI app: map, review queue with the evidence
viewer, statistics, and the public `/lookup` page. Vietnamese first, English as a switch; every asset is
served by the app (no CDN: police networks have no internet).

`mount(app, settings)` adds the pages, the static files (`/static`) and the web app's JSON routes;
`api.app.create_app` calls it last. Front-end libraries (Leaflet, Leaflet.markercluster, Chart.js) are
pinned in `api/web/package.json` + `package-lock.json` and copied into `static/vendor/` by `vendor.sh`;
the copies are committed, so neither the server nor CI needs npm.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from api.security import LoginLimiter
from api.settings import Settings
from api.web.settings import WebSettings, load_web_settings

__all__ = ["WebSettings", "WebState", "load_web_settings", "mount"]


@dataclass(frozen=True, slots=True)
class WebState:
    """What the web app shares between requests (`app.state.phatnguoi_web`)."""

    settings: WebSettings
    lookup_limiter: LoginLimiter


def mount(app: FastAPI, settings: Settings, web: WebSettings | None = None) -> None:
    """Add the web pages, static files and web JSON routes to `app`.

    Args:
        app: the application `api.app.create_app` built.
        settings: the server's settings (not read yet: what the web app needs beyond them, such as
            `PHATNGUOI_MAP_TILE_URL`, it reads from the environment itself, see `api.web.settings`).
        web: the web settings; None reads them from the environment.

    Raises:
        SettingsError: a web setting (e.g. `PHATNGUOI_MAP_TILE_URL`) is invalid.
    """
    from fastapi.staticfiles import StaticFiles

    from api.web import pages, routes

    web = web if web is not None else load_web_settings()
    # The login limiter is a sliding-window counter per (key, IP); the lookup counts every request.
    app.state.phatnguoi_web = WebState(web, LoginLimiter(web.lookup_max_requests, web.lookup_window_s))
    app.include_router(routes.router)
    app.include_router(pages.router)
    app.mount(pages.STATIC_PREFIX, StaticFiles(directory=pages.STATIC_DIR), name="static")
