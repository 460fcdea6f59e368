"""Worker readiness (the watchdog and its health file) and what `spkt status` makes of it."""
import asyncio
import json
import logging
import time
from pathlib import Path
from types import SimpleNamespace

from faust.types import TP
from typer.testing import CliRunner

from deploy.health import (STALE_AFTER_S, health_path, judged, read_health, status_report, status_rows,
                           write_health)
from deploy.stack import ProcessInfo
from services.streaming import OffsetKeeper
from spkt.settings import Settings
from tests.support import free_port
from tests.unit.test_offsets import FakeConsumer, FakeLookup

P0, P1 = TP("spkt.reports", 0), TP("spkt.reports", 1)


def keeper(tmp_path: Path, committed=None, ends=None, assigned=(P0,)):
    fake = FakeConsumer()
    fake.assigned, fake.ends = set(assigned), dict(ends or {})
    app = SimpleNamespace(consumer=fake, consumer_generation_id=3, crash=fake.crash,
                          flow_control=SimpleNamespace(is_active=lambda: True))
    k = OffsetKeeper(app, FakeLookup(fake, committed))
    k.stall_check_every_s = 0.0
    k.health_path, k.health_service = tmp_path / "run" / "health" / "intake.json", "intake"
    return k, app


def quiet_for(k: OffsetKeeper, seconds: float) -> None:
    """As if the assignment began, and nothing was handled, `seconds` ago."""
    k._start_generation()
    k.generation_at = time.monotonic() - seconds
    for tp in k.progress_at:
        k.progress_at[tp] = time.monotonic() - seconds


def run(coro):
    return asyncio.run(coro)


def test_a_partition_with_messages_waiting_and_no_progress_makes_the_worker_unready_and_says_so(tmp_path, caplog):
    k, app = keeper(tmp_path, committed={P0: 42}, ends={P0: 59}, assigned=(P0, P1))
    quiet_for(k, k.unready_after_s + 5)
    with caplog.at_level(logging.INFO, logger="services.streaming"):
        run(k.check_stalled())
    health = k.health()
    assert health["ready"] is False
    assert health["reason"].startswith("partition spkt.reports[0] stalled at offset 42 with 17 waiting for 15 s")
    assert not hasattr(app.consumer, "crashed")  # unready first; restarting comes later
    said = [r for r in caplog.records if r.levelno >= logging.WARNING and "unready" in r.getMessage()]
    assert len(said) == 1 and (said[0].topic, said[0].partition, said[0].offset, said[0].lag) == ("spkt.reports", 0, 42, 17)
    by_tp = {(p["topic"], p["partition"]): p for p in health["partitions"]}
    assert by_tp[("spkt.reports", 0)] | {"last_progress_at": None} == {
        "topic": "spkt.reports", "partition": 0, "position": 42, "end": 59, "lag": 17, "stalled": True,
        "last_progress_unix": None, "last_progress_at": None}
    assert by_tp[("spkt.reports", 1)]["stalled"] is False  # nothing waiting there: quiet is fine

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="services.streaming"):
        run(k.check_stalled())  # still stalled: not said again
    assert not [r for r in caplog.records if "unready" in r.getMessage()]

    k.handled(SimpleNamespace(tp=P0, offset=42))
    with caplog.at_level(logging.INFO, logger="services.streaming"):
        run(k.check_stalled())
    health = k.health()
    assert health["ready"] is True and health["reason"] is None
    assert any("making progress again" in r.getMessage() for r in caplog.records)
    assert health["last_progress_unix"] and abs(health["last_progress_unix"] - time.time()) < 5
    assert health["partitions"][0]["position"] == 43 and health["partitions"][0]["lag"] == 16


def test_a_partition_stalled_past_the_longer_bound_still_restarts_the_worker(tmp_path):
    k, app = keeper(tmp_path, committed={P0: 10}, ends={P0: 12})
    quiet_for(k, k.stall_after_s + 1)
    run(k.check_stalled())
    assert "stalled at offset 10" in str(app.consumer.crashed)
    written = json.loads(k.health_path.read_text())  # what it last said, before going
    assert written["ready"] is False and "stalled at offset 10 with 2 waiting" in written["reason"]


def test_a_worker_busy_with_other_partitions_is_unready_but_restarts_only_past_the_busy_bound(tmp_path):
    """A surge on one agent keeps the others waiting: behind, not stuck; a restart would only replay."""
    k, app = keeper(tmp_path, committed={P0: 10, P1: 100}, ends={P0: 12, P1: 900}, assigned=(P0, P1))
    quiet_for(k, k.stall_after_s + 1)
    k.handled(SimpleNamespace(tp=P1, offset=100))  # P1 is being worked through
    run(k.check_stalled())
    assert k.health()["ready"] is False and not hasattr(app.consumer, "crashed")
    quiet_for(k, k.busy_stall_after_s + 1)
    k.handled(SimpleNamespace(tp=P1, offset=101))
    run(k.check_stalled())
    assert "stalled at offset 10" in str(app.consumer.crashed)


