"""What the fault suite checks once the system has recovered from a fault, from Kafka itself.

1. Reports: every report answered 202 is on exactly one incident (its own, or the one it was
   merged into), and no report was recorded twice under two ids.
2. Units: no unit was ever active on two incidents (per-unit assignment intervals do not overlap),
   and dispatch never said two different things for the same version of a unit's status.
3. Notifications: every notification recorded as sent (notification.sent on spkt.notifications)
   arrived at the gateway, every arrival was recorded, every receipt and unit alert the work
   calls for was sent, and none was delivered twice (see test_faults.py on resends).
4. Consumer lag of every group returns to zero within a bound once the load is paused.
5. The read model equals a rebuild from Kafka (read_model_rows from the API contract test).

Every wait is bounded; a failing check says what it saw.
"""
from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafka import TopicPartition
from kafka.admin import OffsetSpec

from deploy.topics import admin_client
from schemas import topics
from schemas.envelope import derived_id
from spkt.settings import Settings
from tests.faults.gateway import DedupingGateway
from tests.faults.load import Acked
from tests.support import events_on

GROUPS = ("spkt-intake", "spkt-dispatch", "spkt-tkp", "spkt-notify", *topics.groups_of("projection"))
GATEWAY_CHANNELS = ("sms", "whatsapp")


# --- 4. consumer lag ---------------------------------------------------------------------------------
def group_lags(settings: Settings, groups=GROUPS) -> dict[str, int | None]:
    """Messages behind per group over every partition of the spkt.* topics it has committed on
    (None: the group or the cluster could not be asked)."""
    try:
        admin = admin_client(settings, timeout_ms=5000)
    except Exception:  # noqa: BLE001 - the cluster away: unknown
        return {g: None for g in groups}
    try:
        out: dict[str, int | None] = {}
        committed = {}
        for group in groups:
            try:
                committed[group] = {tp: o for tp, o in admin.list_group_offsets({group: None}).get(group, {}).items()
                                    if tp.topic.startswith("spkt.")}
            except Exception:  # noqa: BLE001 - coordinator moving: unknown
                committed[group] = None
        wanted = {t for offsets in committed.values() if offsets for t in {tp.topic for tp in offsets}}
        parts = {}
        for topic in wanted:
            spec = topics.BY_NAME.get(topic)
            count = (spec.partitions if spec and spec.partitions else None) or settings.topic_partitions
            parts[topic] = [TopicPartition(topic, p) for p in range(count)]
        try:
            ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for ps in parts.values() for tp in ps})
        except Exception:  # noqa: BLE001
            return {g: None for g in groups}
        for group, offsets in committed.items():
            if not offsets:
                out[group] = None
                continue
            behind = 0
            for topic in {tp.topic for tp in offsets}:
                for tp in parts[topic]:
                    done = offsets[tp].offset if tp in offsets and offsets[tp].offset >= 0 else 0
                    behind += max(0, ends[tp].offset - done)
            out[group] = behind
        return out
    finally:
        admin.close()


def wait_lag_zero(settings: Settings, timeout: float) -> tuple[float, dict]:
    """Seconds until every group's lag is zero; AssertionError with the last lags after `timeout`."""
    started = time.monotonic()
    last: dict = {}
    while time.monotonic() - started < timeout:
        last = group_lags(settings)
        if all(v == 0 for v in last.values()):
            return time.monotonic() - started, last
        time.sleep(0.5)
    raise AssertionError(f"consumer lag not back to zero within {timeout:.0f} s: {last}")


# --- 1. reports --------------------------------------------------------------------------------------
@dataclass
class ReportOutcome:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)          # answered 202, on no incident
    never_recorded: list[str] = field(default_factory=list)  # answered 202, not even on spkt.reports
    duplicated: list[str] = field(default_factory=list)     # on two incidents, or recorded under two ids
    incidents: int = 0


