"""The fault suite's system: its own broker(s), the whole stack with an SMS gateway receiver, units
registered, the load running; and one `exercise` per fault: load, the fault, load, pause, checks.

Printed per fault: reports acknowledged during it / lost / duplicated, notifications sent /
arrived / resent after a kill (same Idempotency-Key) / delivered twice, seconds for consumer lag
to return to zero once the load paused, and what the fault did.
"""
from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deploy.stack import Stack, WORKERS, start_system
from schemas import topics
from services.api.auth import Role
from spkt.settings import Settings
from tests.faults import checks
from tests.faults.gateway import DedupingGateway
from tests.faults.load import Load, Unit, make_units
from tests.support import api_client, free_port, wait_for

GATEWAY_ID, GATEWAY_SECRET = "gw-fault", "rahasia-gateway-gangguan"
SMS_SECRET = "rahasia-sms-keluar"
LAG_BOUND_S = 120.0       # consumer lag back to zero within this once the load pauses (a worker restart is ~30 s on a busy 2-core CI box)
SETTLE_BOUND_S = 90.0     # acknowledged reports on incidents, notifications arrived, within this


def system_settings(kafka: Settings, state: Path, gateway: DedupingGateway, **overrides) -> Settings:
    values = {
        **kafka.model_dump(), "state_dir": state, "api_port": free_port(),
        "database_url": f"sqlite:///{state / 'spkt.db'}",
        "sms_gateway_url": gateway.url, "sms_gateway_secret": SMS_SECRET,
        "gateway_secrets": {GATEWAY_ID: GATEWAY_SECRET},
        # The load files from distinct numbers and one token per role: far above a person's pace.
        "caller_limit_per_minute": 1000, "token_limit_per_minute": 100_000,
        "notify_per_recipient_per_hour": 10_000,
        "notify_retry_base_s": 0.5, "notify_retry_max_s": 5.0,
        "assignment_ack_s": 600.0,  # the field-unit loop answers; no re-recommendation noise
        "command_wait_s": 10.0,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Row:
    fault: str
    acknowledged: int
    lost: int
    duplicated: int
    sent: int
    arrived: int
    resent: int
    delivered_twice: int
    lag_s: float
    note: str

    HEADER = (f"{'fault':<34} {'acked':>5} {'lost':>4} {'dup':>3} {'sent':>5} {'arrived':>7} "
              f"{'resent*':>7} {'twice':>5} {'lag→0 s':>7}  note")

    def line(self) -> str:
        return (f"{self.fault:<34} {self.acknowledged:>5} {self.lost:>4} {self.duplicated:>3} {self.sent:>5} "
                f"{self.arrived:>7} {self.resent:>7} {self.delivered_twice:>5} {self.lag_s:>7.1f}  {self.note}")


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(Row.HEADER)
    for row in rows:
        print(row.line())
    print("  acked: reports answered 202 during the fault's load phase; lost: of those, on no incident;"
          " dup: on two incidents or recorded twice;\n  sent/arrived: notifications recorded sent / distinct ids"
          " at the gateway (cumulative); resent*: arrivals again under the same Idempotency-Key\n"
          "  (notify killed between the gateway's answer and its record; the gateway drops them);"
          " twice: delivered to a phone twice (must be 0)")


@dataclass
class System:
    settings: Settings
    stack: Stack
    load: Load
    gateway: DedupingGateway
    units: list[Unit]
    folder: Path
    rows: list[Row] = field(default_factory=list)

    @property
    def unit_prefix(self) -> str:
        return self.units[0].unit_id.rsplit("-", 1)[0] + "-"

    def pid_of(self, name: str) -> int:
        for info in self.stack.processes():
            if info.name == name and info.state == "RUNNING" and info.pid:
                return info.pid
        raise AssertionError(f"{name} is not running: {[(p.name, p.state) for p in self.stack.processes()]}")

    def wait_running(self, name: str, *, not_pid: int | None = None, timeout: float = 90.0,
                     not_members: frozenset = frozenset()) -> int:
        """Until supervisord runs `name` (another pid than `not_pid`) and its group is stable with a
        member, none of them in `not_members` (the killed process's, until the coordinator drops it)."""
        def running():
            for info in self.stack.processes():
                if info.name == name and info.state == "RUNNING" and info.pid and info.pid != not_pid:
                    return info.pid
            return None
        pid = wait_for(running, timeout=timeout, interval=0.25, what=f"supervisord to run {name} again")
        if name in WORKERS:
            def rejoined():
                members = member_ids(self.settings, f"spkt-{name}")
                return bool(members) and not members & not_members
            wait_for(rejoined, timeout=timeout, interval=0.5, what=f"the spkt-{name} group with a new member")
        return pid

    def all_running(self, timeout: float = 120.0) -> None:
        for name in WORKERS + ("api",):
            self.wait_running(name, timeout=timeout)

    # --- one fault -------------------------------------------------------------------------------
    def exercise(self, fault: str, inject: Callable[[], str], *, before_s: float = 4.0, after_s: float = 5.0,
                 lag_bound_s: float = LAG_BOUND_S) -> Row:
        load = self.load
        load.resume(phase=fault)
        load.run_for(before_s)                 # deliberate: steady load before the fault
        started = time.monotonic()
        note = inject()
        load.run_for(after_s)                  # deliberate: load goes on after the fault
        load.pause()
        fault_s = time.monotonic() - started
        lag_s, _ = checks.wait_lag_zero(self.settings, lag_bound_s)
        acked = load.all_acked()
        mine = {a.marker for a in load.acked_in(fault)}
        reports = checks.report_outcome(self.settings, acked, timeout=SETTLE_BOUND_S)
        units = checks.unit_outcome(self.settings, self.unit_prefix)
        notes = checks.notification_outcome(self.settings, self.gateway, acked, self.unit_prefix,
                                            timeout=SETTLE_BOUND_S)
        lost = [x for x in reports.lost if x.split(" ", 1)[0] in mine]
        duplicated = [x for x in reports.duplicated if x.split(" ", 1)[0] in mine]
        row = Row(fault, len(mine), len(lost), len(duplicated), notes.sent, notes.arrived, notes.resent,
                  len(notes.delivered_twice), lag_s, f"{note}; fault+load {fault_s:.0f} s")
        self.rows.append(row)
        print(f"\n{Row.HEADER}\n{row.line()}\n  load: {dict(sorted(load.stats.items()))}")
        problems = {
            "reports lost (answered 202, on no incident)": reports.lost,
            "reports answered 202 never recorded on spkt.reports": reports.never_recorded,
            "reports duplicated": reports.duplicated,
            "a unit active on two incidents": units.overlaps,
            "two decisions for one version of a unit's status": units.split_brain,
            "notifications recorded sent (or called for) that never arrived": notes.missing,
            "notifications that arrived but were never recorded sent": notes.unrecorded,
            "notifications delivered to a phone twice": notes.delivered_twice,
            "notifications that failed": notes.failed,
            "requests finally answered other than 202": dict(load.refused),
            "requests given up": {k: v for k, v in load.stats.items() if "given up" in k},
        }
        problems = {k: (v[:10] if isinstance(v, list) else v) for k, v in problems.items() if v}
        assert not problems, f"after {fault}: {problems}"
        assert units.assignments > 0 and reports.acknowledged > 0
        return row


def start(kafka: Settings, folder: Path, *, units: int, reports_per_s: float, **overrides) -> System:
    """The stack on `kafka` with its gateway, `units` units registered near the reports, the load started."""
    gateway = DedupingGateway(SMS_SECRET).start()
    settings = system_settings(kafka, folder / "state", gateway, **overrides)
    try:
        stack = start_system(settings)
    except BaseException:
        gateway.stop()
        raise
    try:
        run = uuid.uuid4().hex[:4]
        fleet = make_units(units, run)
        with api_client(settings, Role.admin) as admin:
            def register(unit: Unit) -> int:
                return admin.post("/api/v1/units", json={
                    "unit_id": unit.unit_id, "callsign": unit.unit_id.upper(), "kind": "motorcycle",
                    "station": unit.station, "phone": unit.phone}).status_code
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(register, fleet))
        assert set(codes) == {201}, codes
        load = Load(settings, fleet, gateway_id=GATEWAY_ID, gateway_secret=GATEWAY_SECRET,
                    reports_per_s=reports_per_s).start()
        with api_client(settings, Role.dispatcher) as board:
            seen = {"registered": 0, "positioned": 0}

            def positioned():
                items = [u for u in board.get("/api/v1/units").json()["items"]
                         if u["unit_id"].startswith(fleet[0].unit_id[:-3])]
                seen.update(registered=len(items), positioned=sum(1 for u in items if u["position"]))
                return seen["positioned"] >= len(fleet)
            try:
                wait_for(positioned, timeout=120, interval=1.0, what="every unit registered with a position")
            except AssertionError as error:
                raise AssertionError(f"{error}: {seen} of {len(fleet)}; load {dict(load.stats)}") from None
        load.pause()
        return System(settings, stack, load, gateway, fleet, folder)
    except BaseException:
        stack.stop()
        gateway.stop()
        raise


