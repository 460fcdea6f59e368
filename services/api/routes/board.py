"""The board: what the command center's wall shows at a glance."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from fastapi import APIRouter

from schemas.envelope import utcnow
from services.projection import tables as t
from services.projection.projector import as_aware

from ..deps import BoardReader, SessionDep, SettingsDep
from ..models import BoardOut, BreachOut
from ..scope import visible_to
from .incidents import ENDED, placed_within
from .units import unit_out, units_in_scope

router = APIRouter(prefix="/api/v1/board", tags=["board"])

CLASS_OF = {"available": "available", "conditionally_available": "conditional", "not_available": "not_available"}


@router.get("", response_model=BoardOut)
def get_board(principal: BoardReader, session: SessionDep, settings: SettingsDep) -> BoardOut:
    """Open incidents by status and priority, units by status and availability, and the time
    targets breached on incidents still open, within the token's jurisdiction."""
    now = utcnow()
    incidents = select(t.Incident).where(t.Incident.status.not_in(ENDED))
    allowed = visible_to(principal, settings)
    if allowed is not None:
        incidents = incidents.where(placed_within(allowed))
    open_ = session.scalars(incidents).all()
    units = [unit_out(u, now, settings.position_max_age_s)
             for u in session.scalars(units_in_scope(principal, settings).order_by(t.Unit.callsign))]
    by_status: dict[str, list] = {}
    for u in units:
        by_status.setdefault(u.status, []).append(u)
    numbers = {i.incident_id: i for i in open_}
    breaches = session.scalars(select(t.Escalation).where(t.Escalation.incident_id.in_(list(numbers)),
                                                          t.Escalation.why.like("target:%"))
                               .order_by(t.Escalation.escalated_at)).all() if numbers else []
    return BoardOut(
        at=now,
        incidents={"by_status": dict(Counter(i.status for i in open_)),
                   "by_priority": dict(Counter(i.priority for i in open_))},
        units={"by_status": {k: len(v) for k, v in by_status.items()},
               "by_class": dict(Counter(CLASS_OF.get(u.availability, u.availability) for u in units))},
        units_by_status=by_status,
        breached=[BreachOut(incident_id=b.incident_id, number=numbers[b.incident_id].number,
                            priority=numbers[b.incident_id].priority, timer=b.why.removeprefix("target:"),
                            detail=b.detail, breached_at=as_aware(b.escalated_at)) for b in breaches])