def test_quiet_partitions_with_nothing_waiting_keep_the_worker_ready(tmp_path):
    k, app = keeper(tmp_path, committed={P0: 10}, ends={P0: 10})
    quiet_for(k, k.stall_after_s + 100)
    run(k.check_stalled())
    assert k.health()["ready"] is True and not hasattr(app.consumer, "crashed")


def test_a_worker_between_assignments_is_unready(tmp_path):
    k, app = keeper(tmp_path)
    app.consumer_generation_id = 0
    assert (k.health()["ready"], k.health()["reason"]) == (False, "joining the consumer group")
    app.consumer_generation_id, app.flow_control = 4, SimpleNamespace(is_active=lambda: False)
    assert (k.health()["ready"], k.health()["reason"]) == (False, "rebalancing")


def test_a_rebalance_that_never_ends_restarts_the_worker_and_recovery_gets_longer(tmp_path, caplog):
    """A member that left the group with full buffers waits for a fetch to rejoin, and faust for an
    assignment to fetch: nothing ends that but a restart (seen in benchmarks/memory.py)."""
    k, app = keeper(tmp_path, committed={P0: 10}, ends={P0: 12})
    app.flow_control = SimpleNamespace(is_active=lambda: False)
    app.in_recovery = False
    run(k.check_stalled())  # the first check that sees it starts the clock
    assert k.paused_since is not None and not hasattr(app.consumer, "crashed")
    k.paused_since -= k.rebalance_stuck_after_s - 5
    run(k.check_stalled())
    assert not hasattr(app.consumer, "crashed")
    assert k.health()["reason"] == f"rebalancing for {k.rebalance_stuck_after_s - 5:.0f} s"

    app.in_recovery = True  # replaying changelogs: the longer bound
    k.paused_since -= 10
    run(k.check_stalled())
    assert not hasattr(app.consumer, "crashed")
    k.paused_since -= k.recovery_stuck_after_s
    with caplog.at_level(logging.ERROR, logger="services.streaming"):
        run(k.check_stalled())
    assert "recovering its tables for" in str(app.consumer.crashed)
    assert any("restarting the worker" in r.getMessage() for r in caplog.records)


def test_a_rebalance_that_ends_resets_the_clock(tmp_path):
    k, app = keeper(tmp_path, committed={P0: 10}, ends={P0: 10})
    active = [False]
    app.flow_control = SimpleNamespace(is_active=lambda: active[0])
    run(k.check_stalled())
    k.paused_since -= k.rebalance_stuck_after_s - 1
    active[0] = True
    run(k.check_stalled())
    assert k.paused_since is None
    active[0] = False
    run(k.check_stalled())
    run(k.check_stalled())
    assert not hasattr(app.consumer, "crashed")


def test_the_health_file_is_written_by_the_timer_about_once_a_second_and_replaced_whole(tmp_path):
    k, _ = keeper(tmp_path, committed={P0: 5}, ends={P0: 5})
    run(k.watch())
    k.health_writing.result(timeout=10)  # written by a thread of its own, off the event loop
    first = json.loads(k.health_path.read_text())
    assert first["service"] == "intake" and first["ready"] is True and first["generation"] == 3
    run(k.watch())  # within the second: not rewritten
    assert json.loads(k.health_path.read_text())["updated_unix"] == first["updated_unix"]
    k.stalled = {P0: SimpleNamespace(reason="made up")}
    k.last_health_write -= k.health_every_s
    k.write_health()
    k.health_writing.result(timeout=10)
    assert json.loads(k.health_path.read_text())["reason"] == "made up"
    assert [p.name for p in k.health_path.parent.iterdir()] == ["intake.json"]  # no temporary left behind


def test_a_health_write_still_waiting_for_the_disk_is_not_queued_behind(tmp_path):
    import threading

    k, _ = keeper(tmp_path, committed={P0: 5}, ends={P0: 5})
    disk = threading.Event()
    real = k._write_health_file
    k._write_health_file = lambda doc: (disk.wait(10), real(doc))
    k.write_health()
    held = k.health_writing
    assert not held.done() and not k.health_path.exists()  # the caller did not wait for the disk
    k.last_health_write -= k.health_every_s
    k.write_health()
    assert k.health_writing is held  # nothing piles up behind a slow disk
    disk.set()
    held.result(timeout=10)
    assert json.loads(k.health_path.read_text())["service"] == "intake"


def test_a_health_file_not_refreshed_means_a_stopped_or_hung_worker(tmp_path):
    settings = Settings(state_dir=tmp_path)
    write_health(health_path(settings, "dispatch"), {"ready": True, "reason": None, "updated_unix": time.time()})
    assert read_health(settings, "dispatch")["ready"] is True
    later = read_health(settings, "dispatch", now=time.time() + STALE_AFTER_S + 5)
    assert later["ready"] is False and "no health report for 15 s" in later["reason"]
    assert read_health(settings, "tkp") is None
    stalled = judged({"ready": False, "reason": "partition x stalled", "updated_unix": 0.0}, now=100.0)
    assert stalled["reason"].endswith("last said: partition x stalled")


