"""How each service is doing: what its worker says of itself, and what Kafka says of its group.

Every faust worker writes `<state_dir>/run/health/<service>.json` about once a second (atomically,
by rename): ready or not and why, and per assigned partition its position, end offset and last
progress. A worker that is stopped or hung cannot write, so a file not refreshed for
`STALE_AFTER_S` counts as unready too. `spkt status` puts that together with supervisord's view of
the processes and with each group's consumer lag, asked of the broker.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schemas.topics import groups_of
from spkt.settings import Settings

WORKERS = ("projection", "intake", "dispatch", "tkp", "notify")
STALE_AFTER_S = 10.0  # a worker refreshes its file every second or so; this long without: not answering

log = logging.getLogger(__name__)


def health_dir(settings: Settings) -> Path:
    return settings.state_dir / "run" / "health"


def health_path(settings: Settings, service: str) -> Path:
    return health_dir(settings) / f"{service}.json"


def write_health(path: Path, doc: dict[str, Any]) -> None:
    """Replace the file in one step: a reader sees the old document or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, default=str))
    os.replace(tmp, path)


def read_health(settings: Settings, service: str, now: float | None = None) -> dict[str, Any] | None:
    """The worker's last word on itself, judged for staleness; None when it never wrote one."""
    try:
        doc = json.loads(health_path(settings, service).read_text())
    except (OSError, ValueError):
        return None
    return judged(doc, time.time() if now is None else now)


def judged(doc: dict[str, Any], now: float) -> dict[str, Any]:
    """A document not refreshed for STALE_AFTER_S: the worker is stopped, hung or gone; unready."""
    age = now - float(doc.get("updated_unix") or 0.0)
    doc = dict(doc, age_s=round(age, 1))
    if age > STALE_AFTER_S:
        doc["ready"] = False
        doc["reason"] = (f"no health report for {age:.0f} s (the worker is stopped, hung or gone)"
                         + (f"; last said: {doc['reason']}" if doc.get("reason") else ""))
    return doc


# --- consumer lag, asked of the broker -----------------------------------------------------------
@dataclass
class GroupLag:
    group: str
    lag: int | None = None  # end offsets minus committed offsets over the group's partitions; None: unknown
    partitions: dict[str, int] = field(default_factory=dict)  # "topic[partition]" -> lag
    error: str | None = None


def group_lags(settings: Settings, groups: list[str], timeout_ms: int = 3000,
               assigned: dict[str, list[tuple[str, int]]] | None = None) -> dict[str, GroupLag]:
    """Each group's lag: end offset minus committed offset, over the partitions it committed on and
    those its worker last said it was assigned (`assigned`: group -> [(topic, partition)]). A
    partition never committed counts from its first offset: the group reads it from the start.

    Raises when the broker cannot be reached at all (the caller says the broker is down)."""
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap.split(","), client_id="spkt-status",
                             request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms)
    try:
        out: dict[str, GroupLag] = {}
        for group in groups:
            try:
                committed = {tp: meta.offset for tp, meta in admin.list_group_offsets({group: None})
                             .get(group, {}).items() if meta.offset is not None and meta.offset >= 0}
                never = {TopicPartition(t, p) for t, p in (assigned or {}).get(group, [])} - set(committed)
                if never:
                    firsts = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in never})
                    committed.update({tp: found.offset for tp, found in firsts.items()})
                ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in committed}) if committed else {}
            except Exception as exc:  # no coordinator yet, one group unknown: say so, go on with the others
                out[group] = GroupLag(group, error=str(exc) or type(exc).__name__)
                continue
            per = {f"{tp.topic}[{tp.partition}]": max(0, ends[tp].offset - offset)
                   for tp, offset in sorted(committed.items()) if tp in ends}
            out[group] = GroupLag(group, lag=sum(per.values()), partitions=per)
        return out
    finally:
        admin.close()


# --- what `spkt status` shows --------------------------------------------------------------------
def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _together(lags: list[GroupLag | None]) -> GroupLag | None:
    """A worker's groups as one (the projection's GPS positions have their own): a partition's lag
    is the last group's that reads it, so offsets an older version committed in the first are not
    counted."""
    if not lags or lags[0] is None:
        return None
    per: dict[str, int] = {}
    for lag in lags:
        per.update(lag.partitions if lag else {})
    errors = [lag.error for lag in lags if lag and lag.error]
    if errors or any(lag is None for lag in lags):
        return GroupLag(lags[0].group, error="; ".join(errors) or "unknown", partitions=per)
    return GroupLag(lags[0].group, lag=sum(per.values()), partitions=per)


