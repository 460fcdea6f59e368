"""Applies events to the read model. Each event once: its id is recorded in the same transaction.

An event that changes a row the read model does not hold yet (its incident, unit or report) waits
in `waiting_events`, as it can on a catch-up or a rebuild, and is applied with that row (`_PARTS`).

Each event gives the incidents whose page it changes a new `revision`, in its transaction: the API
answers a page it built while the revision stands (services/api/pages.py).

GPS positions are the exception: they are many (thousands a second), and applying one twice is
harmless (a position only replaces an older one), so they are not recorded one by one. They are
coalesced per unit in memory and written together (`flush_positions`, every half second and every
POSITION_BATCH units): a console needs a unit's latest fix, not each one. One lost on a crash is
replaced by the unit's next fix seconds later.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Sequence

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from schemas.envelope import Envelope, utcnow
from schemas.events import (
    AssignmentAcknowledged, AssignmentDeclined, AssignmentEnded, AssignmentUnacknowledged, AssistanceDecided, IncidentMarkedShareable,
    AssistanceEscalated, CommandRejected, DispatchRecommended, EventData, IncidentClosed, IncidentMerged,
    IncidentOpened, IncidentRelocated, IncidentSplit, LpRegistered, RecommendationRequested, ReportAttached,
    ReportReceived, TargetBreached, UnitArrived, UnitAssigned, UnitPositionReported, UnitRegistered, UnitSignedIn, UnitSignedOut,
    UnitStatusChanged, CustodyTransferred, DutyAssigned, DutyCheckedIn, DutyCheckInMissed, DutyCompleted,
    EvidenceCorrected, EvidenceRegistered, IncidentReopened, LegalClockStarted, LegalDeadlineOverdue,
    LetterSent, NotificationFailed, NotificationSent, SceneStatusChanged, SceneStepRecorded, SttlpIssued,
)
from schemas.registry import parse
from services.tkp import chain
from services.tkp.domain import STEP_WORDS
from services.dispatch.lifecycle import words as status_words

from . import tables as t

log = logging.getLogger(__name__)


# How far an assignment has come: a late event of an earlier stage never moves it back.
ASSIGNMENT_STAGE = {"assigned": 0, "acknowledged": 1, "en_route": 2, "on_scene": 3,
                    "declined": 4, "cancelled": 4, "cleared": 4}


POSITION_BATCH = 500
UNKNOWN_UNITS_HELD = 10_000  # units with a fix but no registration yet, whose latest fix is held

_units = t.Unit.__table__
# A unit's newest fix; one older than the stored one changes nothing.
_MOVE_UNIT = (update(_units).where(_units.c.unit_id == bindparam("b_unit"))
              .where(or_(_units.c.position_at.is_(None), _units.c.position_at <= bindparam("b_at")))
              .values(lat=bindparam("b_lat"), lon=bindparam("b_lon"), position_at=bindparam("b_at")))


_TIMELINE_ADD = insert(t.TimelineEntry.__table__)
_links = t.IncidentReport.__table__
_LINK_HELD = select(_links.c.incident_id, _links.c.linked_at).where(_links.c.report_id == bindparam("report_id"))
_LINK_ADD = insert(_links)
_LAST_LINK = (select(t.TimelineEntry.seq, t.TimelineEntry.hash)
              .where(t.TimelineEntry.incident_id == bindparam("incident_id"))
              .order_by(t.TimelineEntry.seq.desc()).limit(1))
# Topics are read in no fixed order: on a catch-up or a rebuild an event can come before the row
# it changes (a closure before its incident's opening, a unit's status before its registration, an
# LP before its report), and applied then its UPDATE would change nothing: the event would be lost.
# So such an event is applied in parts, each needing one row; a part whose row is not there yet
# waits, with the parts after it (waiting_events, the event recorded as processed), and is applied
# in the transaction that writes the row, in the order the events happened. The parts before it
# apply at once: a unit's status is on the board (and answers its command) before its incident's
# "en route" time and timeline line are written.
_ROW_KEY = {"incident": "incident_id", "unit": "unit_id", "report": "report_id"}  # the event field naming it
# By event type: its parts in order, (the method applying it, the kind of row it needs).
_PARTS = {kind: ((f"_{kind.__name__}", "incident"),) for kind in (
    IncidentClosed, SceneStatusChanged, IncidentMerged, IncidentMarkedShareable, AssistanceDecided,
    IncidentRelocated, IncidentReopened, UnitAssigned, UnitArrived, ReportAttached, DispatchRecommended)}
_PARTS |= {
    UnitStatusChanged: (("_unit_status", "unit"), ("_unit_status_at_incident", "incident")),
    UnitSignedIn: (("_UnitSignedIn", "unit"),),
    UnitSignedOut: (("_UnitSignedOut", "unit"),),
    LpRegistered: (("_LpRegistered", "report"),),
}
# The events that write the rows others wait for, and the kind of row.
_WRITES_ROW = {IncidentOpened: "incident", UnitRegistered: "unit", ReportReceived: "report"}
_KNOWN = {"incident": select(t.Incident.incident_id).where(t.Incident.incident_id == bindparam("key")),
          "unit": select(t.Unit.unit_id).where(t.Unit.unit_id == bindparam("key")),
          "report": select(t.Report.report_id).where(t.Report.report_id == bindparam("key"))}
_WAITING = (select(t.WaitingEvent.envelope, t.WaitingEvent.part)
            .where(t.WaitingEvent.waits_for == bindparam("waits_for"))
            .order_by(t.WaitingEvent.at, t.WaitingEvent.event_id))
_MERGED_INTO = select(t.Incident.merged_into).where(t.Incident.incident_id == bindparam("incident_id"))
# The fields by which an event names the incidents it is about: their pages are changed by it.
_INCIDENT_FIELDS = ("incident_id", "into", "new_incident_id")
_incidents = t.Incident.__table__
# Core on the session's connection, one incident at a time (executemany when more): through the
# ORM's update machinery, with an IN list, this one statement cost about 0.7 ms an event.
_REVISE = (update(_incidents).where(_incidents.c.incident_id == bindparam("b_incident"))
           .values(revision=bindparam("b_revision")))
_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}  # dialects with ON CONFLICT
_UPSERTS: dict = {}


def _page_changed(s: Session, *incident_ids: str | None) -> None:
    """These incidents' pages change in this transaction (`apply` gives them a new revision)."""
    s.info.setdefault("pages", set()).update(i for i in incident_ids if i)


