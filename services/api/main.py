"""The FastAPI application: `create_app()` is what `spkt run api` serves."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.projection.tables import prepare
from spkt.settings import Settings, get_settings

from .limits import RateLimiter
from .metrics import REQUEST_SECONDS
from .models import ErrorOut
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.signing_key()  # a missing production secret stops the start, not the first request
        app.state.sessions = prepare(settings.db_url)
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
            app.state.sessions.kw["bind"].dispose()

    app = FastAPI(title="SPKT Dispatch API", version="1", lifespan=lifespan,
                  description="Laporan, kejadian, unit dan TKP. Lihat shared/design/API.md.",
                  dependencies=[Depends(no_nul_in_parameters)])
    app.dependency_overrides[get_settings] = lambda: settings
    app.state.caller_limiter = RateLimiter(settings.caller_limit_per_minute)
    app.state.token_limiter = RateLimiter(settings.token_limit_per_minute)
    app.state.public_limiter = RateLimiter(settings.public_limit_per_minute)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(Exception, server_error_handler)

    @app.middleware("http")
    async def limit_body_and_time(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse({"detail": f"Isi permintaan melebihi batas {settings.max_body_bytes} byte"},
                                status_code=413)
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        REQUEST_SECONDS.labels(request.method, getattr(route, "path", "unmatched"),
                               str(response.status_code)).observe(time.perf_counter() - started)
        return response

    for router in ROUTERS:
        app.include_router(router)
    app.openapi = lambda: documented_openapi(app)
    return app
