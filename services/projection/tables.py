"""Read-model tables (SQLAlchemy 2). Written only by the projection; read by the API.

Response models live with the API routes; these are storage.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from datetime import timezone

from sqlalchemy import (
    JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, create_engine, event, insert, select,
)
from sqlalchemy.schema import CreateTable
from sqlalchemy.types import TypeDecorator
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class UtcDateTime(TypeDecorator):
    """Every time is stored as UTC and read back aware: SQLite keeps no offset, so a +07:00 time
    stored as given would come back 7 h off."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UtcDateTime()}


class ProcessedEvent(Base):
    """Every event the projection applied, recorded in the same transaction as its effect."""

    __tablename__ = "processed_events"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(200))
    topic: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer)
    processed_at: Mapped[datetime]


class WaitingEvent(Base):
    """An event (or its later parts) waiting for a row the read model does not hold yet: its
    incident, unit or report. Topics are read in no fixed order, so on a catch-up or a rebuild a
    closure can come before the opening; applied then, it would change nothing. It waits here,
    recorded as processed, and is applied in the transaction that writes the row
    (services/projection/projector.py `_PARTS`)."""

    __tablename__ = "waiting_events"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    waits_for: Mapped[str] = mapped_column(String(200), index=True)  # "incident:<id>", "unit:<id>", "report:<id>"
    part: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # the first part not applied yet
    at: Mapped[datetime]  # the event's own time: the order they are applied in
    envelope: Mapped[str] = mapped_column(Text)  # the envelope as JSON


class Report(Base):
    __tablename__ = "reports"
    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    channel: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(64))
    reporter: Mapped[dict[str, Any]]
    location: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    received_by: Mapped[str | None] = mapped_column(String(200))
    assistance_request: Mapped[bool] = mapped_column(Boolean, default=False)
    reporter_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    lp_number: Mapped[str | None] = mapped_column(String(200))
    caller_warning: Mapped[str | None] = mapped_column(Text)


class IncidentReport(Base):
    """Which incident a report belongs to. Its own table, so the order in which reports and
    incidents arrive (different topics) does not matter."""

    __tablename__ = "incident_reports"
    report_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    merged: Mapped[bool] = mapped_column(Boolean, default=False)
    linked_at: Mapped[datetime]
    match: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Incident(Base):
    __tablename__ = "incidents"
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(4))
    summary: Mapped[str] = mapped_column(Text)
    location: Mapped[dict[str, Any]]
    jurisdiction: Mapped[str | None] = mapped_column(String(64), index=True)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    disposition: Mapped[str | None] = mapped_column(String(32))
    lp_number: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime]
    polres: Mapped[str | None] = mapped_column(String(64), index=True)
    location_verified: Mapped[bool] = mapped_column(Boolean, default=True)
    location_note: Mapped[str | None] = mapped_column(Text)
    category_confidence: Mapped[float | None] = mapped_column(Float)
    category_low_confidence: Mapped[bool] = mapped_column(Boolean, default=False)
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    assistance_request: Mapped[bool] = mapped_column(Boolean, default=False)
    response_plan: Mapped[list[Any]] = mapped_column(JSON, default=list)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    merged_into: Mapped[str | None] = mapped_column(String(64))
    scene_status: Mapped[str | None] = mapped_column(String(32))  # on_scene, tptkp, scene_secured, olah_tkp, scene_released
    close_summary: Mapped[str | None] = mapped_column(Text)
    apco_code: Mapped[str | None] = mapped_column(String(8))
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    shareable: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A new value each time the projection changes anything the incident's page shows (its
    # assignments, timeline, TKP, ...): the API serves a page it built while this is unchanged.
    # Random, not a counter, so that a rebuilt read model never repeats a value a page was kept under.
    revision: Mapped[str | None] = mapped_column(String(32))


class Escalation(Base):
    """What is put before the supervisor: declined or undecided assistance requests, breaches."""

    __tablename__ = "escalations"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    why: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    escalated_at: Mapped[datetime]


class Recommendation(Base):
    __tablename__ = "recommendations"
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200))
    candidates: Mapped[list[Any]]
    excluded: Mapped[list[Any]]
    recommended_at: Mapped[datetime]
    excluded_counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    shortfalls: Mapped[list[Any] | None] = mapped_column(JSON)
    trigger: Mapped[str | None] = mapped_column(String(64))


class Unit(Base):
    __tablename__ = "units"
    unit_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    callsign: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    station: Mapped[str] = mapped_column(String(200))
    capabilities: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(32), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(64))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    position_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    status_version: Mapped[int] = mapped_column(Integer, default=0)
    status_since: Mapped[datetime | None]
    shift_start_h: Mapped[int | None] = mapped_column(Integer)
    shift_end_h: Mapped[int | None] = mapped_column(Integer)
    jurisdiction: Mapped[str | None] = mapped_column(String(64), index=True)
    signed_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")  # on the field app
    signed_in_at: Mapped[datetime | None]


