"""A worker of the project's own make, on the real broker, lets its fetches gather events in a surge
and takes each event at once again when the surge has passed, handling every event either way."""
import json

from kafka import KafkaProducer

from deploy.health import read_health
from tests.integration.test_watchdog import WORKER, one_partition_topic, report
from tests.support import Process, publish, wait_for

SURGE = 600


def test_a_worker_gathers_in_a_surge_and_takes_each_event_at_once_after(settings_for, tmp_path):
    settings = settings_for(surge_events_per_s=20.0)
    topic = one_partition_topic(settings, "pace")
    script, log = tmp_path / "worker.py", tmp_path / "watchdog.log"
    script.write_text(WORKER)
    worker = Process([topic, str(tmp_path / "never")], settings, log, script=script)

    def health():
        doc = read_health(settings, "watchdog")
        return doc if doc and doc.get("pid") == worker.pid else None

    def paces() -> list[str]:
        said = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        return [d["msg"] for d in said if d["msg"].startswith("fetches ")]

    def handled(count: int):
        return (h := health()) and h["lag"] == 0 and [p["position"] for p in h["partitions"]] == [count]

    try:
        publish(settings, topic, report("biasa"))
        wait_for(lambda: handled(1), timeout=90, interval=0.5,
                 what=f"the worker ready, its first event handled; log:\n{log.read_text()[-3000:]}")
        assert paces() == []  # one event: no surge

        producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all", linger_ms=5)
        try:
            for _ in range(SURGE):
                envelope = report("biasa")
                producer.send(topic, value=envelope.to_bytes(), key=envelope.subject.encode())
            producer.flush(timeout=30)
        finally:
            producer.close()
        wait_for(lambda: paces(), timeout=30, interval=0.2,
                 what=f"the worker gathering in the surge; log:\n{log.read_text()[-3000:]}")
        assert paces()[0].startswith("fetches gather for 10 ms: ")
        wait_for(lambda: handled(1 + SURGE), timeout=60, interval=0.5, what="every event of the surge handled")
        wait_for(lambda: len(paces()) >= 2, timeout=30, interval=0.2, what="the worker taking each event at once again")
        first, second = paces()[:2]
        assert int(first.rsplit(": ", 1)[1].split()[0]) >= 20
        assert second.startswith("fetches return with the first event: ")
        assert int(second.rsplit(": ", 1)[1].split()[0]) < 10
        assert worker.popen.poll() is None
    finally:
        worker.stop()
