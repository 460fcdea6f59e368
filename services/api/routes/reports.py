"""Reports in (intake's front doors: consoles, patrols, SMS/WhatsApp gateways) and their status."""
from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from schemas import topics
from schemas.envelope import derived_id, utcnow
from schemas.events import Location, Reporter, ReportReceived
from schemas.registry import make_event
from services.intake.categories import CATEGORIES
from services.intake.domain import UNLOCATED
from services.intake.setup import area_of
from services.projection import tables as t
from services.projection.projector import as_aware

from .. import commands
from ..auth import Role
from ..deps import AnyRole, IncidentReader, PublisherDep, ReportWriter, SessionDep, SettingsDep
from ..metrics import REPORTS_ACCEPTED
from ..models import CategoryOut, InboundMessage, ReportAccepted, ReportIn, ReportOut
from ..publisher import BrokerUnavailable

router = APIRouter(tags=["reports"])

# No 0/O, 1/I/L: a tracking code is read out over the phone. 8 characters of 31: 2^39 codes.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
FALSE_REPORTS_TO_WARN = 2


def tracking_code(report_id: str) -> str:
    """Derived from the (random) report id: unguessable, and the same on every retry."""
    n = int.from_bytes(hashlib.sha256(report_id.encode()).digest()[:8], "big")
    chars = []
    for _ in range(8):
        n, r = divmod(n, len(_ALPHABET))
        chars.append(_ALPHABET[r])
    return "SPKT-" + "".join(chars[:4]) + "-" + "".join(chars[4:])


def rate_limit(request: Request, key: str, limiter_name: str) -> None:
    retry_after = getattr(request.app.state, limiter_name).hit(key)
    if retry_after is not None:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"Terlalu banyak permintaan dari sumber yang sama; coba lagi dalam {retry_after:.0f} detik",
                            headers={"Retry-After": str(max(1, round(retry_after)))})


def _caller_warning(session, phone: str | None) -> str | None:
    """Earlier false reports from this number: the call taker is told, the caller is not blocked."""
    if not phone:
        return None
    count = session.scalar(
        select(func.count()).select_from(t.Report)
        .join(t.IncidentReport, t.IncidentReport.report_id == t.Report.report_id)
        .join(t.Incident, t.Incident.incident_id == t.IncidentReport.incident_id)
        .where(t.Report.reporter_phone == phone, t.Incident.disposition == "false_report"))
    if count >= FALSE_REPORTS_TO_WARN:
        return (f"Nomor ini tercatat {count} kali membuat laporan palsu/iseng. "
                "Tetap tangani bila ada keadaan darurat.")
    return None


def _look_up(session, stored_key: str | None, request_body: dict, phone: str | None):
    """(the earlier answer to this key or None, the caller's warning); in the thread pool."""
    try:
        earlier = commands.earlier_answer(session, stored_key, request_body)
        return earlier, (None if earlier is not None else _caller_warning(session, phone))
    finally:
        session.rollback()  # no connection held while the broker is waited for


async def _accept(session, publisher, *, report_fields: dict, key_scope: str,
                  idempotency_key: str | None, request_body: dict, area: str) -> JSONResponse:
    """Publish a report.received and answer 202 once the broker has it; a repeated key gets the first answer.

    The database work runs in the thread pool: on the event loop, a read waiting for SQLite (the
    projection writing) held up every other request, and at 50 reports a second the API fell
    behind by minutes (benchmarks/pipeline.py)."""
    stored_key = f"{key_scope}:{idempotency_key}" if idempotency_key else None
    earlier, warning = await run_in_threadpool(_look_up, session, stored_key, request_body,
                                               report_fields["reporter"].phone)
    if earlier is not None:
        return earlier
    if stored_key:
        # The same key always names the same report and event, even if two requests race.
        report_id = derived_id("report", stored_key)
    else:
        report_id = str(uuid.uuid4())
    code = tracking_code(report_id)
    received = ReportReceived(report_id=report_id, tracking_code=code, received_at=utcnow(), area=area,
                              caller_warning=warning, **report_fields)
    envelope = make_event(received, source="/spkt/api", event_id=derived_id("report.received", report_id))
    try:
        await publisher.publish(topics.REPORTS, envelope, key=area)
    except BrokerUnavailable:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "Sistem antrean sedang tidak tersedia; laporan belum tercatat, silakan ulangi",
                            headers={"Retry-After": "5"}) from None
    REPORTS_ACCEPTED.labels(channel=received.channel).inc()
    accepted = ReportAccepted(report_id=report_id, tracking_code=code, caller_warning=warning)
    body = accepted.model_dump(exclude_none=True)
    return await run_in_threadpool(commands.remember_answer, session, stored_key, request_body, 202, body,
                                   f"/api/v1/reports/{report_id}")