def status_report(settings: Settings, processes: list | None = None, now: float | None = None) -> dict[str, Any]:
    """Every process (supervisord's view), each worker's readiness and last progress (its health
    file), each group's lag (the broker), or that the broker could not be asked."""
    if processes is None:
        from deploy.stack import Stack

        processes = Stack(settings, demo=True).processes()
    now = time.time() if now is None else now
    names = [p.name for p in processes]
    workers = [n for n in WORKERS if n in names] or [n for n in WORKERS if health_path(settings, n).exists()]
    broker: dict[str, Any] = {"bootstrap": settings.bootstrap, "reachable": True, "error": None}
    healths = {n: read_health(settings, n, now) for n in workers}
    assigned = {f"spkt-{n}": [(p["topic"], p["partition"]) for p in (h or {}).get("partitions", [])]
                for n, h in healths.items()}
    try:
        lags = group_lags(settings, [g for n in workers for g in groups_of(n)], assigned=assigned) if workers else {}
    except Exception as exc:
        broker.update(reachable=False, error=str(exc) or type(exc).__name__)
        lags = {}
    services = []
    by_name = {p.name: p for p in processes}
    for name in list(dict.fromkeys(names + workers)):
        p = by_name.get(name)
        entry: dict[str, Any] = {"name": name, "state": p.state if p else "UNKNOWN", "pid": (p.pid or None) if p else None,
                                 "log": str(p.log) if p else None}
        if name in WORKERS:
            health = healths.get(name) or read_health(settings, name, now)
            running = p is not None and p.state == "RUNNING"
            if health is None:
                ready, reason = False, "no health report yet (starting)" if running else "not running"
            elif not running and p is not None:
                ready, reason = False, f"process {p.state.lower()}"
            elif p is not None and health.get("pid") and p.pid and health["pid"] != p.pid:
                ready, reason = False, "no health report yet from this process (starting)"
            else:
                ready, reason = bool(health.get("ready")), health.get("reason")
            group = _together([lags.get(g) for g in groups_of(name)])
            last = health.get("last_progress_unix") if health else None
            entry.update(
                ready=ready, reason=reason, group=f"spkt-{name}",
                lag=group.lag if group else None, lag_error=group.error if group else None,
                lag_partitions=group.partitions if group else {},
                last_progress_at=health.get("last_progress_at") if health else None,
                last_progress_age_s=round(now - last, 1) if last else None,
                health_age_s=health.get("age_s") if health else None,
                partitions=health.get("partitions", []) if health else [],
            )
        elif name == "api":
            entry.update(zip(("ready", "reason"), api_ready(settings) if p is not None and p.state == "RUNNING"
                             else (False, "not running")))
        services.append(entry)
    return {"at": now, "broker": broker, "services": services}


def api_ready(settings: Settings) -> tuple[bool, str | None]:
    """What the API's own /readyz says (the broker and the database answer), within 2 s."""
    import httpx

    try:
        r = httpx.get(settings.api_url + "/readyz", timeout=2)
    except httpx.HTTPError as exc:
        return False, f"/readyz did not answer: {exc or type(exc).__name__}"
    if r.status_code == 200:
        return True, None
    return False, f"/readyz answered {r.status_code}: {r.text[:200]}"


def status_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table `spkt status` prints: process, state, pid, ready, lag, last progress, log."""
    rows = []
    for s in report["services"]:
        if "lag" in s:
            ready = "ready" if s["ready"] else f"UNREADY: {s['reason'] or '?'}"
            if s.get("lag") is not None:
                lag = str(s["lag"])
            elif not report["broker"]["reachable"]:
                lag = "? (broker down)"
            else:
                lag = "?"
            progress = _age(s.get("last_progress_age_s"))
        elif "ready" in s:  # the API: ready or not, no lag of its own
            ready, lag, progress = ("ready" if s["ready"] else f"UNREADY: {s['reason'] or '?'}"), "", ""
        else:
            ready, lag, progress = "", "", ""
        rows.append((s["name"], s["state"], str(s["pid"] or "-"), ready, lag, progress, s["log"] or "-"))
    return rows


def as_json(report: dict[str, Any]) -> str:
    return json.dumps(report, default=lambda o: asdict(o) if hasattr(o, "__dataclass_fields__") else str(o),
                      indent=2)