def _pages_of(s: Session, event: EventData) -> None:
    _page_changed(s, *(getattr(event, name, None) for name in _INCIDENT_FIELDS))


def _upsert(s: Session, model, **values) -> None:
    """Insert the row, or set these columns of the row already there: what `Session.merge` did
    with a look-up and the ORM's flush, in one statement (INSERT ... ON CONFLICT DO UPDATE)."""
    dialect = s.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    if insert is None:
        s.merge(model(**values))
        return
    key = (dialect, model, tuple(values))
    statement = _UPSERTS.get(key)
    if statement is None:
        table = model.__table__
        keys = [c.name for c in table.primary_key.columns]
        statement = insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in values})
        changed = {name: statement.excluded[name] for name in values if name not in keys}
        statement = (statement.on_conflict_do_update(index_elements=keys, set_=changed) if changed
                     else statement.on_conflict_do_nothing(index_elements=keys))
        _UPSERTS[key] = statement
    s.connection().execute(statement, values)


_processed = t.ProcessedEvent.__table__
# One statement that records the event and says whether it was new: a look-up, then an insert
# through the ORM's flush, cost about a millisecond an event more.
_RECORD_PROCESSED = {dialect: insert(_processed).on_conflict_do_nothing(index_elements=["event_id"])
                     .returning(_processed.c.event_id) for dialect, insert in _INSERTS.items()}


def _record_processed(session: Session, envelope: Envelope, topic: str, partition: int, offset: int) -> bool:
    """Record the event as applied in this transaction; False when it was recorded before."""
    row = {"event_id": envelope.id, "event_type": envelope.type, "topic": topic, "partition": partition,
           "offset": offset, "processed_at": utcnow()}
    statement = _RECORD_PROCESSED.get(session.get_bind().dialect.name)
    if statement is not None:
        return session.connection().execute(statement, row).first() is not None  # nothing back: seen before
    if session.get(t.ProcessedEvent, envelope.id) is not None:
        return False
    session.add(t.ProcessedEvent(**row))
    session.flush()
    return True


KNOWN_CHUNK = 1024


def _registered(s: Session, unit_ids: list[str]) -> set[str]:
    """Those of `unit_ids` registered, asked in IN lists of a few lengths only (powers of two up to
    KNOWN_CHUNK, padded with a repeat): SQLite keeps each distinct statement prepared, and a list of
    every length a flush met (up to 10,000 units) held ~75 MB in the projection (benchmarks/memory.py)."""
    known: set[str] = set()
    for start in range(0, len(unit_ids), KNOWN_CHUNK):
        chunk = unit_ids[start:start + KNOWN_CHUNK]
        chunk += chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
        known.update(s.scalars(select(t.Unit.unit_id).where(t.Unit.unit_id.in_(chunk))))
    return known


