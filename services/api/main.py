"""The FastAPI application: `create_app()` is what `spkt run api` serves."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.projection.tables import dispose, prepare_for_api
from spkt.settings import Settings, get_settings

from .limits import RateLimiter
from .metrics import REQUEST_SECONDS
from .models import ErrorOut
from .pages import IncidentPages, PageKeeper
from .publisher import Publisher
from .routes import assignments, board, duties, health, incidents, notifications, reports, scene, track, units
from .routes import console
from .routes import stream
from .live import LiveHub
from .validation import no_nul_in_parameters, server_error_handler, validation_error_handler

ROUTERS = (health.router, reports.router, incidents.router, incidents.escalations_router, units.router,
           assignments.router, scene.router, duties.router, notifications.router,
           board.router, track.router, console.router, stream.router)


# Errors any operation of a kind can answer, documented on each (API.md, Errors), so a client and a
# schema-driven test (Schemathesis) know every status an operation may answer, and that its body is
# {"detail": ...}.
TOKEN_ERRORS = {"401": "No token, or not a valid one", "403": "The token's role or jurisdiction does not allow it"}
BODY_ERRORS = {"400": "The body could not be read (not UTF-8 JSON)",
               "413": "The body is larger than the limit (SPKT_MAX_BODY_BYTES)"}
WRITE_ERRORS = {"503": "Broker unavailable; nothing was recorded (see Retry-After)"}


def documented_openapi(app: FastAPI) -> dict:
    """FastAPI's OpenAPI document, with the errors every operation of a kind can answer added and
    each error response given the {"detail": ...} body it has."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = FastAPI.openapi(app)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorOut"] = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for operations in doc["paths"].values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            common = {**(TOKEN_ERRORS if operation.get("security") else {}),
                      **(BODY_ERRORS if "requestBody" in operation else {}),
                      **(WRITE_ERRORS if method == "post" else {})}
            for code, description in common.items():
                responses.setdefault(code, {"description": description})
            for code, response in responses.items():
                # 422 keeps FastAPI's schema of the per-field list (validation.py answers in that shape).
                if code[0] in "45" and code != "422" and not response.get("content"):
                    response["content"] = error_body
    app.openapi_schema = doc
    return doc


class LimitBodyAndTime:
    """413 for a declared body over the limit; every request's time until its answer starts (a
    live stream's whole life is not its handling time) in REQUEST_SECONDS.

    Plain ASGI, not @app.middleware("http"): Starlette's BaseHTTPMiddleware runs each request in a
    task of its own behind memory streams, which cost more than the middleware's work."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            refusal = JSONResponse({"detail": f"Isi permintaan melebihi batas {self.max_body_bytes} byte"},
                                   status_code=413)
            await refusal(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = scope.get("route")
                REQUEST_SECONDS.labels(scope["method"], getattr(route, "path", "unmatched"),
                                       str(message["status"])).observe(time.perf_counter() - started)
            await send(message)

        await self.app(scope, receive, timed)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.signing_key()  # a missing production secret stops the start, not the first request
        app.state.sessions = prepare_for_api(settings.db_url)
        app.state.publisher = Publisher(settings)
        await app.state.publisher.start()
        # The live stream's reader retries in the background: a broker that is away does not stop the API.
        app.state.live = LiveHub(settings, sessions=app.state.sessions)
        await app.state.live.start()
        try:
            yield
        finally:
            await app.state.live.stop()
            await app.state.publisher.stop()
            dispose(app.state.sessions)

    app = FastAPI(title="SPKT Dispatch API", version="1", lifespan=lifespan,
                  description="Laporan, kejadian, unit dan TKP. Lihat shared/design/API.md.",
                  dependencies=[Depends(no_nul_in_parameters)])
    app.state.settings = settings  # what auth.app_settings hands every route
    app.state.caller_limiter = RateLimiter(settings.caller_limit_per_minute)
    app.state.token_limiter = RateLimiter(settings.token_limit_per_minute)
    app.state.public_limiter = RateLimiter(settings.public_limit_per_minute)
    app.state.incident_pages = PageKeeper(settings.incident_pages_kept, settings.incident_page_max_age_s)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, server_error_handler)

    # The last added runs first: the time of a page answered by IncidentPages is measured too.
    app.add_middleware(IncidentPages, build=incidents.incident_page)
    app.add_middleware(LimitBodyAndTime, max_body_bytes=settings.max_body_bytes)

    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: documented_openapi(app)
    return app