@router.post("/api/v1/reports", status_code=status.HTTP_202_ACCEPTED, response_model=ReportAccepted,
             responses={409: {"description": "Idempotency-Key reused for another report"},
                        429: {"description": "Rate limited"},
                        503: {"description": "Broker unavailable; nothing was recorded"}})
async def submit_report(
    request: Request, body: ReportIn, principal: ReportWriter, publisher: PublisherDep, session: SessionDep,
    settings: SettingsDep, idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
):
    """Record a report from a console or a patrol. Answers 202 only after the broker has it."""
    rate_limit(request, f"token:{principal.sub}", "token_limiter")
    if body.reporter.phone:
        rate_limit(request, f"caller:{body.reporter.phone}", "caller_limiter")
    fallback = principal.jurisdiction
    area = area_of(settings, body.location, fallback=fallback)
    if body.lp_model and area == UNLOCATED:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            [{"loc": ["body", "lp_model"], "field": "lp_model", "type": "value_error",
                              "msg": "lp_model: LP memerlukan lokasi yang dikenali atau yurisdiksi petugas pada token"}])
    fields = body.model_dump(exclude={"reporter"})
    fields["reporter"] = body.reporter.as_reporter()
    fields["received_by"] = principal.sub
    return await _accept(session, publisher, report_fields=fields, key_scope=principal.sub,
                         idempotency_key=idempotency_key, request_body=body.model_dump(mode="json"), area=area)


@router.post("/api/v1/inbound/messages", status_code=status.HTTP_202_ACCEPTED, response_model=ReportAccepted,
             responses={401: {"description": "Missing or bad signature; nothing was recorded"},
                        429: {"description": "Rate limited"}, 503: {"description": "Broker unavailable"}})
async def inbound_message(
    request: Request, publisher: PublisherDep, session: SessionDep, settings: SettingsDep,
    x_gateway: Annotated[str, Header(description="The gateway's id, as configured")],
    x_signature: Annotated[str, Header(description="sha256=<hex HMAC-SHA256 of the raw body>")],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
):
    """A message from an SMS/WhatsApp gateway, signed with that gateway's secret."""
    raw = await request.body()
    secret = settings.gateway_secrets.get(x_gateway)
    expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest() if secret else None
    if expected is None or not hmac.compare_digest(expected, x_signature.strip()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Tanda tangan gateway tidak sah")
    try:
        message = InboundMessage.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    rate_limit(request, f"caller:{message.sender}", "caller_limiter")
    location = Location(lat=message.lat, lon=message.lon)
    area = area_of(settings, location)
    fields = {"channel": message.channel, "reporter": Reporter(phone=message.sender), "description": message.text,
              "location": location, "occurred_at": message.received_at, "gateway": x_gateway,
              "received_by": f"gateway:{x_gateway}"}
    return await _accept(session, publisher, report_fields=fields, key_scope=f"gateway:{x_gateway}",
                         idempotency_key=idempotency_key, request_body=json.loads(raw), area=area)


@router.get("/api/v1/reports/{report_id}", response_model=ReportOut,
            responses={404: {"description": "Unknown report"}})
def get_report(report_id: str, principal: IncidentReader, session: SessionDep) -> ReportOut:
    report = session.get(t.Report, report_id)
    if report is None or (principal.role is Role.field_unit and report.received_by != principal.sub):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            "Laporan tidak ditemukan (laporan yang baru dikirim bisa perlu beberapa detik)")
    link = session.get(t.IncidentReport, report_id)
    return ReportOut(report_id=report.report_id, status="triaged" if link else "received",
                     incident_id=link.incident_id if link else None, merged=bool(link and link.merged),
                     tracking_code=report.tracking_code, channel=report.channel, description=report.description,
                     category=report.category, location=report.location, received_at=as_aware(report.received_at),
                     assistance_request=report.assistance_request, lp_number=report.lp_number,
                     match=link.match if link else None, caller_warning=report.caller_warning)


@router.get("/api/v1/categories", response_model=list[CategoryOut], tags=["reports"])
def list_categories(principal: AnyRole) -> list[CategoryOut]:
    """The incident categories: default priority, response plan, time targets, duplicate rules."""
    return [CategoryOut.of(c) for c in CATEGORIES]

