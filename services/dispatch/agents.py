"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

from datetime import timedelta

from schemas import topics
from schemas.envelope import Envelope, derived_id, utcnow
from schemas.events import EventData, IncidentOpened
from schemas.registry import caused_by, make_event
from services.streaming import Origin, Outgoing, handle_each

from . import board_feed, domain
from .app import SERVICE, app, board, board_caught_up, incidents, settings


@app.task
async def follow_unit_board() -> None:
    await board_feed.follow(settings, board, board_caught_up)


async def on_incident(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    if not isinstance(event, IncidentOpened):
        return []
    # Recommending from a half-loaded board would miss units: wait for the catch-up once.
    await board_caught_up.wait()
    recommendation = domain.recommend(event, board, utcnow(), max_candidates=settings.recommend_candidates,
                                      position_max_age=timedelta(seconds=settings.position_max_age_s))
    recommended = make_event(recommendation, source=f"/spkt/{SERVICE}",
                             event_id=derived_id("dispatch.recommended", envelope.id), **caused_by(envelope))
    return [Outgoing(topics.ASSIGNMENTS, recommended)]


@app.agent(incidents, concurrency=1)
async def dispatch_incidents(stream):
    await handle_each(app, SERVICE, stream, on_incident)
