"""The topic catalogue: one place in code, the same table in the docs."""
from pathlib import Path

from schemas.registry import REGISTRY
from schemas.topics import BY_NAME, CATALOGUE, topic_for
from spkt.catalogue import catalogue_rows, markdown_table
from spkt.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "topics.md"


def default_settings() -> Settings:
    fields = Settings.model_fields
    return Settings(topic_partitions=fields["topic_partitions"].default,
                    positions_retention_ms=fields["positions_retention_ms"].default,
                    topic_replication=fields["topic_replication"].default)


def test_docs_show_the_catalogue_table():
    text = DOCS.read_text()
    table = text.split("<!-- catalogue -->\n", 1)[1].split("<!-- /catalogue -->", 1)[0]
    assert table == markdown_table(catalogue_rows(default_settings())), "regenerate: spkt topics list --markdown"


def test_every_event_type_has_exactly_one_topic():
    carried = [t for spec in CATALOGUE for t in spec.event_types]
    assert sorted(carried) == sorted(REGISTRY)
    assert topic_for("incident.opened") == "spkt.incidents"


def test_the_catalogue_covers_every_flow_the_platform_needs():
    wanted = {"spkt.reports", "spkt.incidents", "spkt.assignments", "spkt.unit-status", "spkt.unit-positions",
              "spkt.tkp", "spkt.turjawali", "spkt.closures", "spkt.notifications", "spkt.commands", "spkt.unit-commands",
              "spkt.dead-letters"}
    assert set(BY_NAME) == wanted
    rows = {r["name"]: r for r in catalogue_rows(default_settings())}
    assert rows["spkt.unit-positions"]["retention"] == "24 h"
    assert all(r["retention"] == "forever" for n, r in rows.items() if n != "spkt.unit-positions")


def test_the_tables_changelogs_are_the_ones_the_apps_use():
    """`spkt topics create` makes the changelogs before any worker starts (schemas/topics.py, TABLES)."""
    from schemas.topics import CHANGELOGS, TABLES, changelog_topic
    from services.dispatch.app import app as dispatch_app
    from services.intake.app import app as intake_app

    for service, app in (("intake", intake_app), ("dispatch", dispatch_app)):
        assert sorted(app.tables) == sorted(TABLES[service]), service
        for name, table in app.tables.items():
            assert table.changelog_topic.get_topic_name() == changelog_topic(service, name)
    assert {spec.name for spec in CHANGELOGS} >= {changelog_topic("dispatch", "unit-holds")}
    assert all(spec.compact and not spec.event_types for spec in CHANGELOGS)
