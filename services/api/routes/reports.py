"""Reports in (intake's front door) and their status."""
from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import ReportReceived
from schemas.registry import make_event
from services.projection import tables as t
from services.projection.projector import as_aware

from ..deps import IncidentReader, PublisherDep, ReportWriter, SessionDep
from ..metrics import REPORTS_ACCEPTED
from ..models import ReportAccepted, ReportIn, ReportOut
from ..publisher import BrokerUnavailable

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

# No 0/O, 1/I/L: a tracking code is read out over the phone.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def tracking_code(report_id: str) -> str:
    n = uuid.UUID(report_id).int
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(_ALPHABET))
        chars.append(_ALPHABET[r])
    return "SPKT-" + "".join(chars[:4]) + "-" + "".join(chars[4:])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ReportAccepted,
             responses={503: {"description": "Broker unavailable; nothing was recorded"}})
async def submit_report(
    body: ReportIn, principal: ReportWriter, publisher: PublisherDep, session: SessionDep, response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
):
    """Record a report. Answers 202 only after the broker has acknowledged it."""
    request_hash = hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    stored_key = f"{principal.sub}:{idempotency_key}" if idempotency_key else None
    if stored_key:
        earlier = session.get(t.IdempotentRequest, stored_key)
        if earlier is not None:
            if earlier.request_hash != request_hash:
                raise HTTPException(status.HTTP_409_CONFLICT,
                                    "Idempotency-Key ini sudah dipakai untuk laporan yang berbeda")
            return JSONResponse(earlier.response, status_code=earlier.status_code,
                                headers={"Location": f"/api/v1/reports/{earlier.response['report_id']}"})
        # The same key always names the same report and event, even if two requests race.
        report_id = derived_id("report", stored_key)
    else:
        report_id = str(uuid.uuid4())
    code = tracking_code(report_id)
    received = ReportReceived(report_id=report_id, tracking_code=code, received_at=utcnow(),
                              received_by=principal.sub, **body.model_dump())
    envelope = make_event(received, source="/spkt/api", event_id=derived_id("report.received", report_id))
    try:
        await publisher.publish(topics.REPORTS, envelope)
    except BrokerUnavailable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "Sistem antrean sedang tidak tersedia; laporan belum tercatat, silakan ulangi",
                            headers={"Retry-After": "5"}) from None
    REPORTS_ACCEPTED.labels(channel=body.channel).inc()
    accepted = ReportAccepted(report_id=report_id, tracking_code=code)
    if stored_key:
        session.add(t.IdempotentRequest(key=stored_key, request_hash=request_hash, status_code=202,
                                        response=accepted.model_dump(), created_at=utcnow()))
        try:
            session.commit()
        except IntegrityError:  # a concurrent repeat stored it first: same report, same answer
            session.rollback()
    response.headers["Location"] = f"/api/v1/reports/{report_id}"
    return accepted


@router.get("/{report_id}", response_model=ReportOut, responses={404: {"description": "Unknown report"}})
def get_report(report_id: str, principal: IncidentReader, session: SessionDep) -> ReportOut:
    report = session.get(t.Report, report_id)
    if report is None or (principal.role.value == "field_unit" and report.received_by != principal.sub):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "Laporan tidak ditemukan (laporan yang baru dikirim bisa perlu beberapa detik)")
    link = session.get(t.IncidentReport, report_id)
    return ReportOut(report_id=report.report_id, status="triaged" if link else "received",
                     incident_id=link.incident_id if link else None, merged=bool(link and link.merged),
                     tracking_code=report.tracking_code, channel=report.channel, description=report.description,
                     category=report.category, location=report.location, received_at=as_aware(report.received_at),
                     assistance_request=report.assistance_request)