class Projector:
    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self._positions: dict[str, tuple[float, float, datetime]] = {}
        self._carried = 0  # of those, the fixes of unregistered units a flush kept (not new since)

    def apply(self, envelope: Envelope, event: EventData, *, topic: str = "", partition: int = -1,
              offset: int = -1) -> bool:
        """True when applied, False when it was seen before (or is not for the read model)."""
        if isinstance(event, UnitPositionReported):
            return self._hold_position(event)
        with self.sessions.begin() as session:
            return self._apply_in(session, envelope, event, topic, partition, offset)

    def apply_together(self, items: Sequence[tuple[Envelope, EventData, str, int, int]]) -> list[bool]:
        """(envelope, event, topic, partition, offset) in one transaction, all or none: a third
        cheaper an event than a transaction each (batches.py). GPS fixes are held as by `apply`."""
        with self.sessions.begin() as session:
            applied = [None if isinstance(event, UnitPositionReported)
                       else self._apply_in(session, envelope, event, topic, partition, offset)
                       for envelope, event, topic, partition, offset in items]
        # After the commit: holding a fix may flush the held fixes, in a transaction of its own.
        return [self._hold_position(item[1]) if done is None else done for item, done in zip(items, applied)]

    def _apply_in(self, session: Session, envelope: Envelope, event: EventData, topic: str, partition: int,
                  offset: int) -> bool:
        if not _record_processed(session, envelope, topic, partition, offset):
            return False
        if type(event) in _PARTS:
            self._apply_parts(session, envelope, event, 0)
        else:
            handler = getattr(self, "_" + type(event).__name__, None)
            if handler is None:
                return False
            handler(session, envelope, event)
        kind = _WRITES_ROW.get(type(event))
        if kind is not None:
            self._release(session, kind, getattr(event, _ROW_KEY[kind]))
        _pages_of(session, event)
        changed = session.info.pop("pages")
        if changed:
            revision = uuid.uuid4().hex
            session.connection().execute(_REVISE, [{"b_incident": incident_id, "b_revision": revision}
                                                   for incident_id in sorted(changed)])
        return True

    def _apply_parts(self, s: Session, envelope: Envelope, event: EventData, first: int) -> None:
        """The event's parts from `first` on, up to the first whose row is not there yet: it waits."""
        parts = _PARTS[type(event)]
        for i in range(first, len(parts)):
            method, kind = parts[i]
            key = getattr(event, _ROW_KEY[kind])
            if key is not None and s.execute(_KNOWN[kind], {"key": key}).first() is None:
                _upsert(s, t.WaitingEvent, event_id=envelope.id, waits_for=f"{kind}:{key}", part=i,
                        at=envelope.time, envelope=envelope.model_dump_json())
                return
            getattr(self, method)(s, envelope, event)

    def _release(self, s: Session, kind: str, key: str) -> None:
        """What waited for this row: applied now, in the order it happened (a part may wait on)."""
        waits_for = f"{kind}:{key}"
        # On the connection, without the ORM's autoflush: waiting events are only ever written in
        # SQL (`_upsert`), and this runs for every report, incident and unit written.
        rows = s.connection().execute(_WAITING, {"waits_for": waits_for}).all()
        if not rows:
            return
        s.execute(delete(t.WaitingEvent).where(t.WaitingEvent.waits_for == waits_for))
        for row in rows:
            envelope, event = parse(row.envelope)
            self._apply_parts(s, envelope, event, row.part)
            _pages_of(s, event)

    # --- one method per event type, named after it ------------------------------------------
    def _ReportReceived(self, s: Session, env: Envelope, e: ReportReceived) -> None:
        _upsert(s, t.Report, report_id=e.report_id, tracking_code=e.tracking_code, channel=e.channel,
                description=e.description, category=e.category,
                reporter=e.reporter.model_dump(mode="json", exclude_none=True),
                location=e.location.model_dump(mode="json", exclude_none=True),
                received_at=e.received_at, received_by=e.received_by,
                assistance_request=e.assistance_request, reporter_phone=e.reporter.phone,
                caller_warning=e.caller_warning)

    def _IncidentOpened(self, s: Session, env: Envelope, e: IncidentOpened) -> None:
        _upsert(s, t.Incident, incident_id=e.incident_id, number=e.number, status="received", category=e.category,
                priority=e.priority, summary=e.summary,
                location=e.location.model_dump(mode="json", exclude_none=True),
                jurisdiction=e.jurisdiction, opened_at=e.opened_at, updated_at=env.time,
                polres=e.polres, location_verified=e.location_verified, location_note=e.location_note,
                category_confidence=e.category_confidence,
                category_low_confidence=e.category_low_confidence, sensitive=e.sensitive,
                assistance_request=e.assistance_request, response_plan=e.response_plan,
                targets={k: v.isoformat() for k, v in e.targets.items()})
        for report_id in e.report_ids:
            self._link(s, report_id, e.incident_id, env.time, merged=False)
        _upsert(s, t.IncidentIntervals, incident_id=e.incident_id, jurisdiction=e.polres or e.jurisdiction,
                received_at=e.opened_at)
        notes = []
        if e.category_low_confidence:
            notes.append("kategori perlu dikonfirmasi")
        if not e.location_verified:
            notes.append(e.location_note or "lokasi belum terverifikasi")
        self._timeline(s, env, e.incident_id, env.source,
                       f"Kejadian {e.number} dibuka ({e.category}, {e.priority})"
                       + (f"; {'; '.join(notes)}" if notes else ""))

    def _ReportAttached(self, s: Session, env: Envelope, e: ReportAttached) -> None:
        # Attached to an incident since merged (the merge read first): the reporter follows it to
        # the incident that remains, as the merge moved the reporters it found.
        into, merged = e.incident_id, False
        for _ in range(16):  # a merge chain's length; a cycle cannot occur, a bound costs nothing
            onward = s.scalar(_MERGED_INTO, {"incident_id": into})
            if onward is None:
                break
            into, merged = onward, True
        self._link(s, e.report_id, into, env.time, match=e.match.model_dump(mode="json"), merged=merged)
        self._timeline(s, env, e.incident_id, env.source,
                       f"Laporan tambahan digabungkan (skor {e.match.total:.2f}: {', '.join(e.match.reasons)})")

    def _IncidentMerged(self, s: Session, env: Envelope, e: IncidentMerged) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(status="duplicate", merged_into=e.into, disposition="duplicate", updated_at=env.time))
        # Every reporter of the merged incident stays attached, now to the one that remains.
        s.execute(update(t.IncidentReport).where(t.IncidentReport.incident_id == e.incident_id)
                  .values(incident_id=e.into, merged=True))
        self._timeline(s, env, e.incident_id, e.merged_by, f"Digabung ke kejadian {e.into}: {e.reason or '-'}")
        self._timeline(s, env, e.into, e.merged_by, f"Kejadian {e.incident_id} digabungkan ke sini",
                       entry_id=env.id + "/into")

    @staticmethod
    def _link(s: Session, report_id: str, incident_id: str, at: datetime, **values) -> None:
        """The report's incident as of `at`: an opening, attachment or split older than the link
        held changes nothing (a split read before the new incident's opening, or before the
        report's own, must not be undone by it)."""
        # In SQL, not through the ORM: its look-up and flush were a fifth of the projection's work.
        # Nothing loads an IncidentReport as an object here, so no session holds one gone stale.
        c = s.connection()
        row = c.execute(_LINK_HELD, {"report_id": report_id}).first()
        if row is None:
            c.execute(_LINK_ADD, {"merged": False, "match": None, **values, "report_id": report_id,
                                  "incident_id": incident_id, "linked_at": at})
            _page_changed(s, incident_id)
        elif as_aware(row.linked_at) <= at:
            _page_changed(s, row.incident_id, incident_id)  # the report leaves one page for the other
            c.execute(update(_links).where(_links.c.report_id == report_id)
                      .values(incident_id=incident_id, linked_at=at, **values))

    def _IncidentSplit(self, s: Session, env: Envelope, e: IncidentSplit) -> None:
        self._link(s, e.report_id, e.new_incident_id, env.time, merged=False, match=None)
        self._timeline(s, env, e.incident_id, e.split_by,
                       f"Laporan {e.report_id} dipisah menjadi kejadian baru: {e.reason or '-'}")

    def _LpRegistered(self, s: Session, env: Envelope, e: LpRegistered) -> None:
        s.execute(update(t.Report).where(t.Report.report_id == e.report_id).values(lp_number=e.lp_number))
        link = s.connection().execute(_LINK_HELD, {"report_id": e.report_id}).first()
        if link is not None:
            s.execute(update(t.Incident).where(t.Incident.incident_id == link.incident_id)
                      .values(lp_number=e.lp_number))
            self._timeline(s, env, link.incident_id, env.source, f"LP terdaftar: {e.lp_number}")

    def _TargetBreached(self, s: Session, env: Envelope, e: TargetBreached) -> None:
        _upsert(s, t.Escalation, event_id=env.id, incident_id=e.incident_id, why=f"target:{e.target}",
                detail=f"Target {e.target} terlewati (batas {e.due_at:%H:%M:%S} UTC)",
                escalated_at=e.breached_at)
        self._timeline(s, env, e.incident_id, env.source, f"Target waktu terlewati: {e.target}")

    def _IncidentMarkedShareable(self, s: Session, env: Envelope, e: IncidentMarkedShareable) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id).values(
            shareable=True, updated_at=env.time))
        self._timeline(s, env, e.incident_id, e.marked_by, "Perkembangan boleh ditampilkan di pelacak publik")

    def _AssistanceDecided(self, s: Session, env: Envelope, e: AssistanceDecided) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id).values(
            decision={"decision": e.decision, "reason": e.reason, "decided_by": e.decided_by,
                      "decided_at": e.decided_at.isoformat()}, updated_at=env.time))
        words = {"accept": "diterima", "decline": "ditolak", "refer": "dirujuk"}[e.decision]
        self._timeline(s, env, e.incident_id, e.decided_by,
                       f"Permintaan pendampingan {words}" + (f": {e.reason}" if e.reason else ""))

    def _AssistanceEscalated(self, s: Session, env: Envelope, e: AssistanceEscalated) -> None:
        _upsert(s, t.Escalation, event_id=env.id, incident_id=e.incident_id, why=e.why, detail=e.detail,
                escalated_at=e.escalated_at)
        self._timeline(s, env, e.incident_id, env.source, f"Diteruskan ke atasan: {e.detail}")

    def _DispatchRecommended(self, s: Session, env: Envelope, e: DispatchRecommended) -> None:
        _upsert(s, t.Recommendation, incident_id=e.incident_id, event_id=env.id,
                candidates=[c.model_dump(mode="json") for c in e.candidates],
                excluded=[x.model_dump(mode="json") for x in e.excluded],
                recommended_at=e.recommended_at, excluded_counts=e.excluded_counts,
                shortfalls=e.shortfalls, trigger=e.trigger)
        if e.candidates:
            best = e.candidates[0]
            summary = f"Rekomendasi: {best.callsign} ({', '.join(best.reasons[1:])})"
        else:
            summary = "Rekomendasi: tidak ada unit yang memenuhi"
        if e.shortfalls:
            summary += "; kurang: " + "; ".join(e.shortfalls)
        self._timeline(s, env, e.incident_id, env.source, summary)

    def _RecommendationRequested(self, s: Session, env: Envelope, e: RecommendationRequested) -> None:
        what = f"Unit {e.unit_id} meminta bantuan (backup)" if e.backup else "Rekomendasi baru diminta"
        self._timeline(s, env, e.incident_id, e.requested_by, what + (f": {e.reason}" if e.reason else ""))

    def _IncidentRelocated(self, s: Session, env: Envelope, e: IncidentRelocated) -> None:
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .values(location=e.location.model_dump(mode="json", exclude_none=True), updated_at=env.time))
        self._timeline(s, env, e.incident_id, e.relocated_by,
                       "Lokasi kejadian dikoreksi" + (f": {e.reason}" if e.reason else ""))

    def _UnitRegistered(self, s: Session, env: Envelope, e: UnitRegistered) -> None:
        unit = s.get(t.Unit, e.unit_id)
        if unit is None:
            unit = t.Unit(unit_id=e.unit_id, status="available", status_version=0, status_since=e.registered_at)
            s.add(unit)
        unit.callsign, unit.kind, unit.station = e.callsign, e.kind, e.station
        unit.capabilities, unit.updated_at = list(e.capabilities), env.time
        unit.shift_start_h, unit.shift_end_h, unit.jurisdiction = e.shift_start_h, e.shift_end_h, e.jurisdiction
        held = self._positions.get(e.unit_id)  # a fix read before the registration (see flush_positions)
        if held is not None and (unit.position_at is None or as_aware(unit.position_at) <= held[2]):
            unit.lat, unit.lon, unit.position_at = held

    def _UnitSignedIn(self, s: Session, env: Envelope, e: UnitSignedIn) -> None:
        s.execute(update(t.Unit).where(t.Unit.unit_id == e.unit_id).values(signed_in=True, signed_in_at=e.at,
                                                                           updated_at=env.time))

    def _UnitSignedOut(self, s: Session, env: Envelope, e: UnitSignedOut) -> None:
        s.execute(update(t.Unit).where(t.Unit.unit_id == e.unit_id).values(signed_in=False, signed_in_at=e.at,
                                                                           updated_at=env.time))

    # A unit's status change is applied in parts (_PARTS): `_unit_status`, `_unit_status_at_incident`.
    def _unit_status(self, s: Session, env: Envelope, e: UnitStatusChanged) -> None:
        query = update(t.Unit).where(t.Unit.unit_id == e.unit_id)
        values = dict(status=e.status, incident_id=e.incident_id, updated_at=env.time, status_since=e.changed_at)
        if e.status_version is not None:  # dispatch's order: an older one never overwrites a newer one
            query = query.where(t.Unit.status_version < e.status_version)
            values["status_version"] = e.status_version
        s.execute(query.values(**values))
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"unit_id": e.unit_id, "status": e.status,
                                                  "previous_status": e.previous_status,
                                                  "incident_id": e.incident_id}, e.changed_at)

    def _unit_status_at_incident(self, s: Session, env: Envelope, e: UnitStatusChanged) -> None:
        if e.incident_id and e.status == "en_route":
            self._first(s, e.incident_id, "en_route_at", e.changed_at)
            if e.assignment_id:
                self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "en_route", en_route_at=e.changed_at)
        if e.incident_id and e.status not in ("dispatched",):
            self._timeline(s, env, e.incident_id, e.changed_by or env.source,
                           f"Unit {e.unit_id}: {status_words(e.status)}")

    def _UnitAssigned(self, s: Session, env: Envelope, e: UnitAssigned) -> None:
        self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "assigned", assigned_by=e.assigned_by,
                         assigned_at=e.assigned_at, callsign=e.callsign, automatic=e.automatic, warning=e.warning,
                         override_reason=e.override_reason)
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .where(t.Incident.status == "received").values(status="assigned", updated_at=env.time))
        self._first(s, e.incident_id, "dispatched_at", e.assigned_at)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"assignment_id": e.assignment_id, "unit_id": e.unit_id,
                                                  "incident_id": e.incident_id, "status": "dispatched"},
                          e.assigned_at)
        how = " otomatis" if e.automatic else ""
        extra = "".join(f"; {x}" for x in (e.warning, e.override_reason and f"alasan: {e.override_reason}") if x)
        self._timeline(s, env, e.incident_id, e.assigned_by, f"Unit {e.callsign or e.unit_id} ditugaskan{how}{extra}")

    def _AssignmentAcknowledged(self, s: Session, env: Envelope, e: AssignmentAcknowledged) -> None:
        self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "acknowledged",
                         acknowledged_at=e.acknowledged_at)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"assignment_id": e.assignment_id, "unit_id": e.unit_id,
                                                  "status": "acknowledged"}, e.acknowledged_at)
        self._timeline(s, env, e.incident_id, e.unit_id, f"Unit {e.unit_id} menerima penugasan")

    def _AssignmentDeclined(self, s: Session, env: Envelope, e: AssignmentDeclined) -> None:
        self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "declined", ended_at=e.declined_at,
                         end_reason=e.reason)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"assignment_id": e.assignment_id, "unit_id": e.unit_id,
                                                  "status": "declined"}, e.declined_at)
        self._timeline(s, env, e.incident_id, e.unit_id, f"Unit {e.unit_id} menolak penugasan: {e.reason}")

    def _AssignmentUnacknowledged(self, s: Session, env: Envelope, e: AssignmentUnacknowledged) -> None:
        _upsert(s, t.Escalation, event_id=env.id, incident_id=e.incident_id, why="assignment_unacknowledged",
                detail=f"Unit {e.unit_id} belum menjawab penugasan setelah {e.waited_s:.0f} detik",
                escalated_at=e.alerted_at)
        self._timeline(s, env, e.incident_id, env.source,
                       f"Peringatan: unit {e.unit_id} belum menjawab penugasan ({e.waited_s:.0f} detik)")

    def _UnitArrived(self, s: Session, env: Envelope, e: UnitArrived) -> None:
        if e.assignment_id:
            self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, "on_scene", arrived_at=e.arrived_at)
        self._first(s, e.incident_id, "on_scene_at", e.arrived_at)
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .where(t.Incident.status.in_(("received", "assigned"))).values(status="on_scene",
                                                                               updated_at=env.time))

    def _AssignmentEnded(self, s: Session, env: Envelope, e: AssignmentEnded) -> None:
        if e.assignment_id and e.why != "declined":
            self._assignment(s, e.assignment_id, e.incident_id, e.unit_id, e.why, ended_at=e.ended_at)

    def _CommandRejected(self, s: Session, env: Envelope, e: CommandRejected) -> None:
        self._outcome(s, env.type, e.command_id, False, {"command": e.command}, e.rejected_at, reason=e.reason)

    @staticmethod
    def _outcome(s: Session, part: str, command_id: str, accepted: bool, result: dict, at: datetime,
                 reason: str | None = None) -> None:
        """What a command led to, by the type of each event it led to: one command can lead to
        events on two topics (an assignment: unit.assigned and unit.status-changed), read in no
        fixed order, and the API waits for the one it answers with."""
        row = s.get(t.CommandOutcome, command_id)
        if row is None:
            s.add(t.CommandOutcome(command_id=command_id, accepted=accepted, reason=reason, result={part: result},
                                   at=at))
        elif part not in row.result:
            row.result = {**row.result, part: result}

    @staticmethod
    def _assignment(s: Session, assignment_id: str, incident_id: str, unit_id: str, status: str, **values) -> None:
        """Create or complete the assignment; its status only moves forward. Status changes and
        assignment events come on two topics, read in no fixed order."""
        _page_changed(s, incident_id)
        row = s.get(t.Assignment, assignment_id)
        if row is None:
            row = t.Assignment(assignment_id=assignment_id, incident_id=incident_id, unit_id=unit_id, status=status,
                               assigned_by=values.pop("assigned_by", "-"),
                               assigned_at=values.pop("assigned_at", None) or next(iter(values.values())))
            s.add(row)
        elif ASSIGNMENT_STAGE.get(status, 0) > ASSIGNMENT_STAGE.get(row.status, 0):
            row.status = status
        for name, value in values.items():
            setattr(row, name, value)

    @staticmethod
    def _first(s: Session, incident_id: str, column: str, at: datetime) -> None:
        """The first time a step happened for the incident; later ones leave it."""
        attr = getattr(t.IncidentIntervals, column)
        _page_changed(s, incident_id)
        s.execute(update(t.IncidentIntervals).where(t.IncidentIntervals.incident_id == incident_id)
                  .where(attr.is_(None)).values({column: at}))

    def _IncidentClosed(self, s: Session, env: Envelope, e: IncidentClosed) -> None:
        values = dict(status="closed", closed_at=e.closed_at, disposition=e.disposition, updated_at=env.time,
                      close_summary=e.summary or None, apco_code=e.apco_code)
        if e.lp_number:
            values["lp_number"] = e.lp_number
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id).values(**values))
        self._tkp_record(s, env, e.incident_id, e)
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"incident_id": e.incident_id, "disposition": e.disposition,
                                                  "lp_number": e.lp_number, "closed_at": e.closed_at.isoformat()},
                          e.closed_at)
        what = f"Kejadian ditutup: {e.disposition}" + (f", {e.lp_number}" if e.lp_number else "")
        self._timeline(s, env, e.incident_id, e.closed_by or env.source, what + (f" — {e.summary}" if e.summary else ""))

    # --- TKP -------------------------------------------------------------------------------------
    def _tkp_record(self, s: Session, env: Envelope, incident_id: str, e: EventData) -> None:
        """Keep the record as it came, with its link: chain_valid is computed from these on read."""
        prev_hash, record_hash = getattr(e, "prev_hash", None), getattr(e, "record_hash", None)
        if prev_hash and record_hash:
            _upsert(s, t.TkpRecord, record_id=env.id, incident_id=incident_id, type=env.type,
                    content=e.model_dump(mode="json", exclude={"prev_hash", "record_hash"}),
                    prev_hash=prev_hash, hash=record_hash)

    def _SceneStepRecorded(self, s: Session, env: Envelope, e: SceneStepRecorded) -> None:
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"incident_id": e.incident_id, "phase": e.phase,
                                                  "step": e.step, "recorded_at": e.recorded_at.isoformat(),
                                                  "out_of_order": e.out_of_order, "warning": e.warning},
                          e.recorded_at)
        if not e.record_hash:  # a repeat: answered, nothing new on record
            return
        _upsert(s, t.SceneStep, event_id=env.id, incident_id=e.incident_id, phase=e.phase, step=e.step,
                at=e.recorded_at, by=e.recorded_by, unit_id=e.unit_id, note=e.note,
                position=e.position.model_dump() if e.position else None,
                out_of_order=list(e.out_of_order), warning=e.warning)
        self._tkp_record(s, env, e.incident_id, e)
        phase = "TPTKP" if e.phase == "tptkp" else "Olah TKP"
        summary = f"{phase}: {STEP_WORDS.get(e.step, e.step)}" + (f" — {e.note}" if e.note else "")
        if e.warning:
            summary += f" ({e.warning})"
        self._timeline(s, env, e.incident_id, e.recorded_by, summary)

    def _SceneStatusChanged(self, s: Session, env: Envelope, e: SceneStatusChanged) -> None:
        # Closures come on another topic, read in no fixed order: the scene's own status always
        # follows, the incident's only while it is open.
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id).values(scene_status=e.status))
        s.execute(update(t.Incident).where(t.Incident.incident_id == e.incident_id)
                  .where(t.Incident.status.not_in(("closed", "duplicate")))
                  .values(status=e.status, updated_at=env.time))
        self._tkp_record(s, env, e.incident_id, e)
        self._timeline(s, env, e.incident_id, env.source, f"Status TKP: {SCENE_WORDS.get(e.status, e.status)}")

    def _EvidenceRegistered(self, s: Session, env: Envelope, e: EvidenceRegistered) -> None:
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"evidence_id": e.evidence_id, "incident_id": e.incident_id,
                                                  "seal_number": e.seal_number}, e.collected_at)
        if not e.record_hash:
            return
        _upsert(s, t.Evidence, evidence_id=e.evidence_id, incident_id=e.incident_id, description=e.description,
                kind=e.kind, seal_number=e.seal_number,
                found_at=e.found_at.model_dump() if e.found_at else None, found_where=e.found_where,
                media=list(e.media), collected_by=e.collected_by, collected_at=e.collected_at,
                holder=e.collected_by, corrections=[])
        if s.get(t.SealClaim, e.seal_number) is None:  # a rebuild has no API claims: the record is the claim
            s.add(t.SealClaim(seal_number=e.seal_number, evidence_id=e.evidence_id, incident_id=e.incident_id,
                              claimed_at=e.collected_at))
        self._tkp_record(s, env, e.incident_id, e)
        self._timeline(s, env, e.incident_id, e.collected_by,
                       f"Barang bukti {e.evidence_id} dicatat: {e.description} (segel {e.seal_number})")

    def _CustodyTransferred(self, s: Session, env: Envelope, e: CustodyTransferred) -> None:
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"evidence_id": e.evidence_id, "from": e.from_holder,
                                                  "to": e.to, "sequence": e.sequence, "at": e.at.isoformat()}, e.at)
        _upsert(s, t.CustodyRecord, event_id=env.id, evidence_id=e.evidence_id, incident_id=e.incident_id,
                sequence=e.sequence, from_holder=e.from_holder, to=e.to, reason=e.reason, by=e.by,
                at=e.at)
        s.execute(update(t.Evidence).where(t.Evidence.evidence_id == e.evidence_id).values(holder=e.to))
        self._tkp_record(s, env, e.incident_id, e)
        self._timeline(s, env, e.incident_id, e.by,
                       f"Serah terima barang bukti {e.evidence_id}: {e.from_holder} → {e.to} ({e.reason})")

    def _EvidenceCorrected(self, s: Session, env: Envelope, e: EvidenceCorrected) -> None:
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"evidence_id": e.evidence_id}, e.at)
        item = s.get(t.Evidence, e.evidence_id)
        if item is not None:  # the original stays in the chain; the view shows the corrected values
            item.corrections = [*item.corrections, {"event_id": env.id, "changes": e.changes, "reason": e.reason,
                                                    "by": e.by, "at": e.at.isoformat()}]
            for name, value in e.changes.items():
                if name in ("description", "kind", "found_where", "media"):
                    setattr(item, name, value)
        self._tkp_record(s, env, e.incident_id, e)
        self._timeline(s, env, e.incident_id, e.by, f"Koreksi barang bukti {e.evidence_id}: {e.reason}")

    def _IncidentReopened(self, s: Session, env: Envelope, e: IncidentReopened) -> None:
        incident = s.get(t.Incident, e.incident_id)
        if incident is not None:
            incident.status, incident.closed_at, incident.updated_at = "reopened", None, env.time
            incident.reopened = (incident.reopened or 0) + 1
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"incident_id": e.incident_id}, e.reopened_at)
        self._tkp_record(s, env, e.incident_id, e)
        self._timeline(s, env, e.incident_id, e.reopened_by, f"Kejadian dibuka kembali: {e.reason}")

    def _SttlpIssued(self, s: Session, env: Envelope, e: SttlpIssued) -> None:
        self._timeline(s, env, e.incident_id, env.source, f"STTLP diterbitkan untuk {e.lp_number}")

    def _LegalClockStarted(self, s: Session, env: Envelope, e: LegalClockStarted) -> None:
        for d in e.deadlines:
            _upsert(s, t.LegalDeadlineRow, incident_id=e.incident_id, key=d.key, kind=d.kind, code=d.code,
                    words=d.words, due_at=d.due_at, overdue_at=None)
        first = min(e.deadlines, key=lambda d: d.due_at, default=None)
        self._timeline(s, env, e.incident_id, env.source, "Perkara ke Reskrim; tenggat surat dimulai"
                       + (f" (pertama: {first.words}, {first.due_at:%d-%m-%Y})" if first else ""))

    def _LetterSent(self, s: Session, env: Envelope, e: LetterSent) -> None:
        s.execute(update(t.LegalDeadlineRow).where(t.LegalDeadlineRow.incident_id == e.incident_id)
                  .where(t.LegalDeadlineRow.key == e.key).values(met_at=e.sent_at, reference=e.reference))
        if e.command_id:
            self._outcome(s, env.type, e.command_id, True, {"incident_id": e.incident_id, "key": e.key,
                                                  "code": e.code, "sent_at": e.sent_at.isoformat()}, e.sent_at)
        self._tkp_record(s, env, e.incident_id, e)
        self._timeline(s, env, e.incident_id, e.sent_by, f"Surat {e.code} terkirim ({e.reference})")

    def _LegalDeadlineOverdue(self, s: Session, env: Envelope, e: LegalDeadlineOverdue) -> None:
        s.execute(update(t.LegalDeadlineRow).where(t.LegalDeadlineRow.incident_id == e.incident_id)
                  .where(t.LegalDeadlineRow.key == e.key).values(overdue_at=e.noticed_at))
        _upsert(s, t.Escalation, event_id=env.id, incident_id=e.incident_id, why=f"legal:{e.key}",
                detail=f"{e.words} terlambat (tenggat {e.due_at:%d-%m-%Y %H:%M} UTC)",
                escalated_at=e.noticed_at)
        self._timeline(s, env, e.incident_id, env.source, f"Terlambat: {e.words}")

    # --- notify ----------------------------------------------------------------------------------
    def _NotificationSent(self, s: Session, env: Envelope, e: NotificationSent) -> None:
        _upsert(s, t.NotificationRow, notification_id=e.notification_id, incident_id=e.incident_id, template=e.template,
                recipient_kind=e.recipient_kind, recipient=e.recipient, channel=e.channel,
                state="sent", attempts=e.attempts, reason=None, at=e.sent_at)
        if e.incident_id:
            self._timeline(s, env, e.incident_id, env.source,
                           f"Notifikasi {e.template} terkirim ke {e.recipient_kind} {e.recipient} lewat {e.channel}")

    def _NotificationFailed(self, s: Session, env: Envelope, e: NotificationFailed) -> None:
        _upsert(s, t.NotificationRow, notification_id=e.notification_id, incident_id=e.incident_id, template=e.template,
                recipient_kind=e.recipient_kind, recipient=e.recipient, channel=None,
                state="failed", attempts=e.attempts, reason=e.reason, at=e.failed_at)
        if e.incident_id:
            self._timeline(s, env, e.incident_id, env.source,
                           f"Notifikasi {e.template} ke {e.recipient_kind} {e.recipient} gagal: {e.reason}")

    # --- turjawali -------------------------------------------------------------------------------
    def _DutyAssigned(self, s: Session, env: Envelope, e: DutyAssigned) -> None:
        _upsert(s, t.Duty, duty_id=e.duty_id, kind=e.kind, unit_ids=list(e.unit_ids), incident_id=e.incident_id,
                area=e.area, route=e.route, starts_at=e.starts_at, ends_at=e.ends_at,
                check_in_every_min=e.check_in_every_min, status="active", last_check_in_at=None,
                missed_check_ins=0, assigned_by=e.assigned_by, completed_at=None)
        if e.incident_id:
            self._timeline(s, env, e.incident_id, e.assigned_by,
                           f"Tugas turjawali {e.kind}: {', '.join(e.unit_ids)}" + (f" ({e.area})" if e.area else ""))

    def _DutyCheckedIn(self, s: Session, env: Envelope, e: DutyCheckedIn) -> None:
        s.execute(update(t.Duty).where(t.Duty.duty_id == e.duty_id)
                  .where((t.Duty.last_check_in_at.is_(None)) | (t.Duty.last_check_in_at < e.at))
                  .values(last_check_in_at=e.at))

    def _DutyCompleted(self, s: Session, env: Envelope, e: DutyCompleted) -> None:
        duty = s.get(t.Duty, e.duty_id)
        if duty is not None:
            duty.status, duty.completed_at = "completed", e.completed_at
            if duty.incident_id:
                self._timeline(s, env, duty.incident_id, e.completed_by, f"Tugas turjawali {duty.kind} selesai")

    def _DutyCheckInMissed(self, s: Session, env: Envelope, e: DutyCheckInMissed) -> None:
        duty = s.get(t.Duty, e.duty_id)
        if duty is not None:
            duty.missed_check_ins = (duty.missed_check_ins or 0) + 1
        detail = (f"Petugas jaga ({', '.join(e.unit_ids)}) tidak melapor sesuai jadwal "
                  f"(seharusnya {e.due_at:%H:%M} UTC)")
        _upsert(s, t.Escalation, event_id=env.id, incident_id=e.incident_id or e.duty_id, why="guard_check_in_missed",
                detail=detail, escalated_at=e.noticed_at)
        if e.incident_id:
            self._timeline(s, env, e.incident_id, env.source, detail)

    def _hold_position(self, e: UnitPositionReported) -> bool:
        """Keep the unit's newest fix for the next flush; False for a fix older than the one held."""
        at = e.at.astimezone(timezone.utc)
        held = self._positions.get(e.unit_id)
        if held is not None and held[2] > at:
            return False
        self._positions[e.unit_id] = (e.lat, e.lon, at)
        # Counting the carried fixes too, with POSITION_BATCH unregistered units held every fix
        # flushed (a transaction each) until their registrations came.
        if len(self._positions) - self._carried >= POSITION_BATCH:
            self.flush_positions()
        return True

    def flush_positions(self) -> int:
        """Write the held fixes in one transaction; a fix older than the stored one changes nothing."""
        if not self._positions:
            return 0
        pending, self._positions = self._positions, {}
        # One statement run for every unit (executemany): building an ORM update per unit cost
        # about a millisecond each, and with 2,000 units reporting every 5 s the projection spent
        # most of its time here, holding up the events behind it (benchmarks/pipeline.py).
        with self.sessions.begin() as s:
            known = _registered(s, list(pending))
            rows = [{"b_unit": unit_id, "b_lat": lat, "b_lon": lon, "b_at": at}
                    for unit_id, (lat, lon, at) in pending.items() if unit_id in known]
            if rows:
                s.connection().execute(_MOVE_UNIT, rows)
        # A fix of a unit whose registration is not applied yet (it comes on another topic, read by
        # the other agent, which may be far behind on a catch-up) is held instead of being lost:
        # the registration writes it (`_UnitRegistered`). A tracker no unit is registered for
        # must not fill memory: past UNKNOWN_UNITS_HELD such units, the oldest fixes go.
        unknown = {unit_id: fix for unit_id, fix in pending.items() if unit_id not in known}
        if len(unknown) > UNKNOWN_UNITS_HELD:
            unknown = dict(sorted(unknown.items(), key=lambda kv: kv[1][2])[-UNKNOWN_UNITS_HELD:])
        for unit_id, fix in unknown.items():
            held = self._positions.get(unit_id)
            if held is None or held[2] < fix[2]:
                self._positions[unit_id] = fix
        self._carried = len(self._positions)
        return len(pending)

    @staticmethod
    def _timeline(s: Session, env: Envelope, incident_id: str, actor: str, summary: str,
                  entry_id: str | None = None) -> None:
        """One entry of the incident's history, linked to the one before it (a hash chain)."""
        # Read and written in SQL, not through the ORM: this runs for most events, and the ORM's
        # flush of the entry cost more than the rest of the event.
        _page_changed(s, incident_id)
        c = s.connection()
        last = c.execute(_LAST_LINK, {"incident_id": incident_id}).first()
        entry = {"entry_id": entry_id or env.id, "event_id": env.id, "incident_id": incident_id, "at": env.time,
                 "type": env.type, "actor": actor, "summary": summary,
                 "seq": ((last.seq or 0) + 1) if last is not None else 1}
        sealed = chain.append(last.hash if last is not None else None, entry["entry_id"],
                              timeline_content(SimpleNamespace(**entry)))
        c.execute(_TIMELINE_ADD, {**entry, "prev_hash": sealed.prev_hash, "hash": sealed.hash})


SCENE_WORDS = {"on_scene": "unit tiba di TKP", "tptkp": "tindakan pertama di TKP", "scene_secured": "TKP diamankan",
               "olah_tkp": "olah TKP", "scene_released": "TKP dilepas"}


def timeline_content(entry) -> dict:
    """What a timeline entry's hash covers (the same on write and on verification)."""
    at = as_aware(entry.at).astimezone(timezone.utc).isoformat()
    return {"entry_id": entry.entry_id, "event_id": entry.event_id, "incident_id": entry.incident_id, "at": at,
            "type": entry.type, "actor": entry.actor, "summary": entry.summary}


def as_aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value