def _incident_of_reports(settings: Settings) -> dict[str, set[str]]:
    """report id -> the incidents it ends up on (after merges and splits)."""
    seen: set[str] = set()
    events = []
    for e in events_on(settings, topics.INCIDENTS):
        if e.id not in seen:
            seen.add(e.id)
            events.append(e)
    events.sort(key=lambda e: e.time)
    members: dict[str, set[str]] = collections.defaultdict(set)
    into: dict[str, str] = {}
    for e in events:
        d = e.data
        if e.type == "incident.opened":
            members[d["incident_id"]].update(d["report_ids"])
        elif e.type == "report.attached":
            members[d["incident_id"]].add(d["report_id"])
        elif e.type == "incident.merged":
            into[d["incident_id"]] = d["into"]
        elif e.type == "incident.split":
            members[d["incident_id"]].discard(d["report_id"])
            members[d["new_incident_id"]].add(d["report_id"])

    def final(incident_id: str) -> str:
        hops = 0
        while incident_id in into and hops < 100:
            incident_id, hops = into[incident_id], hops + 1
        return incident_id

    out: dict[str, set[str]] = collections.defaultdict(set)
    for incident_id, reports in members.items():
        for report_id in reports:
            out[report_id].add(final(incident_id))
    return out


def report_outcome(settings: Settings, acked: list[Acked], timeout: float = 60.0) -> ReportOutcome:
    """Waits (bounded) until every acknowledged report is on an incident, then counts."""
    deadline = time.monotonic() + timeout
    while True:
        on = _incident_of_reports(settings)
        if all(on.get(a.report_id) for a in acked) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    received = [e for e in events_on(settings, topics.REPORTS) if e.type == "report.received"]
    ids_by_marker: dict[str, set[str]] = collections.defaultdict(set)
    for e in received:
        text = e.data.get("description") or ""
        if "[FLT-" in text:
            ids_by_marker[text.rsplit("[", 1)[1].rstrip("]")].add(e.data["report_id"])
    recorded = {e.data["report_id"] for e in received}
    out = ReportOutcome(acknowledged=len(acked), incidents=len({i for s in on.values() for i in s}))
    for a in acked:
        places = on.get(a.report_id, set())
        if a.report_id not in recorded:
            out.never_recorded.append(a.marker)
        if not places:
            out.lost.append(f"{a.marker} ({a.channel}, report {a.report_id})")
        elif len(places) > 1:
            out.duplicated.append(f"{a.marker} on incidents {sorted(places)}")
        if len(ids_by_marker.get(a.marker, ())) > 1:
            out.duplicated.append(f"{a.marker} recorded as reports {sorted(ids_by_marker[a.marker])}")
    return out


# --- 2. units ----------------------------------------------------------------------------------------
@dataclass
class UnitOutcome:
    assignments: int = 0
    overlaps: list[str] = field(default_factory=list)
    split_brain: list[str] = field(default_factory=list)


def unit_outcome(settings: Settings, unit_prefix: str) -> UnitOutcome:
    assigned: dict[str, tuple[str, str, object]] = {}  # assignment id -> (unit, incident, from)
    ended: dict[str, object] = {}
    for e in events_on(settings, topics.ASSIGNMENTS):
        d = e.data
        if not str(d.get("unit_id", "")).startswith(unit_prefix):
            continue
        if e.type == "unit.assigned":
            assigned.setdefault(d["assignment_id"], (d["unit_id"], d["incident_id"], e.data["assigned_at"]))
        elif e.type == "assignment.ended" and d.get("assignment_id"):
            ended.setdefault(d["assignment_id"], d["ended_at"])
    out = UnitOutcome(assignments=len(assigned))
    by_unit: dict[str, list] = collections.defaultdict(list)
    for assignment_id, (unit_id, incident_id, start) in assigned.items():
        by_unit[unit_id].append((start, ended.get(assignment_id), incident_id, assignment_id))
    for unit_id, spans in by_unit.items():
        spans.sort(key=lambda s: s[0])
        for (s1, e1, i1, a1), (s2, _, i2, a2) in zip(spans, spans[1:]):
            if e1 is None or s2 < e1:  # the next began before this one ended
                out.overlaps.append(f"{unit_id}: {a1} on {i1} from {s1} (ended {e1}) and {a2} on {i2} from {s2}")
    # One decision per version of a unit's status: two different events for one version is two deciders.
    versions: dict[tuple[str, int], set] = collections.defaultdict(set)
    for e in events_on(settings, topics.UNIT_STATUS):
        d = e.data
        if e.type == "unit.status-changed" and d.get("status_version") is not None \
                and str(d["unit_id"]).startswith(unit_prefix):
            versions[(d["unit_id"], d["status_version"])].add((d["status"], d.get("incident_id")))
    out.split_brain = [f"{u} v{v}: {sorted(map(str, s))}" for (u, v), s in versions.items() if len(s) > 1]
    return out


