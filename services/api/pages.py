"""Incident pages (`GET /api/v1/incidents/{id}`), kept while the projection has not changed them.

Consoles ask for an open incident's page again and again, and building one is a dozen reads and
a check of two hash chains. The projection gives an incident a new `revision` whenever it changes
anything the page shows (services/projection/projector.py), so a page built under revision r is
still the page while the incident's revision is r. A kept page is built again after
SPKT_INCIDENT_PAGE_MAX_AGE_S all the same, so that its chains are verified again: an edit made
behind the system's back shows on the page by then.

`IncidentPages` answers such reads in plain ASGI, ahead of FastAPI's routing and dependencies,
whose own machinery cost several times a whole bare Starlette answer (benchmarks/api.py): the
token (verified once, then cached by auth.verify), one read of the incident's revision and
jurisdiction, and the kept bytes. Everything else goes on to the route, which answers as always:
no token or a bad one, a field unit (its assignment must be checked), an unknown incident, one
outside the token's jurisdiction, a query string other than `seen`.

`?seen=<event id>` is how a console waits for the read model to catch up with the live stream
(it asks again every 300 ms while the page is `behind`). On SQLite it is answered here too: one
more primary-key read, of the projection's record of applied events, made before the revision's
as the route makes it. Elsewhere the route answers it.

On SQLite that one read is made on the event loop, with a connection of its own: a primary-key
read takes ~30 µs there and, the database being in WAL mode, never waits for the projection's
writes, while a trip through the thread pool and SQLAlchemy's connection handling cost ~0.5 ms
on this machine. PostgreSQL is a network round trip away, so there it is made in the thread pool.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl
from types import SimpleNamespace
from typing import get_args

from anyio import to_thread
from sqlalchemy import bindparam, select
from starlette.types import ASGIApp, Receive, Scope, Send

from services.projection import tables as t

from .auth import Role, verify
from .deps import IncidentReader
from .metrics import INCIDENT_PAGES
from .scope import in_scope, stations_within

PATH = "/api/v1/incidents/"
_STAMP = (select(t.Incident.revision, t.Incident.jurisdiction)
          .where(t.Incident.incident_id == bindparam("incident_id")))
_STAMP_SQL = "SELECT revision, jurisdiction FROM incidents WHERE incident_id = ?"
_PROCESSED_SQL = "SELECT 1 FROM processed_events WHERE event_id = ?"
# `?seen=`: the longest id the route takes (a longer one is its 422), and the header answering it.
SEEN_MAX = 200
SEEN_HEADER = "X-Read-Model"
_SEEN_HEADER = SEEN_HEADER.lower().encode()
_JSON = (b"content-type", b"application/json")
_ROUTE = SimpleNamespace(path=PATH + "{incident_id}")  # what the request-time metric labels it by
# The route's readers, less field units (their assignment is checked there): a role the route
# refuses is refused there too.
_READERS = get_args(IncidentReader)[1].dependency.allowed_roles - {Role.field_unit}


class PageKeeper:
    """The latest page built for each incident, under the revision it was built at; the least
    recently built go first beyond `kept`. Used from the thread pool: a lock guards changes."""

    def __init__(self, kept: int, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.max_age_s, self._clock = kept, max_age_s, clock
        self._pages: dict[str, tuple[str, float, bytes]] = {}
        self._lock = threading.Lock()

    def kept(self, incident_id: str, revision: str | None) -> bytes | None:
        """The page kept for this revision, if it is not too old."""
        kept = self._pages.get(incident_id)
        if kept is not None and revision is not None and kept[0] == revision and \
                self._clock() - kept[1] < self.max_age_s:
            INCIDENT_PAGES.labels("kept").inc()
            return kept[2]
        return None

    def page(self, incident_id: str, revision: str | None, build: Callable[[], bytes]) -> bytes:
        """The page kept for this revision, else `build()`, kept when the incident has a revision.

        `revision` must be read before `build` runs: a change landing in between is then on the
        page (or not) under the older revision, and the next read, seeing the newer, builds again."""
        kept = self.kept(incident_id, revision)
        if kept is not None:
            return kept
        now = self._clock()
        body = build()
        INCIDENT_PAGES.labels("built").inc()
        if revision is not None and self.limit:
            with self._lock:
                self._pages.pop(incident_id, None)
                while len(self._pages) >= self.limit:
                    del self._pages[next(iter(self._pages))]
                self._pages[incident_id] = (revision, now, body)
        return body

    def __len__(self) -> int:
        return len(self._pages)


def _seen_alone(query: bytes) -> str | None | bool:
    """The `seen` of a query string that has nothing else (None when it has nothing at all);
    False for anything the route must answer (other parameters, a repeat, an empty, over-long or
    NUL-bearing value: its 422 or 400)."""
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return False
    if not pairs:
        return None
    if len(pairs) != 1 or pairs[0][0] != "seen" or not 0 < len(pairs[0][1]) <= SEEN_MAX or "\x00" in pairs[0][1]:
        return False
    return pairs[0][1]


class IncidentPages:
    """Plain-ASGI answers to `GET /api/v1/incidents/{id}` for the tokens that need no more than a
    jurisdiction check (module docstring); the rest, and every other request, go on to `app`."""

    def __init__(self, app: ASGIApp, build: Callable) -> None:
        self.app = app
        self.build = build  # (session, incident_id) -> the page's bytes: the route's own builder
        self._stations: dict[str, frozenset[str]] = {}
        self._sqlite: sqlite3.Connection | None | bool = False  # False: not looked at yet; None: not SQLite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(PATH):
            await self.app(scope, receive, send)
            return
        seen = _seen_alone(scope["query_string"]) if scope["query_string"] else None
        incident_id = scope["path"][len(PATH):]
        app = scope["app"]
        stations = self._stations_of(app.state.settings, scope["headers"])
        if seen is False or not incident_id or "/" in incident_id or "\x00" in incident_id or stations is False:
            await self.app(scope, receive, send)
            return
        headers = [_JSON]
        if seen is not None:
            # Asked before the revision is read, as the route asks: an event recorded by then is
            # on the page that revision names.
            included = self._here(app.state.sessions, _PROCESSED_SQL, seen)
            if included is None:  # not SQLite: the route answers
                await self.app(scope, receive, send)
                return
            headers.append((_SEEN_HEADER, b"includes" if included else b"behind"))
        keeper = app.state.incident_pages
        stamp = self._here(app.state.sessions, _STAMP_SQL, incident_id)
        if stamp is not None and (not stamp or not in_scope(stations, stamp[1])):
            await self.app(scope, receive, send)  # 404 or 403
            return
        body = keeper.kept(incident_id, stamp[0]) if stamp else None
        if body is None:
            body = await to_thread.run_sync(self._page, app.state.sessions, keeper, incident_id, stations)
        if body is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _stations_of(self, settings, headers) -> frozenset[str] | None | bool:
        """The stations a valid bearer token may see (None: all); False when the route must answer
        (no token or a bad one: 401; a field unit: its assignment is checked there)."""
        value = next((v for k, v in headers if k == b"authorization"), None)
        if value is None:
            return False
        scheme, _, token = value.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            principal = verify(settings, token.strip())
        except ValueError:
            return False
        if principal.role not in _READERS:
            return False
        if not principal.jurisdiction:
            return None
        stations = self._stations.get(principal.jurisdiction)
        if stations is None:
            stations = self._stations[principal.jurisdiction] = stations_within(settings, principal.jurisdiction)
        return stations

    def _here(self, sessions, sql: str, key: str) -> tuple | None:
        """On SQLite, the first row of `sql` for `key` read on the event loop (the incident's
        revision and jurisdiction, or a 1 for an applied event), () for none; None elsewhere, or
        when the read fails (the thread pool's path then reads it)."""
        if self._sqlite is False:
            engine = sessions.kw["bind"]
            path = engine.url.database
            self._sqlite = (sqlite3.connect(path, check_same_thread=False, timeout=0.05)
                            if engine.dialect.name == "sqlite" and path not in (None, "", ":memory:") else None)
        if self._sqlite is None:
            return None
        try:
            # fetchall: a statement left unfinished would hold a read snapshot open
            rows = self._sqlite.execute(sql, (key,)).fetchall()
        except sqlite3.Error:
            return None
        return tuple(rows[0]) if rows else ()

    def _page(self, sessions, keeper: PageKeeper, incident_id: str, stations) -> bytes | None:
        with sessions() as session:
            stamp = session.connection().execute(_STAMP, {"incident_id": incident_id}).first()
            if stamp is None or not in_scope(stations, stamp.jurisdiction):
                return None  # the route answers 404 or 403
            return keeper.page(incident_id, stamp.revision, lambda: self.build(session, incident_id))
