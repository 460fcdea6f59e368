"""Intake rules. Pure: no Kafka, no faust, no HTTP, no SQL.

An area's intake (one Polres: every report and intake command of the area lands on one partition,
so one worker decides at a time) turns each report into either a new incident or an attachment to
an open one, numbers incidents and LPs without gaps, and keeps the state that needs in mappings
the caller provides (faust tables in the worker, dicts in tests).

Handling the same input twice gives the same output: every outcome is kept by input id, and
re-handling replays it. That is what keeps numbers unique and gapless across retries and restarts.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable, MutableMapping

from schemas.envelope import derived_id
from schemas.registry import record_events, replay_events
from schemas.events import (
    CommandRejected, EventData, IncidentMerged, IncidentOpened, IncidentSplit, Location, LpRegistered, RegisterLp,
    MatchScore, MergeIncidents, ReportAttached, ReportReceived, SplitReport,
)

from .categories import category

SUMMARY_LENGTH = 160
ROMAN_MONTHS = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII")
UNLOCATED = "unlocated"


class OpenIncidents(MutableMapping):
    """An area's open incidents (incident_id -> facts) as the mapping that keeps them holds them,
    with a grid of their positions: a report's duplicate search reads the incidents near it
    (`near`), not every one open. A surge opens thousands: with a scan of all of them a report's
    search took 0.65 ms at 2,200 open, more with each one; with the grid 0.28 ms (docs/performance.md).

    Changes made through this wrapper keep the grid. Anything that changes the mapping behind it
    (a faust table's recovery after a rebalance) must call `stale()`; a different count is taken
    as stale too. Either way the grid is built again from the mapping before the next search."""

    CELL_DEG = 0.01  # about 1.1 km: a search reads the few cells its reach covers

    def __init__(self, backing: MutableMapping[str, dict]) -> None:
        self.backing = backing
        self._cells: dict[tuple[int, int], set[str]] = {}
        self._cell_of: dict[str, tuple[int, int] | None] = {}
        self._stale = True

    # --- the mapping: the backing's, with the grid kept -----------------------------------------
    def __getitem__(self, incident_id: str) -> dict:
        return self.backing[incident_id]

    def __setitem__(self, incident_id: str, facts: dict) -> None:
        self.backing[incident_id] = facts
        self._place(incident_id, facts)

    def __delitem__(self, incident_id: str) -> None:
        del self.backing[incident_id]
        self._remove(incident_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self.backing)

    def __len__(self) -> int:
        return len(self.backing)

    def __contains__(self, incident_id: object) -> bool:
        return incident_id in self.backing

    def get(self, incident_id: str, default=None):  # a faust table answers None for a missing key
        return self.backing.get(incident_id, default)

    def pop(self, incident_id: str, *default):
        facts = self.backing.pop(incident_id, *default)
        self._remove(incident_id)
        return facts

    # --- the grid ----------------------------------------------------------------------------------
    def stale(self) -> None:
        self._stale = True

    def near(self, lat: float, lon: float, reach_lat_deg: float, reach_lon_deg: float) -> list[dict]:
        """The facts of every incident within the box of ±reach around (lat, lon), in no order."""
        if self._stale or len(self._cell_of) != len(self.backing):
            self._build()
        cell = self.CELL_DEG
        found = []
        for i in range(math.floor((lat - reach_lat_deg) / cell), math.floor((lat + reach_lat_deg) / cell) + 1):
            for j in range(math.floor((lon - reach_lon_deg) / cell), math.floor((lon + reach_lon_deg) / cell) + 1):
                for incident_id in self._cells.get((i, j), ()):
                    facts = self.backing.get(incident_id)
                    if facts is not None and facts.get("lat") is not None and \
                            abs(facts["lat"] - lat) <= reach_lat_deg and abs(facts["lon"] - lon) <= reach_lon_deg:
                        found.append(facts)
        return found

    def _build(self) -> None:
        self._cells.clear()
        self._cell_of.clear()
        for incident_id, facts in list(self.backing.items()):
            self._place(incident_id, facts)
        self._stale = False

    def _place(self, incident_id: str, facts: Mapping | None) -> None:
        self._remove(incident_id)
        lat, lon = (facts.get("lat"), facts.get("lon")) if facts else (None, None)
        where = None if lat is None or lon is None else (math.floor(lat / self.CELL_DEG),
                                                          math.floor(lon / self.CELL_DEG))
        self._cell_of[incident_id] = where
        if where is not None:
            self._cells.setdefault(where, set()).add(incident_id)

    def _remove(self, incident_id: str) -> None:
        where = self._cell_of.pop(incident_id, None)
        if where is not None:
            ids = self._cells[where]
            ids.discard(incident_id)
            if not ids:
                del self._cells[where]


@dataclass
class AreaState:
    """What an area's intake remembers. Plain mappings of JSON-able values (faust tables in the worker)."""

    open_incidents: MutableMapping[str, dict] = field(default_factory=dict)  # incident_id -> facts
    counters: MutableMapping[str, int] = field(default_factory=dict)  # "lp|office|year", "incident|area|year"
    outcomes: MutableMapping[str, dict] = field(default_factory=dict)  # input id -> {"at", "events"}
    recent_messages: MutableMapping[str, dict] = field(default_factory=dict)  # sender+text -> report

    def __post_init__(self) -> None:
        if not isinstance(self.open_incidents, OpenIncidents):
            self.open_incidents = OpenIncidents(self.open_incidents)


@dataclass(frozen=True)
class Located:
    lat: float | None
    lon: float | None
    verified: bool
    note: str | None
    polsek: str | None
    polres: str | None


@dataclass(frozen=True)
class Classified:
    category: str
    confidence: float
    low_confidence: bool
    matched: tuple[str, ...]


@dataclass(frozen=True)
class IntakeTools:
    """What the rules need from outside, injected: where a report is, what it is, whether it matches."""

    locate: Callable[[Location], Located]
    classify: Callable[[str], Classified]
    # (incident id, score) of the best open incident for this report, or None
    best_match: Callable[[ReportReceived, Located, str, OpenIncidents], tuple[str, MatchScore] | None]
    office_name: Callable[[str], str]  # polres id -> LP office, e.g. "POLRES METRO JAKARTA SELATAN"
    area_code: Callable[[str], str]  # polres id -> short code for incident numbers, e.g. "JAKSEL"
    resend_window: timedelta = timedelta(minutes=10)
    decision_limit: timedelta = timedelta(minutes=15)
    keep_outcomes: timedelta = timedelta(days=2)


# --- numbers ------------------------------------------------------------------------------------
def next_number(state: AreaState, key: str) -> int:
    number = state.counters.get(key, 0) + 1
    state.counters[key] = number
    return number


def lp_number(model: str, sequence: int, at: datetime, office: str) -> str:
    """LP/B/123/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN (DOMAIN.md)."""
    return f"LP/{model}/{sequence}/{ROMAN_MONTHS[at.month - 1]}/{at.year}/SPKT/{office}"


def incident_number(area_code: str, year: int, sequence: int) -> str:
    """Short enough for the radio: KJD/JAKSEL/2026/000123."""
    return f"KJD/{area_code}/{year}/{sequence:06d}"


def summarise(description: str) -> str:
    text = " ".join(description.split())
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1].rstrip() + "…"


