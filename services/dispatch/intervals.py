"""The standard intervals (DOMAIN.md, Time targets), per incident and per jurisdiction and shift. Pure.

call processing = dispatched - received; turnout = en route - dispatched;
travel = on scene - en route; response = on scene - dispatched.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from statistics import median
from typing import Iterable

WIB = timezone(timedelta(hours=7))
NAMES = ("call_processing", "turnout", "travel", "response")
SPANS = {"call_processing": ("received_at", "dispatched_at"), "turnout": ("dispatched_at", "en_route_at"),
         "travel": ("en_route_at", "on_scene_at"), "response": ("dispatched_at", "on_scene_at")}


@dataclass(frozen=True)
class Steps:
    """When each step first happened for one incident (None: not yet)."""

    received_at: datetime
    dispatched_at: datetime | None = None
    en_route_at: datetime | None = None
    on_scene_at: datetime | None = None
    jurisdiction: str | None = None


def of_incident(steps: Steps) -> dict[str, float | None]:
    """Seconds for each interval; None while a step is missing, or when they came out of order."""
    out: dict[str, float | None] = {}
    for name, (start, end) in SPANS.items():
        a, b = getattr(steps, start), getattr(steps, end)
        seconds = (b - a).total_seconds() if a is not None and b is not None else None
        out[name] = seconds if seconds is not None and seconds >= 0 else None
    return out


def parse_shift_starts(text: str) -> tuple[int, ...]:
    """"7,15,23" -> (7, 15, 23), sorted, a repeated hour once; ValueError for none or outside 0-23."""
    hours = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    if not hours or any(not 0 <= h <= 23 for h in hours):
        raise ValueError(f"shift start hours must be 0-23, got {text!r}")
    return hours


def shift_of(at: datetime, starts: tuple[int, ...]) -> tuple[str, str]:
    """(the shift's date, "HH-HH") in WIB; a night shift belongs to the day it started."""
    local = at.astimezone(WIB)
    earlier = [h for h in starts if h <= local.hour]
    if earlier:
        start, day = earlier[-1], local.date()
    else:  # before the first start of the day: still the previous day's last shift
        start, day = starts[-1], (local - timedelta(days=1)).date()
    end = starts[(starts.index(start) + 1) % len(starts)]
    return day.isoformat(), f"{start:02d}-{end:02d}"


def day_asked(day: date | None, now: datetime, starts: tuple[int, ...]) -> str:
    """The day asked for, or "today": the day of the shift on duty at `now` (past midnight, the
    night shift that began the evening before is still the current one)."""
    return day.isoformat() if day else shift_of(now, starts)[0]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


def summarise(rows: Iterable[Steps], starts: tuple[int, ...], day: str | None = None) -> list[dict]:
    """Per (jurisdiction, shift) of the incidents received on `day` (every day when None):
    incident count and, per interval, how many have it, the median and the 90th percentile."""
    groups: dict[tuple[str | None, str], list[dict[str, float | None]]] = {}
    for steps in rows:
        shift_day, shift = shift_of(steps.received_at, starts)
        if day is not None and shift_day != day:
            continue
        groups.setdefault((steps.jurisdiction, shift), []).append(of_incident(steps))
    out = []
    for (jurisdiction, shift), items in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        entry: dict = {"jurisdiction": jurisdiction, "shift": shift, "incidents": len(items)}
        for name in NAMES:
            values = [i[name] for i in items if i[name] is not None]
            entry[name] = {"count": len(values), "median_s": median(values) if values else None,
                           "p90_s": percentile(values, 0.9)}
        out.append(entry)
    return out
