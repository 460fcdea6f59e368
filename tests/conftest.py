"""Shared fixtures. Integration and end-to-end fixtures live in their own conftest files."""
from datetime import datetime, timezone

from contextlib import contextmanager

import pytest

from schemas.events import Location, ReportReceived, Reporter

AT = datetime(2026, 11, 27, 21, 0, tzinfo=timezone.utc)


@pytest.fixture
def report() -> ReportReceived:
    return ReportReceived(
        report_id="3b9a4f0e-1111-4a2b-9c3d-000000000001", tracking_code="SPKT-ABCD-EFGH", channel="phone_110",
        reporter=Reporter(name="Siti", phone="+6281234567890"),
        description="Motor dicuri di parkiran minimarket, pelaku dua orang",
        location=Location(lat=-6.2441, lon=106.8001, address="Jl. Melawai Raya"),
        received_at=AT,
    )


# --- the real broker, one for the whole session -------------------------------------------------
@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory):
    """Settings pointing at a broker for this test session, with the topics created.

    SPKT_TEST_KAFKA_BOOTSTRAP names an existing cluster; otherwise the project's own deploy code
    starts one on free loopback ports beside anything else running (a demo included).
    """
    import os

    with own_kafka(tmp_path_factory.mktemp("kafka-session"), os.environ.get("SPKT_TEST_KAFKA_BOOTSTRAP")) as settings:
        yield settings


def own_kafka(base, external: str | None = None):
    """A broker of its own (the project's deploy code, free loopback ports) with the topics created,
    for tests whose volume would slow every later test's projection (it replays the whole history)."""
    from benchmarks.system import own_broker

    return own_broker(base, external)


@pytest.fixture
def settings_for(kafka_settings, tmp_path):
    """Settings for one test's own processes: its own state folder, database and API port."""
    from tests.support import free_port

    def make(**overrides):
        values = dict(kafka_settings.model_dump(), state_dir=tmp_path / "state", api_port=free_port(),
                      database_url=f"sqlite:///{tmp_path / 'state' / 'spkt.db'}")
        values.update(overrides)
        return type(kafka_settings)(**values)

    return make


# --- the read model's databases ----------------------------------------------------------------
def _postgres_admin_url() -> str:
    import os

    return os.environ.get("SPKT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each read-model test runs on SQLite and on PostgreSQL (a database made and dropped for it)."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


@contextmanager
def fresh_database(kind: str, folder):
    """A new, empty read-model database: a SQLite file in `folder`, or a PostgreSQL database made
    for the caller and dropped after it."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'read-model.db'}"
        return
    import os
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL not reachable at {_postgres_admin_url()} ({exc.orig})"
        if os.environ.get("CI"):
            pytest.fail(message + " — .ci/run starts it")
        pytest.skip(message + "; set SPKT_TEST_POSTGRES_URL or start it (see TESTING.md)")
    name = f"spkt_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
