"""Thin agents: decode, ask the domain, publish."""
from __future__ import annotations

import logging

from schemas.envelope import Envelope
from schemas.events import EventData, ReportReceived
from services.streaming import Origin, Outgoing, handle_each

from . import domain
from .app import SERVICE, app, reports

log = logging.getLogger(__name__)


def on_report(envelope: Envelope, event: EventData, origin: Origin) -> list[Outgoing]:
    if isinstance(event, ReportReceived) and (note := domain.receipt(envelope.id, event)):
        # Delivery over SMS/WhatsApp/email arrives with the notify issue; until then it is planned and logged.
        log.info("receipt planned: %s", note.template,
                 extra={"report_id": event.report_id, "event_id": note.notification_id})
    return []


@app.agent(reports, concurrency=1)
async def notify_reports(stream):
    await handle_each(app, SERVICE, stream, on_report)
