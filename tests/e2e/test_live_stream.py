"""The live stream on the running stack: events of a report arrive with ids, a reconnect with
Last-Event-ID gets what was missed, a token sees only its jurisdiction, bad requests are refused."""
import re
import time
import uuid

import httpx
import pytest

from services.api.auth import Role
from tests.support import api_client, running_system, wait_for

pytestmark = pytest.mark.e2e

KEBAYORAN = {"lat": -6.2615, "lon": 106.8106}  # Jakarta Selatan (polsek-kebayoran-baru)
CILANDAK = {"lat": -6.2920, "lon": 106.7990}  # Jakarta Selatan too, away from the other tests' scenes
TANJUNG_PRIOK = {"lat": -6.1148, "lon": 106.8801}  # Jakarta Utara


@pytest.fixture(scope="module")
def system(kafka_settings, tmp_path_factory):
    # A short heartbeat: the reader below checks its deadline between messages.
    with running_system(kafka_settings, tmp_path_factory.mktemp("e2e-live"), live_heartbeat_s=1.0) as settings:
        yield settings


class Stream:
    """An open GET /api/v1/stream, read message by message."""

    def __init__(self, client: httpx.Client, *, params=None, headers=None) -> None:
        self._cm = client.stream("GET", "/api/v1/stream", params=params, headers=headers)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200, self.response.read()
        self._lines = self.response.iter_lines()
        self.seen: list[dict] = []

    def until(self, wanted, *, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        block: dict = {}
        while time.monotonic() < deadline:
            line = next(self._lines)  # a keepalive at least every second
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                block[name] = value[1:] if value.startswith(" ") else value
                continue
            if block:
                self.seen.append(block)
                if wanted(block):
                    return block
                block = {}
        raise AssertionError(f"within {timeout:.0f} s: {what}; seen {[(m.get('event'), m.get('id')) for m in self.seen]}")

    def close(self) -> None:
        self._cm.__exit__(None, None, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def of_report(report_id: str, event_type: str):
    import json

    def match(message: dict) -> bool:
        if message.get("event") != event_type:
            return False
        data = json.loads(message["data"])["data"]
        return data.get("report_id") == report_id or report_id in data.get("report_ids", ())
    return match


def file_report(system, where: dict, what: str) -> str:
    with api_client(system, Role.call_taker) as taker:
        r = taker.post("/api/v1/reports", json={"channel": "phone_110", "description": what, "location": where})
        assert r.status_code == 202, r.text
        return r.json()["report_id"]


def test_refusals(system):
    with httpx.Client(base_url=system.api_url, timeout=10) as anonymous:
        assert anonymous.get("/api/v1/stream").status_code == 401
    with api_client(system, Role.call_taker) as taker:
        assert taker.get("/api/v1/stream").status_code == 403
    with api_client(system, Role.dispatcher) as dispatcher:
        r = dispatcher.get("/api/v1/stream", params={"types": "incident.opened,bogus"})
        assert r.status_code == 422
        assert "bogus" in r.text and "tidak dikenal" in r.text
    with api_client(system, Role.command_center, jurisdiction="polres-jakut") as north:
        assert north.get("/api/v1/stream", params={"jurisdiction": "polres-jaksel"}).status_code == 403


def test_events_arrive_with_ids_and_a_reconnect_gets_what_it_missed(system):
    run = uuid.uuid4().hex[:6]
    with api_client(system, Role.dispatcher) as dispatcher:
        # An unknown id is answered with a reset once the API has read the recent events: from then on it is live.
        with Stream(dispatcher, headers={"Last-Event-ID": "nothing-like-this"}) as live:
            assert live.response.headers["content-type"].startswith("text/event-stream")
            assert live.response.headers["cache-control"] == "no-cache"
            assert live.until(lambda m: "retry" in m, timeout=10, what="the retry field")["retry"] == "2000"
            live.until(lambda m: m.get("event") == "reset", timeout=60, what="a reset for the unknown id")
            first = file_report(system, KEBAYORAN, f"Pencurian sepeda motor di parkiran minimarket ({run})")
            received = live.until(of_report(first, "report.received"), timeout=30, what="report.received")
            opened = live.until(of_report(first, "incident.opened"), timeout=60, what="incident.opened")
            for message in (received, opened):
                assert re.fullmatch(r"spkt\.[a-z-]+:\d+:\d+", message["id"])
            last_id = live.seen[-1]["id"]

        second = file_report(system, CILANDAK, f"Kebakaran gudang kayu, api sudah besar ({run})")
        wait_for(lambda: dispatcher.get(f"/api/v1/reports/{second}").json().get("incident_id"), timeout=60,
                 what="the second report's incident")  # its events are in the past when we reconnect
        with Stream(dispatcher, params={"types": "report.received,incident.opened"},
                    headers={"Last-Event-ID": last_id}) as resumed:
            resumed.until(of_report(second, "report.received"), timeout=30, what="the missed report.received")
            resumed.until(of_report(second, "incident.opened"), timeout=30, what="the missed incident.opened")
            assert not any(of_report(first, "report.received")(m) for m in resumed.seen)  # nothing before the id
            assert all(m.get("event") in ("report.received", "incident.opened") for m in resumed.seen if "id" in m)
            assert not any(m.get("event") == "reset" for m in resumed.seen)

        def no_clients():
            text = httpx.get(f"{system.api_url}/metrics", timeout=10).text
            return re.search(r"^spkt_live_clients 0\.0$", text, re.M)
        wait_for(no_clients, timeout=30, what="the closed streams leave the connected-clients gauge")


def test_a_token_sees_only_its_jurisdiction(system):
    run = uuid.uuid4().hex[:6]
    with api_client(system, Role.command_center, jurisdiction="polres-jaksel") as south, \
            api_client(system, Role.command_center, jurisdiction="polres-jakut") as north:
        with Stream(south, headers={"Last-Event-ID": "probe"}) as south_live, \
                Stream(north, headers={"Last-Event-ID": "probe"}) as north_live:
            for stream in (south_live, north_live):
                stream.until(lambda m: m.get("event") == "reset", timeout=60, what="live")
            report = file_report(system, KEBAYORAN, f"Jambret tas di halte bus, pelaku kabur ({run})")
            south_live.until(of_report(report, "incident.opened"), timeout=60, what="Jaksel sees its incident")
            # The hub hands each event to every client at once, so a later northern event arriving
            # at the northern stream means the southern one would have come before it.
            marker = file_report(system, TANJUNG_PRIOK, f"Perkelahian di pelabuhan, dua orang luka ({run})")
            north_live.until(of_report(marker, "incident.opened"), timeout=60, what="Jakut sees its own incident")
            assert not any(of_report(report, kind)(m) for m in north_live.seen
                           for kind in ("report.received", "incident.opened"))
