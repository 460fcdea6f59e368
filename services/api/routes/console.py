"""The consoles, served by the API: dispatcher and command center (`/console/`), the field unit
(`/console/unit`), the public tracker (`/lacak/{tracking_code}`), their assets, the map library
from npm (`/console/vendor/leaflet/...`) and the map's configuration (`/console/config.json`).

Plain files, no build step. The pages are public (they hold no data): every piece of data comes
from the API with the token the user brings, and the tracker from the public `/track/{code}`.
These are Starlette routes, not API operations: they stay out of the OpenAPI document and out of
the role table every API operation declares.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from services.dispatch import lifecycle
from services.tkp import domain as tkp_rules
from spkt.settings import Settings, get_settings

CONSOLE = Path(__file__).resolve().parents[1] / "console"
LEAFLET = CONSOLE / "node_modules" / "leaflet" / "dist"
ASSETS = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".png": "image/png", ".svg": "image/svg+xml", ".map": "application/json"}
NO_CACHE = {"Cache-Control": "no-cache"}
PAGE_HEADERS = {**NO_CACHE, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}

router = APIRouter()


def _settings(request: Request) -> Settings:
    """The app's settings (as auth.app_settings finds them)."""
    settings = getattr(request.app.state, "settings", None)
    if settings is not None:
        return settings
    provider = request.app.dependency_overrides.get(get_settings, get_settings)
    return provider()


def _page(name: str) -> Response:
    return FileResponse(CONSOLE / name, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def _file_under(root: Path, relative: str) -> Path | None:
    """`relative` inside `root`, or None (never a path outside it, never an unknown type)."""
    try:
        path = (root / relative).resolve()
        path.relative_to(root.resolve())
    except (ValueError, OSError):
        return None
    if not path.is_file() or path.suffix not in ASSETS:
        return None
    return path


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"detail": what}, status_code=404)


async def dispatch_page(request: Request) -> Response:
    return _page("dispatch.html")


async def unit_page(request: Request) -> Response:
    return _page("unit.html")


async def track_page(request: Request) -> Response:
    return _page("track.html")


async def to_console(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


async def static_asset(request: Request) -> Response:
    path = _file_under(CONSOLE, request.path_params["name"])
    if path is None or path.parent != CONSOLE.resolve():
        return _not_found("Berkas konsol tidak ditemukan")
    return FileResponse(path, media_type=ASSETS[path.suffix], headers=NO_CACHE)


async def leaflet_asset(request: Request) -> Response:
    if not LEAFLET.is_dir():
        return _not_found("Pustaka peta (Leaflet) belum terpasang: jalankan ./spkt.sh up, yang memasangnya dengan npm")
    path = _file_under(LEAFLET, request.path_params["path"])
    if path is None:
        return _not_found("Berkas pustaka peta tidak ditemukan")
    return FileResponse(path, media_type=ASSETS[path.suffix], headers={"Cache-Control": "public, max-age=86400"})


@lru_cache(maxsize=8)
def _read_json(path: str, mtime: float) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_file(path: Path | None) -> dict | None:
    if path is None or not Path(path).is_file():
        return None
    return _read_json(str(path), Path(path).stat().st_mtime)


def map_config(settings: Settings) -> dict:
    """What the pages need: the tile server (or none), the city's bounds and stations, the
    boundaries, whether the map library is installed, and the vocabulary."""
    city = _json_file(settings.city) or {}
    stations = [{key: s.get(key) for key in ("station_id", "name", "level", "parent", "lat", "lon")}
                for s in city.get("stations", [])]
    polda = city.get("polda")
    return {
        "tile_url": settings.map_tile_url or None,
        "city": {"name": city.get("city"), "bounds": city.get("bounds"),
                 "polda": {key: polda.get(key) for key in ("station_id", "name", "lat", "lon")} if polda else None,
                 "stations": stations},
        "boundaries": _json_file(settings.boundaries_file),
        "leaflet": LEAFLET.is_dir(),
        "vocabulary": VOCABULARY,
    }


# The words the services already use, so that the pages say the same as the events and the API.
VOCABULARY = {
    "unit_status": lifecycle.STATUS_WORDS,
    "availability": lifecycle.PRIMARY,
    "transitions": {status: list(to) for status, to in lifecycle.TRANSITIONS.items()},
    "tptkp": list(tkp_rules.TPTKP_STEPS),
    "olah_tkp": list(tkp_rules.OLAH_TKP_STEPS),
    "steps": tkp_rules.STEP_WORDS,
    "dispositions": tkp_rules.DISPOSITION_WORDS,
}


async def config(request: Request) -> Response:
    return JSONResponse(map_config(_settings(request)), headers=NO_CACHE)


router.add_route("/console", to_console, methods=["GET"], include_in_schema=False)
router.add_route("/console/", dispatch_page, methods=["GET"], include_in_schema=False)
router.add_route("/console/unit", unit_page, methods=["GET"], include_in_schema=False)
router.add_route("/console/config.json", config, methods=["GET"], include_in_schema=False)
router.add_route("/console/static/{name}", static_asset, methods=["GET"], include_in_schema=False)
router.add_route("/console/vendor/leaflet/{path:path}", leaflet_asset, methods=["GET"], include_in_schema=False)
router.add_route("/lacak/{tracking_code}", track_page, methods=["GET"], include_in_schema=False)
router.add_route("/lacak", track_page, methods=["GET"], include_in_schema=False)
