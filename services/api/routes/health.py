"""Operations: liveness, readiness, metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready: the broker or the database does not answer",
                                        "content": {"application/json": {}}}})
async def readyz(request: Request) -> JSONResponse:
    """The broker and the database both answer."""
    broker = await request.app.state.publisher.is_ready()
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
        database = True
    except Exception:
        database = False
    ready = broker and database
    body = {"status": "ready" if ready else "not_ready", "broker": broker, "database": database}
    return JSONResponse(body, status_code=200 if ready else 503, headers={} if ready else {"Retry-After": "2"})


@router.get("/metrics", response_class=Response,
            responses={200: {"description": "Prometheus text format", "content": {CONTENT_TYPE_LATEST: {}}}})
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