def message_fingerprint(sender: str, text: str) -> str:
    """Gateways resend: the same sender with the same words is the same message."""
    normal = " ".join(text.lower().split())
    return hashlib.sha256(f"{sender}\n{normal}".encode()).hexdigest()[:32]


# --- reports ------------------------------------------------------------------------------------
def handle_report(report: ReportReceived, event_id: str, state: AreaState, tools: IntakeTools,
                  now: datetime) -> list[EventData]:
    """A new incident, or an attachment to an open one; with an LP when one was asked for."""
    if event_id in state.outcomes:
        return replay_events(state.outcomes[event_id])
    _forget_old(state, tools, now)
    out: list[EventData] = []
    resent = _resent_message(report, state, tools)
    if resent is not None:
        state.outcomes[event_id] = record_events([], now)  # the earlier copy was handled; this one changes nothing
        return []
    located = tools.locate(report.location)
    classified = _classification(report, tools)
    # An assistance request always gets its own incident: it needs its own recorded decision. So
    # does a unit's panic button: backup must be recommended at once, not folded into another call.
    alone = report.assistance_request or report.panic_unit_id is not None
    match = None if alone else tools.best_match(report, located, classified.category, state.open_incidents)
    if match is not None and match[0] in state.open_incidents:
        incident_id, score = match
        incident = state.open_incidents[incident_id]
        incident["last_report_at"] = report.received_at.isoformat()
        incident["texts"] = (incident["texts"] + [report.description])[-5:]
        incident["report_ids"] = incident["report_ids"] + [report.report_id]
        state.open_incidents[incident_id] = incident
        out.append(ReportAttached(incident_id=incident_id, report_id=report.report_id, match=score,
                                  attached_at=report.received_at))
    else:
        out.append(_open(report, [report.report_id], located, classified, state, tools))
    if report.lp_model:
        out.append(_register_lp(report, state, tools))
    state.outcomes[event_id] = record_events(out, now)
    return out


