"""What notify delivered, and what it gave up on (its dead letters), for the supervisor."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from services.projection import tables as t
from services.projection.projector import as_aware

from ..deps import SessionDep, Supervisor

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


class NotificationOut(BaseModel):
    notification_id: str
    incident_id: str | None
    template: str
    recipient_kind: str
    recipient: str
    channel: str | None
    state: str
    attempts: int
    reason: str | None
    at: str


@router.get("", response_model=list[NotificationOut])
def list_notifications(principal: Supervisor, session: SessionDep, state: Literal["sent", "failed"] | None = None,
                       incident_id: str | None = None, limit: int = 100) -> list[NotificationOut]:
    """Newest first; `state=failed` lists the notifications that could not be delivered, with why."""
    query = select(t.NotificationRow).order_by(t.NotificationRow.at.desc()).limit(max(1, min(limit, 500)))
    if state:
        query = query.filter_by(state=state)
    if incident_id:
        query = query.filter_by(incident_id=incident_id)
    return [NotificationOut(notification_id=n.notification_id, incident_id=n.incident_id, template=n.template,
                            recipient_kind=n.recipient_kind, recipient=n.recipient, channel=n.channel, state=n.state,
                            attempts=n.attempts, reason=n.reason, at=as_aware(n.at).isoformat())
            for n in session.scalars(query).all()]
