"""The watchdog: a worker whose partitions stop making progress while messages wait is unready, says
so in its log and its health file, and `spkt status` shows it; once it moves again it is ready."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timezone

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from deploy.health import health_path, read_health
from deploy.stack import Stack, settings_environment
from schemas.events import Location, Reporter, ReportReceived
from schemas.registry import make_event
from services.api.auth import Role
from tests.support import Process, api_client, publish, running_system, wait_for

SPOT = (-6.3020, 106.8950)  # Kramat Jati: away from the other tests' units

WORKER = textwrap.dedent('''
    """A worker of the project's own make (make_app, handle_each) whose handler blocks on a message
    saying "tahan" until the file named in argv[2] exists."""
    import asyncio
    import sys
    from pathlib import Path

    from faust import Worker

    from services.streaming import OffsetKeeper, handle_each, make_app, raw_topic
    from spkt.logs import logging_config
    from spkt.settings import get_settings

    OffsetKeeper.unready_after_s = 3.0
    OffsetKeeper.stall_after_s = 600.0  # only unready here; restarting is tested on its own
    topic_name, release = sys.argv[1], Path(sys.argv[2])
    settings = get_settings()
    app = make_app("watchdog", settings)

    async def handler(envelope, data, origin):
        if data.description == "tahan":
            while not release.exists():
                await asyncio.sleep(0.1)
        return []

    @app.agent(raw_topic(app, topic_name))
    async def blocked(stream):
        await handle_each(app, "watchdog", stream, handler)

    Worker(app, loglevel="info", quiet=True, logging_config=logging_config("watchdog", "INFO"),
           redirect_stdouts=False).execute_from_commandline()
''')


def one_partition_topic(settings, purpose: str) -> str:
    """A topic of its own for one test's worker."""
    topic = f"spkt.test-{purpose}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","))
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    return topic


def report(description: str):
    data = ReportReceived(report_id=str(uuid.uuid4()), tracking_code="SPKT-ABCD-EFGH", channel="phone_110",
                          reporter=Reporter(), description=description,
                          location=Location(lat=SPOT[0], lon=SPOT[1]), received_at=datetime.now(timezone.utc))
    return make_event(data, source="/spkt/test")


def test_a_blocked_handler_makes_the_worker_unready_with_the_partition_and_lag_then_ready_again(settings_for, tmp_path):
    settings = settings_for()
    topic = one_partition_topic(settings, "watchdog")
    script, release, log = tmp_path / "worker.py", tmp_path / "release", tmp_path / "watchdog.log"
    script.write_text(WORKER)
    worker = Process([topic, str(release)], settings, log, script=script)
    try:
        def health():
            doc = read_health(settings, "watchdog")
            return doc if doc and doc.get("pid") == worker.pid else None

        publish(settings, topic, report("biasa"))
        wait_for(lambda: (h := health()) and h["ready"] and h["last_progress_at"] and h["lag"] == 0,
                 timeout=90, interval=0.5, what=f"the worker ready, its message handled; log:\n{log.read_text()[-3000:]}")

        for text in ("tahan", "biasa", "biasa", "biasa"):
            publish(settings, topic, report(text))
        blocked = wait_for(lambda: (h := health()) and not h["ready"] and h, timeout=30, interval=0.5,
                           what="the worker unready while its handler is blocked")
        assert blocked["reason"].startswith(f"partition {topic}[0] stalled at offset 1 with 4 waiting for ")
        (part,) = [p for p in blocked["partitions"] if p["topic"] == topic]
        assert (part["position"], part["end"], part["lag"], part["stalled"]) == (1, 5, 4, True)
        said = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        unready = [d for d in said if "unready" in d["msg"]]
        assert unready and unready[0]["level"] == "error"
        assert (unready[0]["topic"], unready[0]["partition"], unready[0]["offset"]) == (topic, 0, 1)
        assert "4 waiting" in unready[0]["msg"]
        assert worker.popen.poll() is None  # unready, not restarted (that bound is far off here)

        release.touch()
        ready = wait_for(lambda: (h := health()) and h["ready"] and h["lag"] == 0 and h, timeout=30, interval=0.5,
                         what="the worker ready again once its handler moves")
        assert ready["reason"] is None and ready["partitions"][0]["position"] == 5
        assert any("making progress again" in line for line in log.read_text().splitlines())
    finally:
        worker.stop()


def spkt_status(settings) -> dict:
    env = {**os.environ, **settings_environment(settings)}
    done = subprocess.run([sys.executable, "-m", "spkt.cli", "status", "--json"], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    report = json.loads(done.stdout)
    services = {s["name"]: s for s in report["services"]}
    everything_ready = report["broker"]["reachable"] and all(s["state"] == "RUNNING" and s.get("ready", True)
                                                             for s in services.values())
    assert done.returncode == (0 if everything_ready else 3), done.stdout + done.stderr  # for probes and scripts
    return services


def wait_status(settings, holds, *, timeout: float, what: str) -> dict:
    """Until `spkt status --json` shows what `holds` checks; on failure, says what it showed last."""
    seen: list = [None]

    def probe():
        seen[0] = spkt_status(settings)
        return holds(seen[0]) and seen[0]
    try:
        return wait_for(probe, timeout=timeout, interval=1.0, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast `spkt status --json`: {json.dumps(seen[0], indent=1)}") from None


def test_a_stopped_worker_is_unready_in_spkt_status_with_its_lag_and_ready_again_after(kafka_settings, tmp_path):
    with running_system(kafka_settings, tmp_path / "state") as system:
        status = wait_status(system, lambda s: all(s[n]["ready"] for n in ("intake", "dispatch", "projection")),
                             timeout=60, what="the workers ready in `spkt status`")
        assert status["intake"]["state"] == "RUNNING" and status["intake"]["lag"] is not None
        assert status["api"]["state"] == "RUNNING" and status["api"]["ready"] is True  # its /readyz
        assert health_path(system, "intake").exists()
        (intake,) = [p.pid for p in Stack(system).processes() if p.name == "intake"]
        os.kill(intake, signal.SIGSTOP)
        try:
            filed = []
            with api_client(system, Role.call_taker) as taker:
                for n in range(3):
                    r = taker.post("/api/v1/reports", json={
                        "channel": "phone_110", "category": "theft", "description": f"Uji watchdog {n}",
                        "location": {"lat": SPOT[0] + 0.01 * n, "lon": SPOT[1]}})
                    assert r.status_code == 202, r.text
                    filed.append(r.json()["report_id"])
            stopped = wait_status(system, lambda s: not s["intake"]["ready"] and (s["intake"]["lag"] or 0) >= 3,
                                  timeout=60, what="intake unready with its lag in `spkt status`")["intake"]
            assert "no health report for" in stopped["reason"] and stopped["state"] == "RUNNING"
            assert spkt_status(system)["dispatch"]["ready"]  # the others are not dragged along
        finally:
            os.kill(intake, signal.SIGCONT)
        wait_status(system, lambda s: s["intake"]["ready"] and s["intake"]["lag"] == 0, timeout=120,
                    what="intake ready again with nothing waiting")
        with api_client(system, Role.call_taker) as taker:
            for report_id in filed:
                wait_for(lambda: taker.get(f"/api/v1/reports/{report_id}").json().get("incident_id"), timeout=60,
                         interval=0.5, what=f"report {report_id} on an incident")