def _classification(report: ReportReceived, tools: IntakeTools) -> Classified:
    if report.category:  # the call taker chose it: taken as given
        return Classified(report.category, 1.0, False, ())
    return tools.classify(report.description)


def _open(report: ReportReceived, report_ids: list[str], located: Located, classified: Classified,
          state: AreaState, tools: IntakeTools, *, incident_id: str | None = None) -> IncidentOpened:
    cat = category(classified.category)
    # Numbered by the area that owns this partition: one writer per counter, so no gaps, no repeats.
    area = report.area or located.polres or UNLOCATED
    year = report.received_at.year
    sequence = next_number(state, f"incident|{area}|{year}")
    incident_id = incident_id or derived_id("incident", report.report_id)
    targets = {"dispatch": report.received_at + timedelta(seconds=cat.targets.dispatch_s),
               "on_scene": report.received_at + timedelta(seconds=cat.targets.on_scene_s)}
    if report.assistance_request:
        targets["assistance_decision"] = report.received_at + tools.decision_limit
    location = report.location.model_copy(update={"lat": located.lat, "lon": located.lon})
    opened = IncidentOpened(
        incident_id=incident_id,
        number=incident_number(tools.area_code(area) if area != UNLOCATED else "XX", year, sequence),
        report_ids=report_ids,
        category=cat.code,
        priority=cat.priority,
        summary=summarise(report.description),
        location=location,
        jurisdiction=located.polsek or located.polres,
        polres=located.polres,
        opened_at=report.received_at,
        location_verified=located.verified,
        location_note=located.note,
        category_confidence=classified.confidence,
        category_low_confidence=classified.low_confidence,
        category_matched=list(classified.matched),
        sensitive=cat.sensitive,
        assistance_request=report.assistance_request,
        response_plan=[{"kind": need.kind, "count": need.count, "capabilities": list(need.capabilities)}
                       for need in cat.response_plan],
        targets=targets,
        panic_unit_id=report.panic_unit_id,
    )
    if located.lat is not None and not report.assistance_request:
        state.open_incidents[incident_id] = {
            "incident_id": incident_id, "category": cat.code, "lat": located.lat, "lon": located.lon,
            "opened_at": report.received_at.isoformat(), "last_report_at": report.received_at.isoformat(),
            "texts": [report.description], "report_ids": list(report_ids), "polres": located.polres,
            "accuracy_m": report.location.accuracy_m,
        }
    return opened


def _register_lp(report: ReportReceived, state: AreaState, tools: IntakeTools) -> LpRegistered:
    office_id = report.area or UNLOCATED
    office = tools.office_name(office_id)
    at = report.received_at
    sequence = next_number(state, f"lp|{office_id}|{at.year}")
    return LpRegistered(lp_number=lp_number(report.lp_model, sequence, at, office), model=report.lp_model,
                        office=office, sequence=sequence, year=at.year, report_id=report.report_id,
                        registered_at=at)


def _resent_message(report: ReportReceived, state: AreaState, tools: IntakeTools) -> str | None:
    """The report id of an earlier copy of this gateway message, if the gateway resent it."""
    if not report.gateway or not report.reporter.phone:
        return None
    key = message_fingerprint(report.reporter.phone, report.description)
    earlier = state.recent_messages.get(key)
    if earlier and report.received_at - datetime.fromisoformat(earlier["at"]) <= tools.resend_window:
        return earlier["report_id"]
    state.recent_messages[key] = {"report_id": report.report_id, "at": report.received_at.isoformat()}
    return None