class Assignment(Base):
    __tablename__ = "assignments"
    assignment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    unit_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(32))
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime]
    callsign: Mapped[str | None] = mapped_column(String(64))
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    warning: Mapped[str | None] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None]
    en_route_at: Mapped[datetime | None]
    arrived_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)


class IncidentIntervals(Base):
    """The standard intervals of an incident (DOMAIN.md): the first time each step happened."""

    __tablename__ = "incident_intervals"
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    jurisdiction: Mapped[str | None] = mapped_column(String(64), index=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    dispatched_at: Mapped[datetime | None]
    en_route_at: Mapped[datetime | None]
    on_scene_at: Mapped[datetime | None]


class CommandOutcome(Base):
    """What a command led to, by its id: what the API waits on to answer 201 or 409."""

    __tablename__ = "command_outcomes"
    command_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    accepted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class TimelineEntry(Base):
    """What happened to an incident, in order: the incident's own history."""

    __tablename__ = "timeline"
    entry_id: Mapped[str] = mapped_column(String(220), primary_key=True)  # the event id, or id/suffix
    event_id: Mapped[str] = mapped_column(String(200), ForeignKey("processed_events.event_id"), index=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime]
    type: Mapped[str] = mapped_column(String(200))
    actor: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    # The incident's timeline is a hash chain (services/tkp/chain.py) in the order it was written:
    # an entry edited or removed afterwards shows when the chain is verified on read.
    seq: Mapped[int | None] = mapped_column(Integer, index=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class TkpRecord(Base):
    """A record the tkp service wrote for an incident, with its link in the incident's chain, as
    it came: chain_valid on read recomputes every link."""

    __tablename__ = "tkp_records"
    record_id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the event id
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    type: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), index=True)


class SceneStep(Base):
    __tablename__ = "scene_steps"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    phase: Mapped[str] = mapped_column(String(16))
    step: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    by: Mapped[str] = mapped_column(String(200))
    unit_id: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[dict[str, Any] | None]
    out_of_order: Mapped[list[Any]]
    warning: Mapped[str | None] = mapped_column(Text)


class Evidence(Base):
    __tablename__ = "evidence"
    evidence_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    description: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(100))
    seal_number: Mapped[str] = mapped_column(String(100))
    found_at: Mapped[dict[str, Any] | None]
    found_where: Mapped[str | None] = mapped_column(Text)
    media: Mapped[list[Any]]
    collected_by: Mapped[str] = mapped_column(String(200))
    collected_at: Mapped[datetime]
    holder: Mapped[str] = mapped_column(String(200))
    corrections: Mapped[list[Any]]


class CustodyRecord(Base):
    __tablename__ = "custody_records"
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    evidence_id: Mapped[str] = mapped_column(String(64), index=True)
    incident_id: Mapped[str] = mapped_column(String(64), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    from_holder: Mapped[str] = mapped_column(String(200))
    to: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime]


class SealClaim(Base):
    """Seal numbers are unique over every incident: the API claims one before the item is recorded
    (the first claim wins), and the projection records the seals of every registered item."""

    __tablename__ = "seal_claims"
    seal_number: Mapped[str] = mapped_column(String(100), primary_key=True)
    evidence_id: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime]


class Duty(Base):
    __tablename__ = "duties"
    duty_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    unit_ids: Mapped[list[Any]]
    incident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    area: Mapped[str | None] = mapped_column(Text)
    route: Mapped[str | None] = mapped_column(Text)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    check_in_every_min: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # active | completed
    last_check_in_at: Mapped[datetime | None]
    missed_check_ins: Mapped[int] = mapped_column(Integer, default=0)
    assigned_by: Mapped[str] = mapped_column(String(200))
    completed_at: Mapped[datetime | None]


class LegalDeadlineRow(Base):
    __tablename__ = "legal_deadlines"
    incident_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(16))
    words: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime]
    overdue_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    reference: Mapped[str | None] = mapped_column(String(200))


class NotificationRow(Base):
    """A notification delivered or given up on (`notification.failed`: the dead letters of notify)."""

    __tablename__ = "notifications"
    notification_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    incident_id: Mapped[str | None] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(64))
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(8), index=True)  # sent | failed
    attempts: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class IdempotentRequest(Base):
    """A write the API already answered, by the caller's Idempotency-Key."""

    __tablename__ = "idempotent_requests"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


