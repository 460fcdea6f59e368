"""The API while the broker is down: 503 with Retry-After within the publisher's bound, never a 202
for a report the broker did not acknowledge, and accepting again by itself once the broker is back.
Every report answered 202 becomes an incident; none answered 503 is ever written.

The broker is this test's own (the project's deploy code, on its own ports and data folder), since
it is killed: the session's broker serves the other tests."""
import os
import signal
import time
import uuid

import pytest

from deploy.kafka import KafkaCluster, free_port_block
from deploy.topics import create_topics
from schemas import topics
from services.api.auth import Role
from spkt.settings import Settings
from tests.support import alive, api_client, events_on, running_system, wait_for

pytestmark = pytest.mark.e2e

SPOT = (-6.1214, 106.7741)  # Pluit: away from the other end-to-end tests' units
ACK_TIMEOUT_S = 10.0  # the default: what a deployment runs with


@pytest.fixture
def own_broker(tmp_path):
    port, controller = free_port_block(1)
    broker = Settings(kafka_port=port, kafka_controller_port=controller, kafka_data_dir=tmp_path / "kafka",
                      state_dir=tmp_path, cache_dir=Settings().cache_dir)
    cluster = KafkaCluster(broker)
    cluster.up()
    try:
        create_topics(broker)
        yield cluster, Settings(kafka_bootstrap=broker.bootstrap, state_dir=tmp_path, kafka_session_timeout_s=6.0,
                                jwt_secret="test-secret-" + "x" * 32, ack_timeout_s=ACK_TIMEOUT_S)
    finally:
        cluster.down()


def file_report(client, marker: str, n: int):
    started = time.monotonic()
    r = client.post("/api/v1/reports", json={
        "channel": "phone_110", "category": "theft", "description": f"Uji gangguan broker {marker}",
        "location": {"lat": SPOT[0] + 0.01 * (n % 7), "lon": SPOT[1] + 0.01 * (n // 7)}})
    return r, time.monotonic() - started


def test_reports_while_the_broker_is_down_get_503_and_none_is_lost_or_recorded_after_all(own_broker, tmp_path):
    cluster, kafka_settings = own_broker
    accepted: dict[str, str] = {}  # marker -> report id
    refused: list[str] = []
    n = 0

    def attempt(client):
        nonlocal n
        n += 1
        marker = f"#{n}-{uuid.uuid4().hex[:10]}"
        r, took = file_report(client, marker, n)
        if r.status_code == 202:
            accepted[marker] = r.json()["report_id"]
        elif r.status_code == 503:
            refused.append(marker)
        return r, took

    with running_system(kafka_settings, tmp_path / "state") as system, \
            api_client(system, Role.call_taker, timeout=ACK_TIMEOUT_S * 3) as taker:
        for _ in range(4):
            r, _ = attempt(taker)
            assert r.status_code == 202, r.text

        (pid,) = cluster.pids()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), timeout=10, what="the broker gone")

        for _ in range(4):
            r, took = attempt(taker)
            assert r.status_code == 503, r.text
            assert int(r.headers["Retry-After"]) >= 1 and "belum tercatat" in r.json()["detail"]
            assert took < ACK_TIMEOUT_S + 3, f"a request hung {took:.1f} s with the broker away"
        assert len(accepted) == 4 and len(refused) == 4

        cluster.up()
        back = time.monotonic()

        def accepting():
            r, took = attempt(taker)
            assert r.status_code in (202, 503), r.text
            assert took < ACK_TIMEOUT_S + 3, f"a request hung {took:.1f} s while the broker came back"
            return r.status_code == 202
        wait_for(accepting, timeout=60, interval=0.5, what="a report accepted again, the API not restarted")
        recovered_in = time.monotonic() - back
        for _ in range(3):
            r, _ = attempt(taker)
            assert r.status_code == 202, r.text

        def on_incidents():
            missing = [m for m, rid in accepted.items()
                       if not taker.get(f"/api/v1/reports/{rid}").json().get("incident_id")]
            return not missing
        wait_for(on_incidents, timeout=180, interval=0.5,
                 what=f"every accepted report on an incident (accepted {len(accepted)}, "
                      f"API accepting {recovered_in:.0f} s after the broker was back)")

        written = {e.data.get("description", "").removeprefix("Uji gangguan broker ")
                   for e in events_on(system, topics.REPORTS) if e.type == "report.received"}
        assert set(accepted) <= written
        assert [m for m in refused if m in written] == [], "reports answered 503 were recorded after all"
        assert len(refused) >= 4