def _forget_old(state: AreaState, tools: IntakeTools, now: datetime) -> None:
    """Drop what can no longer matter: stale messages, incidents past every duplicate window.

    At most once a minute: it walks everything the area remembers."""
    minute = int(now.timestamp() // 60)
    if state.counters.get("forgotten_at_minute", 0) >= minute:
        return
    state.counters["forgotten_at_minute"] = minute
    for key, value in list(state.recent_messages.items()):
        if now - datetime.fromisoformat(value["at"]) > tools.resend_window:
            del state.recent_messages[key]
    for incident_id, incident in list(state.open_incidents.items()):
        window = timedelta(seconds=category(incident["category"]).duplicate_window_s)
        if now - datetime.fromisoformat(incident["last_report_at"]) > window * 2:
            del state.open_incidents[incident_id]
    for key, outcome in list(state.outcomes.items()):
        if now - datetime.fromisoformat(outcome["at"]) > tools.keep_outcomes:
            del state.outcomes[key]


# --- dispatchers' commands ----------------------------------------------------------------------
def handle_merge(cmd: MergeIncidents, event_id: str, state: AreaState, now: datetime) -> list[EventData]:
    if event_id in state.outcomes:
        return replay_events(state.outcomes[event_id])
    if cmd.incident_id == cmd.into:
        out: list[EventData] = [_rejected(cmd, "kejadian tidak dapat digabung dengan dirinya sendiri", now)]
    else:
        source = state.open_incidents.pop(cmd.incident_id, None)
        target = state.open_incidents.get(cmd.into)
        report_ids = source["report_ids"] if source else []
        if target is not None and source is not None:
            target["report_ids"] = target["report_ids"] + source["report_ids"]
            target["texts"] = (target["texts"] + source["texts"])[-5:]
            target["last_report_at"] = max(target["last_report_at"], source["last_report_at"])
            state.open_incidents[cmd.into] = target
        out = [IncidentMerged(incident_id=cmd.incident_id, into=cmd.into, report_ids=report_ids,
                              merged_by=cmd.requested_by, reason=cmd.reason, merged_at=now)]
    state.outcomes[event_id] = record_events(out, now)
    return out


def handle_register_lp(cmd: RegisterLp, event_id: str, state: AreaState, tools: IntakeTools,
                       now: datetime) -> list[EventData]:
    """The LP of a closure (tkp asks): the next number of the office's gapless yearly sequence."""
    if event_id in state.outcomes:
        return replay_events(state.outcomes[event_id])
    office_id = cmd.area or UNLOCATED
    office = tools.office_name(office_id)
    sequence = next_number(state, f"lp|{office_id}|{now.year}")
    out: list[EventData] = [LpRegistered(
        lp_number=lp_number(cmd.model, sequence, now, office), model=cmd.model, office=office, sequence=sequence,
        year=now.year, report_id=cmd.report_id or "", registered_at=now, incident_id=cmd.incident_id,
        command_id=cmd.command_id)]
    state.outcomes[event_id] = record_events(out, now)
    return out


def handle_split(cmd: SplitReport, event_id: str, state: AreaState, tools: IntakeTools,
                 now: datetime) -> list[EventData]:
    """Take a report out of its incident into a new incident of its own."""
    if event_id in state.outcomes:
        return replay_events(state.outcomes[event_id])
    report = ReportReceived.model_validate(cmd.report)
    new_id = derived_id("incident", "split", cmd.command_id)
    source = state.open_incidents.get(cmd.incident_id)
    if source is not None and cmd.report_id in source["report_ids"]:
        source["report_ids"] = [r for r in source["report_ids"] if r != cmd.report_id]
        state.open_incidents[cmd.incident_id] = source
    located = tools.locate(report.location)
    opened = _open(report, [report.report_id], located, _classification(report, tools), state, tools,
                   incident_id=new_id)
    out = [IncidentSplit(incident_id=cmd.incident_id, report_id=cmd.report_id, new_incident_id=new_id,
                         split_by=cmd.requested_by, reason=cmd.reason, split_at=now), opened]
    state.outcomes[event_id] = record_events(out, now)
    return out


def _rejected(cmd, reason: str, now: datetime) -> CommandRejected:
    return CommandRejected(command_id=cmd.command_id, command=cmd.event_type, reason=reason, rejected_at=now)


# --- outcomes kept by input id --------------------------------------------------------------------