def stop(system: System) -> None:
    try:
        system.load.stop()
    finally:
        try:
            system.stack.stop()
        finally:
            system.gateway.stop()


def read_model_equals_rebuild(system: System) -> tuple[dict, int, int]:
    """Stop every writer but the projection, wait until it applied everything, rebuild, compare."""
    supervisor = system.stack.rpc().supervisor
    for name in [w for w in WORKERS if w != "projection"] + ["api"]:
        supervisor.stopProcess(name)
    groups = topics.groups_of("projection")
    wait_for(lambda: all(lag == 0 for lag in checks.group_lags(system.settings, groups).values()),
             timeout=LAG_BOUND_S, interval=0.5, what="the projection to apply every event")
    return checks.rebuild_differences(system.settings, system.folder)


def member_ids(settings: Settings, group: str) -> frozenset:
    """The member ids of a stable consumer group (empty while it rebalances or cannot be asked)."""
    from deploy.topics import admin_client

    try:
        admin = admin_client(settings, timeout_ms=3000)
    except Exception:  # noqa: BLE001
        return frozenset()
    try:
        doc = admin.describe_groups([group]).get(group) or {}
        if doc.get("group_state") != "Stable":
            return frozenset()
        return frozenset(m.get("member_id") for m in doc.get("members") or [])
    except Exception:  # noqa: BLE001 - coordinator moving: ask again
        return frozenset()
    finally:
        admin.close()
