"""The topic catalogue: the one place that says which topics exist and what flows on them.

`spkt topics create` creates exactly these; `spkt topics list` prints them; docs/topics.md
is generated from them (a test keeps it in step).
"""
from __future__ import annotations

from dataclasses import dataclass

FOREVER = -1


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    purpose: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    event_types: tuple[str, ...]
    # None: the configured default (settings.topic_partitions); retention None: keep forever
    # except where the catalogue says otherwise (positions use settings.positions_retention_ms).
    partitions: int | None = None
    bounded_retention: bool = False
    compact: bool = False


REPORTS = "spkt.reports"
INCIDENTS = "spkt.incidents"
ASSIGNMENTS = "spkt.assignments"
UNIT_STATUS = "spkt.unit-status"
UNIT_POSITIONS = "spkt.unit-positions"
TKP = "spkt.tkp"
TURJAWALI = "spkt.turjawali"
CLOSURES = "spkt.closures"
NOTIFICATIONS = "spkt.notifications"
COMMANDS = "spkt.commands"
UNIT_COMMANDS = "spkt.unit-commands"
DEAD_LETTERS = "spkt.dead-letters"

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(REPORTS, "area (polres)", "incoming reports from every channel; one partition sees a whole area",
              ("api",), ("intake", "notify", "projection"), ("report.received",)),
    TopicSpec(INCIDENTS, "incident_id", "incidents from reports: triage, attachments, merges, LPs, targets, decisions",
              ("intake", "api"), ("intake", "dispatch", "tkp", "notify", "projection"),
              ("incident.opened", "report.attached", "incident.merged", "incident.split", "lp.registered",
               "incident.target-breached", "assistance.decided", "assistance.escalated", "command.rejected", "incident.relocated",
               "incident.marked-shareable")),
    TopicSpec(ASSIGNMENTS, "incident_id", "recommendations, assignments and their lifecycle, requests for backup",
              ("dispatch", "api"), ("intake", "dispatch", "tkp", "notify", "projection"),
              ("dispatch.recommended", "unit.assigned", "assignment.acknowledged", "assignment.declined",
               "assignment.unacknowledged", "unit.arrived", "assignment.ended", "recommendation.requested")),
    TopicSpec(UNIT_STATUS, "unit_id", "unit register and status changes",
              ("api", "dispatch", "demo"), ("dispatch", "notify", "projection"),
              ("unit.registered", "unit.status-changed", "unit.signed-in", "unit.signed-out")),
    TopicSpec(UNIT_POSITIONS, "unit_id", "GPS positions from phones and trackers (bounded window)",
              ("api", "trackers", "demo"), ("dispatch", "projection"), ("unit.position-reported",),
              bounded_retention=True),
    TopicSpec(TKP, "incident_id", "on-scene first actions (TPTKP), scene processing (olah TKP), evidence",
              ("tkp",), ("tkp", "notify", "projection"),
              ("scene.step-recorded", "scene.status-changed", "evidence.registered", "evidence.custody-transferred",
               "evidence.corrected", "legal.clock-started", "legal.deadline-overdue", "legal.letter-sent")),
    TopicSpec(TURJAWALI, "duty_id", "escort and traffic duties (pengaturan, penjagaan, pengawalan, patroli)",
              ("api", "tkp"), ("dispatch", "tkp", "projection"),
              ("duty.assigned", "duty.checked-in", "duty.completed", "duty.check-in-missed")),
    TopicSpec(CLOSURES, "incident_id", "incident closure, dispositions and LP numbers",
              ("tkp",), ("dispatch", "tkp", "notify", "projection"), ("incident.closed", "incident.reopened", "sttlp.issued")),
    TopicSpec(NOTIFICATIONS, "incident_id", "notifications sent or failed",
              ("notify",), ("notify", "projection"), ("notification.sent", "notification.failed")),
    TopicSpec(COMMANDS, "area (polres) for intake's; incident_id for others",
              "users' commands awaiting an outcome (merge, split; assign-unit, close, ...)",
              ("api", "tkp"), ("intake", "tkp"),
              ("merge-incidents", "split-report", "register-lp", "record-scene-step", "register-evidence",
               "transfer-custody", "correct-evidence", "close-incident", "reopen-incident", "record-letter")),
    TopicSpec(UNIT_COMMANDS, "unit_id", "commands for one unit (assign, change status, accept or decline): "
              "one dispatch worker decides for each unit, so it is never assigned twice",
              ("api", "dispatch"), ("dispatch",), ("assign-unit", "change-unit-status", "respond-to-assignment")),
    TopicSpec(DEAD_LETTERS, "original key", "messages a service could not handle, with the reason",
              ("every service",), ("operators (spkt dlq)",), ("message.dead-lettered",)),
)

BY_NAME: dict[str, TopicSpec] = {t.name: t for t in CATALOGUE}

# The stream processors' state tables (faust), each backed by a compacted changelog topic. faust
# would create these at a worker's first start, but then that worker's own metadata can miss the
# new topic for minutes ("0 partitions") and every table write fails: so they are created with
# the catalogue's topics, before any worker starts. A test keeps this list and the apps in step.
TABLES: dict[str, tuple[str, ...]] = {
    "intake": ("open-incidents", "counters", "outcomes", "recent-messages", "timers"),
    "dispatch": ("unit-holds", "unit-outcomes", "incident-facts"),
    "tkp": ("scenes", "outcomes", "duties"),
    "notify": ("outbox",),
}


# A service's faust app is consumer group `spkt-<service>`. The projection also reads GPS positions
# with a group of its own, outside faust (services/projection/positions.py).
PROJECTION_POSITIONS_GROUP = "spkt-projection-positions"


def groups_of(service: str) -> tuple[str, ...]:
    """The consumer groups a worker reads its topics with."""
    return (f"spkt-{service}", PROJECTION_POSITIONS_GROUP) if service == "projection" else (f"spkt-{service}",)


def changelog_topic(service: str, table: str) -> str:
    """faust's name for a table's changelog: <app id>-<table>-changelog, the app id being spkt-<service>."""
    return f"spkt-{service}-{table}-changelog"


CHANGELOGS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(changelog_topic(service, table), "table key", f"changelog of {service}'s table {table}",
              (service,), (service,), (), compact=True)
    for service, tables in TABLES.items() for table in tables)


def topic_for(event_type: str) -> str:
    for spec in CATALOGUE:
        if event_type in spec.event_types:
            return spec.name
    raise KeyError(f"no topic carries {event_type!r}")