# --- 3. notifications --------------------------------------------------------------------------------
@dataclass
class NotificationOutcome:
    expected: int = 0            # receipts of acknowledged reports + alerts of assigned units
    sent: int = 0                # notification.sent over the gateway (distinct ids)
    arrived: int = 0             # distinct ids the gateway took
    resent: int = 0              # extra arrivals under the same Idempotency-Key (a kill between answer and record)
    delivered_twice: list[str] = field(default_factory=list)  # delivered to the phone more than once
    missing: list[str] = field(default_factory=list)          # expected or recorded sent, never arrived
    unrecorded: list[str] = field(default_factory=list)       # arrived, never recorded as sent
    failed: list[str] = field(default_factory=list)           # notification.failed for one expected


def receipt_id(report_id: str) -> str:
    """services/notify/domain.py `_receipt`: one per report.received event, reporter keyed by report."""
    return derived_id("notification", derived_id("report.received", report_id), "reporter", report_id, "receipt")


def unit_alert_id(assigned_event_id: str, unit_id: str) -> str:
    """services/notify/domain.py `_assignment`: one per unit.assigned event and unit."""
    return derived_id("notification", assigned_event_id, "unit", unit_id, "unit_assignment")


def notification_outcome(settings: Settings, gateway: DedupingGateway, acked: list[Acked], unit_prefix: str,
                         timeout: float = 90.0) -> NotificationOutcome:
    expected = {receipt_id(a.report_id): f"receipt of {a.marker}" for a in acked}
    seen_assigned: set[str] = set()
    for e in events_on(settings, topics.ASSIGNMENTS):
        if e.type == "unit.assigned" and str(e.data["unit_id"]).startswith(unit_prefix) and e.id not in seen_assigned:
            seen_assigned.add(e.id)
            expected[unit_alert_id(e.id, e.data["unit_id"])] = f"alert to {e.data['unit_id']} ({e.data['assignment_id']})"
    deadline = time.monotonic() + timeout
    while True:
        sent: dict[str, dict] = {}
        failed: dict[str, dict] = {}
        for e in events_on(settings, topics.NOTIFICATIONS):
            if e.type == "notification.sent" and e.data["channel"] in GATEWAY_CHANNELS:
                sent.setdefault(e.data["notification_id"], e.data)
            elif e.type == "notification.failed":
                failed.setdefault(e.data["notification_id"], e.data)
        raw = gateway.raw()
        settled = (set(expected) <= set(sent) | set(failed)) and set(sent) <= set(raw) and set(raw) <= set(sent)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    delivered = gateway.delivered()
    out = NotificationOutcome(expected=len(expected), sent=len(sent), arrived=len(raw),
                              resent=sum(n - 1 for n in raw.values() if n > 1))
    out.delivered_twice = [f"{nid}: {n} deliveries" for nid, n in delivered.items() if n > 1]
    out.missing = [f"{expected.get(nid, nid)} ({nid})" for nid in (set(expected) | set(sent)) - set(raw)
                   if nid not in failed]
    out.unrecorded = sorted(set(raw) - set(sent))
    out.failed = [f"{expected[nid]}: {failed[nid].get('reason')}" for nid in set(expected) & set(failed)]
    return out


# --- 5. the read model against a rebuild -------------------------------------------------------------
def rebuild_differences(settings: Settings, folder: Path) -> tuple[dict, int, int]:
    """(differences by table, events applied by the rebuild, rows compared). The caller has stopped
    every writer and waited for the projection to apply everything."""
    from services.projection import rebuild
    from tests.e2e.test_api_contract import broken_chains, read_model_differences, read_model_rows

    fresh = f"sqlite:///{folder / 'rebuilt.db'}"
    result = rebuild.run(settings, fresh)
    live, rebuilt = read_model_rows(settings.db_url), read_model_rows(fresh)
    differ = read_model_differences(live, rebuilt)
    chains = {url: broken_chains(url) for url in (settings.db_url, fresh)}
    if any(chains.values()):
        differ["(hash chains that do not verify)"] = chains
    return differ, result.applied, sum(map(len, live.values()))
