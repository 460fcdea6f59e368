"""The notify worker on the real broker, killed in the middle of a batch of 200 notifications and
started again: every notification arrives, and none twice except what the kill itself cut in two."""
import time
import uuid
from collections import Counter

import pytest
from kafka import KafkaProducer

from deploy.stack import group_members
from schemas import topics
from schemas.envelope import utcnow
from schemas.events import Location, Reporter, ReportReceived
from schemas.registry import make_event
from tests.receivers import HttpReceiver
from tests.support import Process, wait_for

pytestmark = pytest.mark.integration

BATCH = 200
SECRET = "rahasia-gateway-uji"


def receipts(gateway: HttpReceiver, run: str) -> Counter:
    """Notification id -> how many times the gateway accepted it, for this run's reports."""
    return Counter(r["headers"].get("x-spkt-notification-id") for r in list(gateway.requests)
                   if 200 <= r.get("status", 200) < 300 and r["json"] and run in r["json"].get("text", ""))


def test_a_killed_notify_worker_delivers_every_notification_once(settings_for, tmp_path):
    # A gateway that takes 20 ms a message, so the kill lands in the middle of the batch.
    gateway = HttpReceiver(SECRET, status_for=lambda body: time.sleep(0.02) or 200).start()
    settings = settings_for(sms_gateway_url=gateway.url, sms_gateway_secret=SECRET, notify_retry_base_s=0.2,
                            notify_per_recipient_per_hour=1000)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:6].upper()
    workers = [Process(["run", "notify"], settings, tmp_path / "notify.log")]
    try:
        wait_for(lambda: group_members(settings, "spkt-notify") == 1, timeout=90, interval=0.5,
                 what=f"the notify worker in its group (log: {workers[0].log})")
        producer = KafkaProducer(bootstrap_servers=settings.bootstrap.split(","), acks="all")
        try:  # the whole batch at once
            for n in range(BATCH):
                report = ReportReceived(report_id=f"rep-{run}-{n}", tracking_code=f"TRK-{run}-{n:03d}", channel="sms",
                                        reporter=Reporter(phone=f"+62812{n:07d}"), description="Lapor",
                                        location=Location(lat=-6.2, lon=106.8), received_at=utcnow(),
                                        area="polres-uji")
                producer.send(topics.REPORTS, value=make_event(report, source="/test").to_bytes(), key=b"polres-uji")
            producer.flush(timeout=30)
        finally:
            producer.close()
        def supervise() -> None:  # as supervisord does: a worker that stopped is started again
            if workers[-1].popen.poll() is not None:
                workers[-1].stop()
                workers.append(Process(["run", "notify"], settings, tmp_path / f"notify-{len(workers)}.log"))

        def a_third() -> bool:
            supervise()
            return len(receipts(gateway, run)) >= BATCH // 3
        wait_for(a_third, timeout=90, interval=0.05, what=f"a third of the batch delivered (log: {workers[-1].log})")
        workers[-1].popen.kill()  # SIGKILL in the middle of the batch
        workers[-1].stop()
        killed_at = len(receipts(gateway, run))
        workers.append(Process(["run", "notify"], settings, tmp_path / "notify-restarted.log"))

        def all_delivered():
            supervise()
            return len(receipts(gateway, run)) == BATCH
        wait_for(all_delivered, timeout=180, interval=0.5, what=f"all {BATCH} receipts at the gateway")
        counts = receipts(gateway, run)
        twice = {nid: c for nid, c in counts.items() if c > 1}
        print(f"\nnotify kill test: {BATCH} notifications, {killed_at} delivered before the kill, "
              f"{len(counts)} distinct delivered, {sum(counts.values())} requests accepted, {len(twice)} twice")
        assert len(counts) == BATCH
        # Sent but not yet recorded when the process died: at most the one in flight is sent again,
        # with the same Idempotency-Key, which the gateway uses to drop it.
        assert len(twice) <= 1, twice
        assert all(r["signature_valid"] for r in gateway.requests)
    finally:
        for worker in workers:
            worker.stop()
        gateway.stop()
