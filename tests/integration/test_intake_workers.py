"""Two intake workers and a restart mid-stream, on the real broker: nothing lost, doubled, or misnumbered."""
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from deploy.stack import group_members
from schemas import topics
from schemas.envelope import derived_id
from schemas.events import Location, ReportReceived, Reporter
from schemas.registry import make_event
from tests.support import Process, events_on, publish, wait_for

pytestmark = pytest.mark.integration

REPORTS = 90


def test_lp_numbers_stay_unique_and_gapless_and_no_report_is_lost_or_doubled(settings_for, tmp_path):
    settings = settings_for()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:8]
    offices = [f"polres-uji{run}{n}" for n in range(4)]  # our own offices: sequences start at 1
    workers = [Process(["run", "intake"], settings, tmp_path / f"intake-{n}.log") for n in range(2)]
    try:
        wait_for(lambda: group_members(settings, "spkt-intake") == 2, timeout=90, what="two intake workers in the group",
                 interval=0.5)
        at = datetime.now(timezone.utc)
        sent, where, seen = [], {}, {}
        for n in range(REPORTS):
            office = offices[n % len(offices)]
            report = ReportReceived(
                report_id=f"r-{run}-{n}", tracking_code=f"T{n}", channel="walk_in", area=office, lp_model="B",
                reporter=Reporter(name=f"Pelapor {n}"), description=f"Laporan kehilangan nomor {n}",
                # on a 3 km grid, so none is a duplicate of another
                location=Location(lat=-6.10 - (n // 10) * 0.03, lon=106.70 + (n % 10) * 0.03),
                category="lost_goods", received_at=at + timedelta(seconds=n))
            envelope = make_event(report, source="/test", event_id=derived_id("test", run, str(n)))
            publish_keyed = envelope.model_copy(update={"subject": office})  # keyed by area, as the API does
            meta = publish(settings, topics.REPORTS, publish_keyed)
            sent.append(report.report_id)
            where[report.report_id] = (meta.partition, meta.offset)
            if n == REPORTS // 3:  # kill one worker mid-stream, then bring it back
                workers[0].popen.kill()
                workers[0].stop()
                workers[0] = Process(["run", "intake"], settings, tmp_path / "intake-0b.log")

        def outcomes():
            for n, worker in enumerate(workers):  # as supervisord would: a worker that stopped is restarted
                if worker.popen.poll() is not None:
                    worker.stop()
                    workers[n] = Process(["run", "intake"], settings, tmp_path / f"intake-{n}-restarted.log")
            opened, lps = defaultdict(set), defaultdict(set)
            for e in events_on(settings, topics.INCIDENTS):
                if e.type == "incident.opened" and e.data["report_ids"][0].startswith(f"r-{run}-"):
                    opened[e.data["report_ids"][0]].add(e.id)
                elif e.type == "report.attached" and e.data["report_id"].startswith(f"r-{run}-"):
                    opened[e.data["report_id"]].add(e.id)
                elif e.type == "lp.registered" and e.data["report_id"].startswith(f"r-{run}-"):
                    lps[e.data["report_id"]].add((e.id, e.data["lp_number"], e.data["office"], e.data["sequence"]))
            seen.update(opened=set(opened), lps=set(lps))
            return (opened, lps) if len(opened) == REPORTS and len(lps) == REPORTS else None

        try:
            opened, lps = wait_for(outcomes, timeout=120, interval=1.0,
                                   what=f"an incident (or attachment) and an LP for each of {REPORTS} reports")
        except AssertionError:
            missing = sorted(where[r] for r in sent if r not in seen.get("opened", ()))
            raise AssertionError(f"no outcome for {len(missing)} reports at (partition, offset) {missing}; "
                                 f"logs in {tmp_path}") from None
        # Redelivery may repeat a message, never with another id: one distinct outcome per report.
        assert {r: len(ids) for r, ids in opened.items() if len(ids) != 1} == {}
        assert {r: len(v) for r, v in lps.items() if len(v) != 1} == {}
        by_office = defaultdict(list)
        for (event_id, number, office, sequence), in lps.values():
            by_office[office].append((sequence, number))
        for office, numbers in by_office.items():
            sequences = sorted(s for s, _ in numbers)
            assert sequences == list(range(1, len(sequences) + 1)), f"{office}: {sequences}"
            assert len({n for _, n in numbers}) == len(numbers)
        assert sum(len(v) for v in by_office.values()) == REPORTS
    finally:
        for worker in workers:
            worker.stop()
