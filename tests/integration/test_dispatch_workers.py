"""Dispatch workers on the real broker: no unit assigned twice, and a killed worker keeps its board."""
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from kafka import KafkaProducer

from deploy.stack import group_members
from schemas import topics
from schemas.envelope import utcnow
from schemas.events import (
    AssignUnit, ChangeUnitStatus, IncidentOpened, Location, UnitPositionReported, UnitRegistered,
)
from schemas.registry import make_event
from tests.conftest import own_kafka
from tests.support import Process, events_on, publish, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka_settings(tmp_path_factory):
    """A broker of this module's own: a dispatch worker starting on the session's broker first
    rebuilds every earlier test's units and holds, and in CI that once took past the waits below."""
    with own_kafka(tmp_path_factory.mktemp("kafka-dispatch-workers")) as settings:
        yield settings

GROUP = "spkt-dispatch"
ATTEMPTS, ROUNDS = 12, 4
SCENE = (-6.2250, 106.8000)


def register(settings, unit_id: str, kind: str = "car") -> None:
    publish(settings, topics.UNIT_STATUS, make_event(
        UnitRegistered(unit_id=unit_id, callsign=unit_id.upper(), kind=kind, station="polsek-uji",
                       registered_at=utcnow()), source="/test"))


def position(settings, unit_id: str, lat: float, lon: float, age: timedelta = timedelta(0)) -> None:
    publish(settings, topics.UNIT_POSITIONS, make_event(
        UnitPositionReported(unit_id=unit_id, lat=lat, lon=lon, at=utcnow() - age), source="/test"))


def change(settings, unit_id: str, status: str, supervise=lambda: None) -> None:
    """A status change through dispatch, waited for: proves the worker owning the unit knows it.

    Registration and commands are two topics, read in no fixed order: a command read first is
    refused ("tidak terdaftar"), and is sent again.
    """
    for _ in range(10):
        cmd = ChangeUnitStatus(command_id=str(uuid.uuid4()), unit_id=unit_id, status=status,
                               requested_by="test-dispatcher", requested_at=utcnow(), reason="uji")
        publish(settings, topics.UNIT_COMMANDS, make_event(cmd, source="/test", event_id=cmd.command_id))

        def outcome():
            supervise()
            for topic in (topics.UNIT_STATUS, topics.INCIDENTS):
                for e in events_on(settings, topic):
                    if e.data.get("command_id") == cmd.command_id:
                        return e
            return None
        event = wait_for(outcome, timeout=90, interval=0.5, what=f"an outcome for {unit_id} -> {status}")
        if event.type == "unit.status-changed":
            return
        assert "tidak terdaftar" in event.data["reason"], event.data
    raise AssertionError(f"{unit_id} never became known to dispatch")


def command(unit_id: str, incident_id: str) -> AssignUnit:
    return AssignUnit(command_id=str(uuid.uuid4()), unit_id=unit_id, incident_id=incident_id,
                      requested_by="test-dispatcher", requested_at=utcnow())


def outcomes(settings, command_ids: set[str]) -> dict[str, list[str]]:
    """command id -> the outcome event types seen for it (assigned or rejected)."""
    seen: dict[str, list[str]] = {}
    for topic in (topics.ASSIGNMENTS, topics.INCIDENTS):
        for e in events_on(settings, topic):
            if e.type in ("unit.assigned", "command.rejected") and e.data.get("command_id") in command_ids:
                seen.setdefault(e.data["command_id"], []).append(e.type)
    return seen


