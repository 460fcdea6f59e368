"""Faults under load, on one system with its own single broker (it is killed here, so it is not the
session's). The load (tests/faults/load.py) runs around each fault; then it pauses, the system
drains, and tests/faults/checks.py checks everything written since the start:

- every report answered 202 is on exactly one incident; none recorded twice;
- no unit was ever active on two incidents;
- every notification reached the gateway, and none was delivered twice;
- consumer lag of every group is back to zero within a bound;
- (last) the read model equals a rebuild from Kafka.

The tests run in order and share the system: each fault's check also covers what every earlier
fault left behind. The read model is compared with a rebuild once, at the end, because the
comparison needs every writer stopped; a divergence any fault caused is still there then.

Notifications, exactly once: notify delivers, then records `notification.sent`
(services/notify/agents.py `_deliver_one`: `deliverer.deliver(...)` then `_say(...)`). A worker
killed between the gateway's 2xx and that record has delivered a message nobody recorded; the
next worker finds it still in the outbox and sends it again, with the same notification id as
`Idempotency-Key`. No sender can close that window on its own (the send and the record are two
systems); exactly-once to the phone rests on the gateway dropping a key it has seen, as real
SMS/WhatsApp gateways do, and as the gateway here does (tests/faults/gateway.py). So the suite
asserts: every notification recorded as sent arrived, every arrival was recorded, every receipt
and unit alert the work called for was sent, and no notification was DELIVERED twice (distinct
Idempotency-Keys per notification id). Raw resends under the same key are counted and printed
("resent*"), not failed.
"""
import os
import signal
import time

import pytest

from deploy.kafka import KafkaCluster, free_port_block
from deploy.stack import group_members
from deploy.topics import create_topics
from spkt.settings import Settings
from tests.faults import harness
from tests.support import Process, alive, wait_for

# Each test is bounded; the first also starts the broker and the system (about a minute on a busy box).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

SESSION_TIMEOUT_S = 6.0
PAUSED_PAST_SESSION_S = SESSION_TIMEOUT_S + 4.0  # deliberate: SIGSTOP this long, past the session timeout
BROKER_DOWN_S = 5.0                               # deliberate: the broker stays dead this long


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults-broker")
    port, controller = free_port_block(1)
    broker = Settings(kafka_port=port, kafka_controller_port=controller, kafka_data_dir=base / "kafka",
                      state_dir=base, cache_dir=Settings().cache_dir)
    cluster = KafkaCluster(broker)
    cluster.up()
    try:
        create_topics(broker)
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def system(cluster, tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    kafka = Settings(kafka_bootstrap=cluster.bootstrap, state_dir=folder, kafka_session_timeout_s=SESSION_TIMEOUT_S,
                     jwt_secret="test-secret-" + "x" * 32)
    started = time.monotonic()
    system = harness.start(kafka, folder, units=200, reports_per_s=3.0)
    print(f"\nfault suite: system up with {len(system.units)} units in {time.monotonic() - started:.0f} s")
    try:
        yield system
    finally:
        harness.stop(system)
        harness.print_table("fault suite (one broker)", system.rows)


@pytest.mark.parametrize("worker", ["intake", "dispatch", "tkp", "notify", "projection"])
def test_a_worker_killed_is_restarted_and_nothing_is_lost(system, worker):
    def inject():
        pid = system.pid_of(worker)
        before = harness.member_ids(system.settings, f"spkt-{worker}")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        system.wait_running(worker, not_pid=pid, not_members=before)
        return f"SIGKILL {worker}; back in its group after {time.monotonic() - killed:.0f} s"
    system.exercise(f"SIGKILL {worker}", inject)


def test_a_worker_paused_past_its_session_timeout_rejoins(system):
    def inject():
        pid = system.pid_of("dispatch")
        os.kill(pid, signal.SIGSTOP)
        try:
            system.load.run_for(PAUSED_PAST_SESSION_S)  # deliberate: past the session timeout
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        wait_for(lambda: group_members(system.settings, "spkt-dispatch") >= 1, timeout=90, interval=0.5,
                 what="dispatch back in its group after SIGCONT")
        same = "same process" if alive(pid) and system.pid_of("dispatch") == pid else "restarted"
        return (f"SIGSTOP dispatch {PAUSED_PAST_SESSION_S:.0f} s (session {SESSION_TIMEOUT_S:.0f} s); "
                f"rejoined {time.monotonic() - resumed:.0f} s after SIGCONT ({same})")
    system.exercise("SIGSTOP dispatch past session", inject)


def test_two_workers_of_intake_and_dispatch_one_killed(system):
    extra = {name: Process(["run", name], system.settings, system.folder / f"extra-{name}.log")
             for name in ("intake", "dispatch")}
    try:
        def inject():
            both = lambda: all(group_members(system.settings, f"spkt-{n}") == 2 for n in extra)  # noqa: E731
            wait_for(both, timeout=120, interval=0.5, what="two members in spkt-intake and spkt-dispatch")
            system.load.run_for(4.0)  # deliberate: load on the two workers before one dies
            for process in extra.values():
                os.kill(process.pid, signal.SIGKILL)
            killed = time.monotonic()
            for process in extra.values():
                process.popen.wait(10)
            one = lambda: all(group_members(system.settings, f"spkt-{n}") == 1 for n in extra)  # noqa: E731
            wait_for(one, timeout=90, interval=0.5, what="the survivors alone in their groups")
            return (f"2 workers each, SIGKILL one of each; survivors own all partitions after "
                    f"{time.monotonic() - killed:.0f} s")
        system.exercise("two workers, one killed", inject)
    finally:
        for process in extra.values():
            process.stop()


def test_the_broker_killed_and_restarted(system, cluster):
    def inject():
        (pid,) = cluster.pids()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not alive(pid), timeout=10, what="the broker gone")
        system.load.run_for(BROKER_DOWN_S)  # deliberate: the broker stays dead a while, the load goes on
        back = time.monotonic()
        cluster.up()
        system.all_running(timeout=150)
        return (f"SIGKILL broker {BROKER_DOWN_S:.0f} s; up and every worker in its group "
                f"{time.monotonic() - back:.0f} s after restart")
    system.exercise("SIGKILL broker + restart", inject, after_s=6.0)


def test_zz_the_read_model_equals_a_rebuild_from_kafka(system):
    differ, applied, rows = harness.read_model_equals_rebuild(system)
    print(f"\nread model vs rebuild: {applied} events applied, {rows} live rows compared, "
          f"{len(differ)} tables differ")
    assert differ == {}, differ
    assert applied > 0
