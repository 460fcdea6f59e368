"""The live flow: `GET /api/v1/stream`, Server-Sent Events, one per domain event (API.md: Live flow)."""
from __future__ import annotations

from typing import Annotated, AsyncIterator

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse

from ..deps import BoardReader, SettingsDep
from ..live import RETRY_MS, LiveHub, StreamFilter, parse_types
from ..scope import requested

router = APIRouter(prefix="/api/v1", tags=["live"])
NOT_READY = "Siaran langsung belum siap; coba lagi sebentar lagi"

_EXAMPLE = (
    "retry: 2000\n\n"
    "id: spkt.incidents:1:42\n"
    "event: incident.opened\n"
    'data: {"specversion":"1.0","id":"…","source":"/spkt/intake","type":"incident.opened",'
    '"time":"2026-11-27T21:00:04+00:00","subject":"…","data":{"incident_id":"…","jurisdiction":"polsek-kebayoran-baru"}}\n\n'
    ": keepalive\n\n"
    "event: reset\n"
    'data: {"reason": "Last-Event-ID tidak dikenal …"}\n\n'
)

DESCRIPTION = f"""Every domain event as it happens, as Server-Sent Events (`text/event-stream`).

Each message: `id:` (`<topic>:<partition>:<offset>`, the same after an API restart), `event:` (the
CloudEvents type, e.g. `incident.opened`) and `data:` (the CloudEvents envelope exactly as on Kafka,
one line). `retry: {RETRY_MS}` opens the stream; `: keepalive` comments keep idle connections open.

- `types`: comma-separated CloudEvents types (e.g. `incident.opened,unit.position-reported`); omitted = all.
- `jurisdiction`: a station code; that station and every station under it. A token with a
  jurisdiction sees only its own (and a `jurisdiction` outside it is 403); events that cannot be
  placed in a jurisdiction go only to tokens without one.
- Resume: send `Last-Event-ID` (or `last_event_id` in the query). What came after it is replayed
  first; when it is too old (or unknown) an `event: reset` message says so: reload by REST.
- GPS positions are thinned per client (`SPKT_LIVE_POSITIONS_PER_UNIT_PER_S`), always ending on each
  unit's latest. A client that reads too slowly is disconnected; it reconnects and resumes.
"""


def _bad_types(message: str) -> RequestValidationError:
    # The same 422 shape as every other input error (services/api/validation.py).
    return RequestValidationError([{"loc": ("query", "types"), "msg": message, "type": "value_error"}])


@router.get(
    "/stream", summary="Siaran langsung peristiwa (Server-Sent Events)", description=DESCRIPTION,
    response_class=StreamingResponse,
    responses={
        200: {"description": "The event stream", "content": {"text/event-stream": {"example": _EXAMPLE}}},
        401: {"description": "Missing or bad token"},
        403: {"description": "Role not allowed, or `jurisdiction` outside the token's"},
        422: {"description": "Unknown event type in `types`"},
        503: {"description": NOT_READY},
    })
async def stream(request: Request, principal: BoardReader, settings: SettingsDep,
                 jurisdiction: Annotated[str | None, Query(max_length=64, description="Station code")] = None,
                 types: Annotated[str | None, Query(max_length=4000, description="Comma-separated event types")] = None,
                 last_event_id: Annotated[str | None, Query(max_length=200, description="For clients that cannot "
                                                                                        "send Last-Event-ID")] = None,
                 last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", max_length=200)] = None,
                 ) -> StreamingResponse:
    try:
        wanted = parse_types(types)
    except ValueError as exc:
        raise _bad_types(str(exc)) from None
    stations = requested(principal, settings, jurisdiction)
    hub: LiveHub | None = getattr(request.app.state, "live", None)
    if hub is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_READY, headers={"Retry-After": "2"})
    flt = StreamFilter(types=wanted, stations=stations)
    resume = last_event_id_header or last_event_id
    name = f"{principal.sub}@{request.client.host if request.client else '?'}"

    async def body() -> AsyncIterator[bytes]:
        # Subscribed here, not before: a response never started then leaves nothing behind.
        sub = hub.subscribe(flt, resume, name=name)
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            async for chunk in sub.frames(settings.live_heartbeat_s):
                yield chunk
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