def test_many_dispatchers_assigning_one_unit_at_once_give_exactly_one_winner(settings_for, tmp_path):
    settings = settings_for()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    workers = [Process(["run", "dispatch"], settings, tmp_path / f"dispatch-{n}.log") for n in range(2)]
    producers = [KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all") for _ in range(4)]
    try:
        wait_for(lambda: group_members(settings, GROUP) == 2, timeout=90, interval=0.5,
                 what="two dispatch workers in the group")
        unit = f"race-{uuid.uuid4().hex[:8]}"
        register(settings, unit)
        change(settings, unit, "break")  # registration and commands are two topics: wait until it is known
        change(settings, unit, "available")
        for round_ in range(ROUNDS):
            attempts = [command(unit, f"inc-{unit}-{round_}-{n}") for n in range(ATTEMPTS)]

            def send(n: int):  # four producers, so the commands really arrive interleaved
                envelope = make_event(attempts[n], source="/test", event_id=attempts[n].command_id)
                return producers[n % len(producers)].send(topics.UNIT_COMMANDS, value=envelope.to_bytes(),
                                                          key=unit.encode())
            with ThreadPoolExecutor(ATTEMPTS) as pool:
                for future in list(pool.map(send, range(ATTEMPTS))):
                    future.get(timeout=15)
            ids = {a.command_id for a in attempts}
            seen = wait_for(lambda: (s := outcomes(settings, ids)) and len(s) == ATTEMPTS and s, timeout=60,
                            interval=0.5, what=f"an outcome for each of {ATTEMPTS} attempts (round {round_})")
            winners = [cid for cid, types in seen.items() if "unit.assigned" in types]
            assert len(winners) == 1, f"round {round_}: {len(winners)} winners"
            assert all(types == ["command.rejected"] for cid, types in seen.items() if cid not in winners)
            change(settings, unit, "available")  # the dispatcher cancels: free for the next round
        reasons = [e.data["reason"] for e in events_on(settings, topics.INCIDENTS)
                   if e.type == "command.rejected" and e.data["command"] == "assign-unit" and unit.upper() in e.data["reason"]]
        assert len(reasons) == ROUNDS * (ATTEMPTS - 1)
        assert all("sedang ditugaskan" in r for r in reasons), reasons[:3]
    finally:
        for p in producers:
            p.close()
        for w in workers:
            w.stop()


def opened(incident_id: str) -> IncidentOpened:
    return IncidentOpened(incident_id=incident_id, number=f"KJD/UJI/{incident_id[-6:]}", report_ids=[incident_id],
                          category="street_robbery", priority="P2", summary="Penjambretan",
                          location=Location(lat=SCENE[0], lon=SCENE[1]), opened_at=utcnow(),
                          response_plan=[{"kind": "car", "count": 1, "capabilities": []}])


def recommendation_for(settings, incident_id: str, supervise=lambda: None) -> dict:
    def found():
        supervise()
        for e in events_on(settings, topics.ASSIGNMENTS):
            if e.type == "dispatch.recommended" and e.data["incident_id"] == incident_id:
                return e.data
        return None
    return wait_for(found, timeout=90, interval=0.5, what=f"a recommendation for {incident_id}")


def test_a_killed_dispatch_worker_comes_back_with_its_board_and_holds(settings_for, tmp_path):
    settings = settings_for()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    near, stale, busy = f"near-{run}", f"stale-{run}", f"busy-{run}"
    for unit in (near, stale, busy):
        register(settings, unit)
    position(settings, near, SCENE[0] + 0.004, SCENE[1])  # ~450 m
    position(settings, stale, SCENE[0] + 0.001, SCENE[1], age=timedelta(hours=2))  # nearer, but 2 h old
    position(settings, busy, SCENE[0] - 0.002, SCENE[1])
    workers = [Process(["run", "dispatch"], settings, tmp_path / "dispatch.log")]

    def supervise() -> None:
        """As supervisord does: a worker that stopped is started again. Besides the kill below,
        the watchdog restarts a worker whose consumer stopped delivering a partition (seen in CI
        at start: 1 command waiting and none handled for 20 s)."""
        if workers[-1].popen.poll() is not None:
            workers[-1].stop()
            workers.append(Process(["run", "dispatch"], settings, tmp_path / f"dispatch-{len(workers)}.log"))

    def supervised(probe):
        return lambda: (supervise(), probe())[1]
    try:
        # Ready as `spkt up` judges it: the group stable with this worker in it.
        wait_for(supervised(lambda: group_members(settings, GROUP) == 1), timeout=90, interval=0.5,
                 what=f"the dispatch worker alone in its group (log: {workers[-1].log})")
        change(settings, busy, "break", supervise)
        change(settings, busy, "available", supervise)
        first = command(busy, f"inc-{run}-busy")
        publish(settings, topics.UNIT_COMMANDS, make_event(first, source="/test", event_id=first.command_id))
        wait_for(supervised(lambda: outcomes(settings, {first.command_id}).get(first.command_id) == ["unit.assigned"]),
                 timeout=90, interval=0.5, what="the busy unit assigned")

        def check(recommendation: dict) -> None:
            candidates = [c["unit_id"] for c in recommendation["candidates"]]
            excluded = {x["unit_id"]: x["reason"] for x in recommendation["excluded"]}
            assert near in candidates, recommendation
            assert stale not in candidates and "kedaluwarsa" in excluded[stale], excluded.get(stale)
            assert busy not in candidates and "ditugaskan" in excluded[busy], excluded.get(busy)

        publish(settings, topics.INCIDENTS, make_event(opened(f"inc-{run}-a"), source="/test"))
        check(recommendation_for(settings, f"inc-{run}-a", supervise))

        workers[-1].popen.kill()  # SIGKILL: no goodbye, no last commit
        workers[-1].stop()
        workers.append(Process(["run", "dispatch"], settings, tmp_path / "dispatch-restarted.log"))
        publish(settings, topics.INCIDENTS, make_event(opened(f"inc-{run}-b"), source="/test"))
        check(recommendation_for(settings, f"inc-{run}-b", supervise))  # the board, rebuilt from Kafka
        again = command(busy, f"inc-{run}-b")  # the hold, restored: still one incident per unit
        publish(settings, topics.UNIT_COMMANDS, make_event(again, source="/test", event_id=again.command_id))
        refused = supervised(lambda: outcomes(settings, {again.command_id}).get(again.command_id)
                             == ["command.rejected"])
        wait_for(refused, timeout=90, interval=0.5, what="the second assignment of the busy unit refused")
    finally:
        for process in workers:
            process.stop()