# Connections kept open: the API serves each request from a thread pool of 40 (anyio's), and with
# SQLAlchemy's default of 5 every busier moment opened and closed connections, each one setting
# its pragmas, and closing SQLite's last connection checkpoints the WAL: an incident read cost
# 10 ms of CPU instead of 2 (benchmarks/api.py).
POOL_SIZE, POOL_OVERFLOW = 40, 10


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")  # one connection, no pool to size
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                               **({} if in_memory else {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW}))

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            # WAL lets the API read while the projection writes.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=POOL_SIZE // 2, max_overflow=POOL_OVERFLOW)


def prepare(url: str) -> sessionmaker:
    """An engine with the schema in place, and its session factory."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    migrate(engine)
    return sessionmaker(engine, expire_on_commit=False)


def answers_beside(url: str) -> str | None:
    """The database of the API's answers to Idempotency-Keys when it is not the read model's own:
    beside a SQLite read model file, a file of its own (`spkt.db` → `spkt-answers.db`)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return f"sqlite:///{path.with_name(path.stem + '-answers' + path.suffix)}"


def prepare_for_api(url: str) -> sessionmaker:
    """The API's sessions: the read model, and on SQLite the answers to Idempotency-Keys in a file
    of their own (`answers_beside`); with any other database they stay in the read model's table.

    Why: SQLite has one write lock a file, and the API stores an answer for every report while the
    projection writes every batch of events. At 50 reports a second each waited for the other
    (SQLite's busy handler sleeps 1, 2, 5, 10 ms... between tries), and a batch of the projection's
    took 7 ms at the median and up to 209 ms; without the API's writes, 4.6 and 70 ms
    (benchmarks/pipeline.py, docs/performance.md). A session reaches the answers' file only for
    `IdempotentRequest` (SQLAlchemy's per-mapper binds), so the routes are the same either way."""
    sessions = prepare(url)
    beside = answers_beside(url)
    if beside is None:
        return sessions
    answers = make_engine(beside)
    table = IdempotentRequest.__table__
    with answers.begin() as connection:
        connection.execute(CreateTable(table, if_not_exists=True))
        empty = connection.execute(select(table.c.key).limit(1)).first() is None
    if empty:  # answers given before they had a file of their own are kept: a repeat still gets them
        with sessions.kw["bind"].connect() as old, answers.begin() as connection:
            rows = old.execute(select(table)).mappings()
            while chunk := [dict(row) for row in rows.fetchmany(1000)]:
                connection.execute(insert(table).prefix_with("OR IGNORE"), chunk)
    return sessionmaker(bind=sessions.kw["bind"], binds={IdempotentRequest: answers}, expire_on_commit=False)


def dispose(sessions: sessionmaker) -> None:
    """Close every engine `sessions` uses (the read model's, and the answers' if apart)."""
    for engine in {sessions.kw["bind"], *sessions.kw.get("binds", {}).values()}:
        engine.dispose()


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"  # the schema as it stood when migrations began


def _columns_at(revision: str) -> set[str]:
    """table.column of the schema at `revision` (made in a scratch in-memory database)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    scratch = create_engine("sqlite://")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with scratch.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            inspector = inspect(connection)
            return {f"{table}.{c['name']}" for table in inspector.get_table_names() if table != "alembic_version"
                    for c in inspector.get_columns(table)}
    finally:
        scratch.dispose()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (services/projection/migrations).

    A database made before there were migrations (tables, no alembic_version) is checked against
    the models and stamped when it matches; processes starting at once take turns (a lock)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect, text

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _one_at_a_time(engine), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(7411)"))  # the API and the projection start together
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if tables and "alembic_version" not in tables:
            # Made before migrations: the first revision's schema, then upgraded like any other.
            _check_columns(connection, engine.url, _columns_at(FIRST_REVISION))
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")


@contextmanager
def _one_at_a_time(engine: Engine):
    """SQLite runs DDL outside transactions: processes migrating one file take turns on a lock file."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class OutdatedReadModel(RuntimeError):
    """The database was made by an older version (there are no migrations yet)."""


def _check_columns(bind, url, required: set[str]) -> None:
    """create_all adds missing tables, never missing columns: say so plainly instead of failing on
    the first write. The read model is a projection of Kafka, so a fresh one loses nothing."""
    from sqlalchemy import inspect

    inspector = inspect(bind)
    present = {f"{table}.{c['name']}" for table in inspector.get_table_names() for c in inspector.get_columns(table)}
    missing = sorted(required - present)
    if missing:
        raise OutdatedReadModel(
            f"the read model at {url.render_as_string(hide_password=True)} was made by an older version "
            f"(missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}); it is rebuilt from Kafka: "
            "remove it (SQLite: delete the file) and start again")
