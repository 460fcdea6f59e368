"""The FastAPI application: `create_app()` is what `spkt run api` serves."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.projection.tables import prepare
from spkt.settings import Settings, get_settings

from .limits import RateLimiter
from .metrics import REQUEST_SECONDS
from .publisher import Publisher
from .routes import assignments, board, duties, health, incidents, notifications, reports, scene, track, units
from .routes import console
from .routes import stream
from .live import LiveHub
from .validation import validation_error_handler

ROUTERS = (health.router, reports.router, incidents.router, incidents.escalations_router, units.router,
           assignments.router, scene.router, duties.router, notifications.router,
           board.router, track.router, console.router, stream.router)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
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
                  description="Laporan, kejadian, unit dan TKP. Lihat shared/design/API.md.")
    app.dependency_overrides[get_settings] = lambda: settings
    app.state.caller_limiter = RateLimiter(settings.caller_limit_per_minute)
    app.state.token_limiter = RateLimiter(settings.token_limit_per_minute)
    app.state.public_limiter = RateLimiter(settings.public_limit_per_minute)
    app.add_exception_handler(RequestValidationError, validation_error_handler)

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
    return app