def test_status_shows_each_process_its_readiness_and_progress_and_says_when_the_broker_is_down(tmp_path):
    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", api_port=free_port())  # nothing listens
    now = time.time()
    write_health(health_path(settings, "intake"), {"ready": True, "reason": None, "updated_unix": now - 1,
                                                   "last_progress_unix": now - 30, "partitions": []})
    write_health(health_path(settings, "dispatch"), {
        "ready": False, "reason": "partition spkt.incidents[2] stalled at offset 7 with 3 waiting for 12 s",
        "updated_unix": now - 1, "last_progress_unix": None})
    processes = [ProcessInfo("intake", "RUNNING", 101, tmp_path / "intake.log"),
                 ProcessInfo("dispatch", "RUNNING", 102, tmp_path / "dispatch.log"),
                 ProcessInfo("notify", "BACKOFF", 0, tmp_path / "notify.log"),
                 ProcessInfo("api", "RUNNING", 103, tmp_path / "api.log")]
    started = time.monotonic()
    report = status_report(settings, processes, now=now)
    assert time.monotonic() - started < 10  # the broker being down costs a bounded wait
    assert report["broker"]["reachable"] is False and report["broker"]["error"]
    s = {e["name"]: e for e in report["services"]}
    assert list(s) == ["intake", "dispatch", "notify", "api"]
    assert s["intake"]["ready"] is True and s["intake"]["pid"] == 101 and s["intake"]["last_progress_age_s"] == 30
    assert s["dispatch"]["ready"] is False and "spkt.incidents[2] stalled" in s["dispatch"]["reason"]
    assert s["notify"]["ready"] is False and s["notify"]["reason"] == "not running"
    assert s["api"]["state"] == "RUNNING" and s["api"]["ready"] is False and "/readyz" in s["api"]["reason"]
    assert all(s[n]["lag"] is None for n in ("intake", "dispatch", "notify"))
    rows = {r[0]: r for r in status_rows(report)}
    assert rows["intake"][1:6] == ("RUNNING", "101", "ready", "? (broker down)", "30 s ago")
    assert rows["dispatch"][3].startswith("UNREADY: partition spkt.incidents[2] stalled")
    assert rows["api"][3].startswith("UNREADY: /readyz did not answer") and rows["api"][4:6] == ("", "")
    json.dumps(report)  # --json prints it


def test_status_when_nothing_runs(tmp_path, monkeypatch):
    from spkt import cli

    monkeypatch.setattr(cli, "get_settings", lambda: Settings(state_dir=tmp_path))
    result = CliRunner().invoke(cli.app, ["status", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout) == {"running": False, "services": []}


def test_status_exits_0_only_when_everything_runs_and_is_ready(tmp_path, monkeypatch):
    from spkt import cli

    settings = Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1", api_port=free_port())
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    ready = {"broker": {"reachable": True}, "services": [
        {"name": "intake", "state": "RUNNING", "ready": True}, {"name": "demo", "state": "RUNNING"}]}
    assert cli.all_ready(ready)
    assert not cli.all_ready({**ready, "broker": {"reachable": False}})
    assert not cli.all_ready({**ready, "services": [{"name": "intake", "state": "RUNNING", "ready": False}]})
    assert not cli.all_ready({**ready, "services": [{"name": "demo", "state": "BACKOFF"}]})

    class Running:
        def __init__(self, *_a, **_k) -> None: ...

        def processes(self):
            return [ProcessInfo("intake", "RUNNING", 101, tmp_path / "intake.log")]

    import deploy.stack
    monkeypatch.setattr(deploy.stack, "Stack", Running)
    write_health(health_path(settings, "intake"), {"ready": False, "reason": "rebalancing", "updated_unix": time.time()})
    result = CliRunner().invoke(cli.app, ["status", "--json"])  # the broker cannot be reached either
    assert result.exit_code == cli.STATUS_UNREADY, result.output
    assert json.loads(result.stdout)["services"][0]["reason"] == "rebalancing"


def test_the_projections_lag_counts_its_gps_positions_group_over_what_its_faust_group_once_committed():
    from deploy.health import GroupLag, _together

    faust = GroupLag("spkt-projection", lag=3, partitions={"spkt.incidents[0]": 3, "spkt.unit-positions[0]": 900})
    positions = GroupLag("spkt-projection-positions", lag=5, partitions={"spkt.unit-positions[0]": 5})
    both = _together([faust, positions])
    assert both.lag == 8 and both.partitions == {"spkt.incidents[0]": 3, "spkt.unit-positions[0]": 5}
    assert _together([faust, GroupLag("spkt-projection-positions", error="no coordinator")]).error == "no coordinator"
    assert _together([None, positions]) is None
    assert _together([faust]).lag == 903
