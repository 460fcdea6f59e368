"""The console routes: pages, assets, the map library from npm, the map's configuration."""
import json
import re
import warnings

import pytest
from fastapi import FastAPI

from services.api.routes import console
from spkt.settings import Settings, get_settings


def client(settings: Settings):
    with warnings.catch_warnings():  # starlette's note that it prefers httpx2 to httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    app = FastAPI()
    app.include_router(console.router)
    app.dependency_overrides[get_settings] = lambda: settings
    return TestClient(app)


@pytest.fixture
def settings(tmp_path):
    return Settings(jwt_secret="x" * 40, state_dir=tmp_path)


@pytest.mark.parametrize("path, page", [("/console/", "dispatch.html"), ("/console/unit", "unit.html"),
                                        ("/lacak/SPKT-ABCD-EFGH", "track.html")])
def test_the_pages_are_served_and_every_asset_they_name_is_there(settings, path, page):
    c = client(settings)
    r = c.get(path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<html lang="id">' in r.text and r.text == (console.CONSOLE / page).read_text()
    for asset in re.findall(r'(?:src|href)="(/console/[^"]+)"', r.text):
        if console.LEAFLET.is_dir() or "/vendor/" not in asset:
            assert c.get(asset).status_code == 200, asset


def test_the_map_configuration_comes_from_the_settings(settings, tmp_path):
    boundaries = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"station_id": "polsek-gambir"},
         "geometry": {"type": "Polygon", "coordinates": [[[106.81, -6.17], [106.83, -6.17], [106.83, -6.18], [106.81, -6.17]]]}}]}
    (tmp_path / "b.geojson").write_text(json.dumps(boundaries))
    plain = client(settings).get("/console/config.json").json()
    assert plain["tile_url"] is None and plain["boundaries"] is None
    assert plain["city"]["bounds"]["south"] < plain["city"]["bounds"]["north"]
    stations = {s["station_id"]: s for s in plain["city"]["stations"]}
    assert stations["polsek-gambir"]["parent"] == "polres-jakpus" and stations["polres-jakpus"]["level"] == "polres"
    assert "office" not in stations["polres-jakpus"]  # only what the map draws
    assert plain["vocabulary"]["unit_status"]["en_route"] == "dalam perjalanan"
    assert "on_scene" in plain["vocabulary"]["transitions"]["en_route"]
    assert plain["vocabulary"]["tptkp"][0] == "arrival_reported"

    tiled = settings.model_copy(update={"map_tile_url": "https://tiles.example/{z}/{x}/{y}.png",
                                        "boundaries_file": tmp_path / "b.geojson"})
    body = client(tiled).get("/console/config.json").json()
    assert body["tile_url"] == "https://tiles.example/{z}/{x}/{y}.png" and body["boundaries"] == boundaries


def test_without_node_modules_the_pages_load_and_the_map_library_says_how_to_get_it(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(console, "LEAFLET", tmp_path / "node_modules" / "leaflet" / "dist")
    c = client(settings)
    assert c.get("/console/").status_code == 200
    missing = c.get("/console/vendor/leaflet/leaflet.js")
    assert missing.status_code == 404 and "./spkt.sh up" in missing.json()["detail"]
    assert c.get("/console/config.json").json()["leaflet"] is False


def test_nothing_outside_the_console_folders_is_served(settings):
    c = client(settings)
    for path in ("/console/static/..%2F..%2Fauth.py", "/console/static/package.json", "/console/static/nope.js",
                 "/console/vendor/leaflet/..%2F..%2F..%2Fpackage.json", "/console/vendor/leaflet/../package.json"):
        assert c.get(path).status_code == 404, path
    assert c.get("/console", follow_redirects=False).headers["location"] == "/console/"


def test_the_console_routes_stay_out_of_the_openapi_document():
    from services.api.main import create_app

    doc = create_app(Settings(jwt_secret="x" * 40)).openapi()
    assert not [p for p in doc["paths"] if p.startswith(("/console", "/lacak"))]
