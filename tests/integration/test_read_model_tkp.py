"""The read model's TKP handlers on SQLite and PostgreSQL: steps, evidence and custody, closure, and the
hash chains computed on read — an edited, removed or reordered record is found. No broker."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select, text, update

from schemas.events import (
    CloseIncident, IncidentOpened, Location, LpRegistered, RecordSceneStep, RegisterEvidence, TransferCustody,
    UnitArrived,
)
from schemas.registry import make_event
from services.projection import tables as t
from services.projection.projector import Projector

from .page_watch import PageWatchingProjector
from services.projection.verify import incident_chains, timeline_chain, tkp_chain
from services.tkp import records

T0 = datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)
INC = "inc-tkp-1"


@pytest.fixture
def sessions(database_url):
    made = t.prepare(database_url)
    yield made
    made.kw["bind"].dispose()


def run_scene(projector: Projector) -> None:
    """A scene as the tkp worker would write it (records.*), applied to the read model."""
    scene = records.new_scene(INC)
    opened = IncidentOpened(incident_id=INC, number="KJD/UJI/000001", report_ids=[], category="pickpocketing",
                            priority="P3", summary="Copet di pasar", location=Location(lat=-6.2, lon=106.8),
                            opened_at=T0, polres="polres-uji")
    out = [opened, *records.on_incident_event(scene, opened, T0)]
    out += records.on_incident_event(scene, UnitArrived(incident_id=INC, unit_id="u1", arrived_at=T0), T0)
    for n, name in enumerate(("arrival_reported", "witnesses_recorded")):
        out += records.on_command(scene, RecordSceneStep(command_id=f"c-{name}", incident_id=INC, phase="tptkp",
                                                         step=name, recorded_by="u1",
                                                         recorded_at=T0 + timedelta(minutes=n)), T0)
    out += records.on_command(scene, RegisterEvidence(command_id="c-bb", incident_id=INC, evidence_id="bb-1",
                                                      description="Dompet", kind="barang", seal_number="SGL-1",
                                                      collected_by="u1", collected_at=T0), T0)
    for n, to in enumerate(("Penyidik", "Tahti")):
        out += records.on_command(scene, TransferCustody(command_id=f"c-t{n}", incident_id=INC, evidence_id="bb-1",
                                                         to=to, reason="serah terima", by="u1",
                                                         at=T0 + timedelta(hours=n + 1)), T0)
    out += records.on_command(scene, CloseIncident(command_id="c-close", incident_id=INC, area="polres-uji",
                                                   disposition="lp_made", lp_model="B", closed_by="spv",
                                                   requested_at=T0), T0)
    out += records.on_incident_event(scene, LpRegistered(
        lp_number="LP/B/1/XI/2026/SPKT/POLRES UJI", model="B", office="POLRES UJI", sequence=1, year=2026,
        report_id="", registered_at=T0, incident_id=INC, command_id="c-close"), T0)
    for n, event in enumerate(e for e in out if e.event_type != "register-lp"):
        assert projector.apply(make_event(event, source="/test", time=T0 + timedelta(seconds=n)), event)


def test_the_scene_in_the_read_model_and_its_chains_hold(sessions):
    run_scene(PageWatchingProjector(sessions))
    with sessions() as s:
        incident = s.get(t.Incident, INC)
        assert incident.status == "closed" and incident.lp_number == "LP/B/1/XI/2026/SPKT/POLRES UJI"
        assert incident.apco_code == "RPT" and incident.scene_status == "tptkp"
        assert [x.step for x in s.scalars(select(t.SceneStep).filter_by(incident_id=INC).order_by(t.SceneStep.at))] \
            == ["arrival_reported", "witnesses_recorded"]
        item = s.get(t.Evidence, "bb-1")
        assert item.holder == "Tahti" and s.get(t.SealClaim, "SGL-1").evidence_id == "bb-1"
        custody = s.scalars(select(t.CustodyRecord).order_by(t.CustodyRecord.sequence)).all()
        assert [(c.from_holder, c.to) for c in custody] == [("u1", "Penyidik"), ("Penyidik", "Tahti")]
        assert {d.key for d in s.scalars(select(t.LegalDeadlineRow).filter_by(incident_id=INC))} >= {"sp2hp-a1", "spdp"}
        assert s.get(t.CommandOutcome, "c-close").result["incident.closed"]["lp_number"].startswith("LP/B/1/")
        result = incident_chains(s, INC)
    assert result["valid"], result
    assert result["tkp"]["checked"] == 8 and result["timeline"]["checked"] >= 10


def test_an_edited_tkp_record_is_found_where_it_is(sessions):
    run_scene(PageWatchingProjector(sessions))
    with sessions.begin() as s:
        record = s.scalars(select(t.TkpRecord).filter_by(type="evidence.custody-transferred")).first()
        record.content = {**record.content, "to": "Gudang pribadi"}
        target = record.record_id
    with sessions() as s:
        check = tkp_chain(s, INC)
    assert not check.valid and check.record_id == target and "hash" in check.reason


def test_a_removed_tkp_record_breaks_the_chain_after_it(sessions):
    run_scene(PageWatchingProjector(sessions))
    with sessions.begin() as s:
        gone = s.scalars(select(t.TkpRecord).filter_by(type="evidence.registered")).first()
        s.execute(delete(t.TkpRecord).where(t.TkpRecord.record_id == gone.record_id))
    with sessions() as s:
        check = tkp_chain(s, INC)
    assert not check.valid and "prev_hash" in check.reason


def test_an_edited_or_reordered_timeline_entry_is_found(sessions):
    run_scene(PageWatchingProjector(sessions))
    with sessions() as s:
        assert timeline_chain(s, INC).valid
        entries = s.scalars(select(t.TimelineEntry).filter_by(incident_id=INC).order_by(t.TimelineEntry.seq)).all()
        third, fourth = entries[2], entries[3]
    with sessions.begin() as s:  # swap two entries' places
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == third.entry_id).values(seq=-1))
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == fourth.entry_id).values(seq=third.seq))
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == third.entry_id).values(seq=fourth.seq))
    with sessions() as s:
        check = timeline_chain(s, INC)
    assert not check.valid and check.broken_at == 2
    with sessions.begin() as s:  # put them back, then change what an entry says
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == third.entry_id).values(seq=-1))
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == fourth.entry_id).values(seq=fourth.seq))
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == third.entry_id).values(seq=third.seq))
    with sessions() as s:
        assert timeline_chain(s, INC).valid
    with sessions.begin() as s:
        s.execute(update(t.TimelineEntry).where(t.TimelineEntry.entry_id == fourth.entry_id)
                  .values(summary="tidak terjadi apa-apa"))
    with sessions() as s:
        check = timeline_chain(s, INC)
    assert not check.valid and check.broken_at == 3 and check.record_id == fourth.entry_id


def test_a_database_from_an_older_version_is_named_not_written_to(database_url):
    made = t.prepare(database_url)
    engine = made.kw["bind"]
    with engine.begin() as conn:  # as if made by create_all before the timeline was chained (no migrations yet)
        conn.exec_driver_sql("DROP INDEX ix_timeline_seq")
        conn.exec_driver_sql("ALTER TABLE timeline DROP COLUMN seq")
        conn.exec_driver_sql("DROP TABLE alembic_version")
    engine.dispose()
    with pytest.raises(t.OutdatedReadModel, match="timeline.seq"):
        t.prepare(database_url)


def test_a_database_from_before_migrations_that_matches_is_stamped(database_url):
    made = t.prepare(database_url)
    engine = made.kw["bind"]
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    with engine.begin() as conn:  # and as it stood then: before 0002 to 0006 added theirs
        conn.exec_driver_sql("ALTER TABLE incidents DROP COLUMN shareable")
        conn.exec_driver_sql("ALTER TABLE incidents DROP COLUMN revision")
        conn.exec_driver_sql("ALTER TABLE units DROP COLUMN signed_in")
        conn.exec_driver_sql("ALTER TABLE units DROP COLUMN signed_in_at")
        conn.exec_driver_sql("DROP TABLE waiting_events")
    engine.dispose()
    again = t.prepare(database_url)  # stamped 0001, then upgraded to the newest
    with again() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0006"
        assert s.execute(text("SELECT count(shareable) FROM incidents")).scalar() == 0
        assert s.execute(text("SELECT count(signed_in) FROM units")).scalar() == 0
        assert s.execute(text("SELECT count(*) FROM waiting_events")).scalar() == 0
    again.kw["bind"].dispose()


def test_the_migrations_make_exactly_the_models_schema(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    made = t.prepare(database_url)
    with made.kw["bind"].connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), t.Base.metadata)
    made.kw["bind"].dispose()
    assert diff == [], "models changed without a migration: alembic revision --autogenerate (see README)"


def test_what_waited_for_its_incident_before_0005_still_waits_for_it(database_url):
    """0005 renames waiting_events.incident_id to waits_for ("incident:<id>", "unit:<id>", ...)."""
    from alembic import command
    from alembic.config import Config

    made = t.prepare(database_url)
    engine = made.kw["bind"]
    config = Config()
    config.set_main_option("script_location", str(t.MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO waiting_events (event_id, incident_id, at, envelope) "
                          "VALUES ('e-1', 'inc-1', '2026-11-28 10:00:00', '{}')"))
    engine.dispose()
    again = t.prepare(database_url)  # upgraded to the newest
    with again() as s:
        row = s.get(t.WaitingEvent, "e-1")
        assert (row.waits_for, row.part) == ("incident:inc-1", 0)
    again.kw["bind"].dispose()
