"""The HTML pages of the review app: server-rendered shells (Jinja2) whose data the page's script
fetches from the JSON API with the officer's token (kept in `sessionStorage`, never in a cookie, so
no page request carries a credential and cross-site requests can do nothing).

Every page is sent with a strict Content-Security-Policy: scripts, styles, images and requests only
from the app itself (plus the configured tile server's images), no inline script. That is what keeps
the app working on a police network without internet, and what the browser tests check.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.web.i18n import LANG_COOKIE, REASONS, RULES, STATUSES, Translator, error_messages, labels, pick_lang
from api.web.settings import WebSettings

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/static"

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def content_security_policy(web: WebSettings) -> str:
    """The pages' CSP: everything from the app's origin; tile images also from the tile server."""
    img = "'self' data: blob:"
    tile = web.tile_csp_source
    if tile:
        img += f" {tile}"
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {img}",
            "media-src 'self' blob:",
            "connect-src 'self'",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _web(request: Request) -> WebSettings:
    web: WebSettings = request.app.state.phatnguoi_web.settings
    return web


def render(request: Request, page: str, title_key: str, *, public: bool = False) -> HTMLResponse:
    """Render `templates/<page>.html` in the request's language with the page's config."""
    web = _web(request)
    lang = pick_lang(request.cookies.get(LANG_COOKIE))
    t = Translator(lang)
    config: dict[str, Any] = {
        "page": page,
        "lang": lang,
        "public": public,
        "labels": labels(lang),
        "errors": error_messages(lang),
        "map": {
            "tileUrl": web.map_tile_url,
            "attribution": web.map_tile_attribution,
            "center": [web.map_center_lat, web.map_center_lon],
            "zoom": web.map_zoom,
        },
    }
    response = templates.TemplateResponse(
        request,
        f"{page}.html",
        {
            "t": t,
            "lang": lang,
            "page": page,
            "title": t(title_key),
            "config": config,
            "public": public,
            "rules": RULES,
            "statuses": STATUSES,
            "reasons": REASONS,
        },
    )
    response.headers["Content-Security-Policy"] = content_security_policy(web)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-cache"
    return response


@router.get("/", response_class=RedirectResponse)
def index() -> RedirectResponse:
    """The map is the start page."""
    return RedirectResponse("/map", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    """Log in with username and password (the OAuth2 token endpoint)."""
    return render(request, "login", "login.title", public=True)


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request) -> HTMLResponse:
    """Cameras and the period's violations on a map."""
    return render(request, "map", "map.title")


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> HTMLResponse:
    """The review queue with the evidence viewer (`?id=` opens one violation, `?camera=` filters)."""
    return render(request, "review", "review.title")


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request) -> HTMLResponse:
    """Charts of violations and traffic flow, with CSV downloads."""
    return render(request, "stats", "stats.title")


@router.get("/notices", response_class=HTMLResponse)
def notices_page(request: Request) -> HTMLResponse:
    """Supervisors: the notices' due actions (the 10-day and 20-day clocks), soonest first."""
    return render(request, "notices", "due.title")


@router.get("/lookup", response_class=HTMLResponse)
def lookup_page(request: Request) -> HTMLResponse:
    """Public: a vehicle owner looks their violation up with plate and notice code."""
    return render(request, "lookup", "lookup.title", public=True)


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it whatever the page says; the icon is an SVG."""
    return RedirectResponse(f"{STATIC_PREFIX}/img/favicon.svg", status_code=301)
