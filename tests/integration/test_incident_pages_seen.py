"""A console's `?seen=` read of an incident page, on a real SQLite read model: answered ahead of the
route (services/api/pages.py) with the same `X-Read-Model` the route gives; anything else in the
query, and any database but SQLite, still goes to the route."""
import asyncio
import json
from types import SimpleNamespace

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from schemas.registry import make_event
from services.api.auth import Role, mint
from services.api.pages import IncidentPages, PageKeeper
from services.projection.projector import Projector
from services.projection.tables import dispose, prepare
from spkt.settings import Settings

from .test_read_model import _opened

PAGE = b'{"page": "built"}'


class Route:
    """Stands in for FastAPI behind the pages: says it was asked, answers 299."""

    def __init__(self) -> None:
        self.asked: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        self.asked.append(scope["query_string"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def read(pages: IncidentPages, app, incident_id: str, query: bytes, token: str) -> tuple[int, dict, bytes]:
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": f"/api/v1/incidents/{incident_id}", "query_string": query,
             "headers": [(b"authorization", f"Bearer {token}".encode())], "app": app}
    asyncio.run(pages(scope, receive, send))
    start, body = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body.get("body", b"")


def test_seen_is_answered_ahead_of_the_route_with_whether_the_page_includes_the_event(tmp_path, report):
    settings = Settings(state_dir=tmp_path, jwt_secret="k" * 40)
    sessions = prepare(f"sqlite:///{tmp_path / 'spkt.db'}")
    try:
        opened = make_event(_opened(report), source="/test")
        Projector(sessions).apply(opened, _opened(report), topic="x", partition=0, offset=1)
        incident_id = opened.subject
        route = Route()
        pages = IncidentPages(route, build=lambda session, _id: PAGE)
        app = SimpleNamespace(state=SimpleNamespace(settings=settings, sessions=sessions,
                                                    incident_pages=PageKeeper(100, 30.0)))
        token = mint(settings, sub="d", role=Role.dispatcher)

        status, headers, body = read(pages, app, incident_id, f"seen={opened.id}".encode(), token)
        assert (status, headers["x-read-model"], body) == (200, "includes", PAGE)
        status, headers, body = read(pages, app, incident_id, b"seen=not-applied-yet", token)
        assert (status, headers["x-read-model"], body) == (200, "behind", PAGE)
        status, headers, _ = read(pages, app, incident_id, b"", token)
        assert status == 200 and "x-read-model" not in headers
        assert json.loads(body) == {"page": "built"} and route.asked == []

        # The route answers the rest, as before: its 422s and 400s, and parameters it knows of.
        for query in (b"seen=" + b"x" * 201, b"seen=", b"seen=a&seen=b", b"seen=a&fields=all", b"seen=a%00b"):
            assert read(pages, app, incident_id, query, token)[0] == 299
        assert route.asked == [b"seen=" + b"x" * 201, b"seen=", b"seen=a&seen=b", b"seen=a&fields=all",
                               b"seen=a%00b"]
    finally:
        dispose(sessions)


def test_on_any_database_but_sqlite_the_route_answers_seen(tmp_path):
    settings = Settings(state_dir=tmp_path, jwt_secret="k" * 40)
    elsewhere = sessionmaker(create_engine("postgresql+psycopg://spkt@127.0.0.1:1/spkt"))  # never connected to
    route = Route()
    app = SimpleNamespace(state=SimpleNamespace(settings=settings, sessions=elsewhere,
                                                incident_pages=PageKeeper(100, 30.0)))
    status, _, _ = read(IncidentPages(route, build=None), app, "i-1", b"seen=e-1",
                        mint(settings, sub="d", role=Role.dispatcher))
    assert status == 299 and route.asked == [b"seen=e-1"]
