"""The standard intervals per incident and per jurisdiction and shift (services.dispatch.intervals)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services.dispatch.intervals import (
    NAMES, WIB, Steps, day_asked, of_incident, parse_shift_starts, percentile, shift_of, summarise,
)

UTC = timezone.utc
T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 10:00 WIB
STARTS = (7, 15, 23)


def steps(received=T0, dispatched=None, en_route=None, on_scene=None, jurisdiction=None) -> Steps:
    def at(seconds):
        return None if seconds is None else received + timedelta(seconds=seconds)
    return Steps(received_at=received, dispatched_at=at(dispatched), en_route_at=at(en_route),
                 on_scene_at=at(on_scene), jurisdiction=jurisdiction)


# --- of_incident -------------------------------------------------------------------------------
def test_of_incident_every_interval():
    assert of_incident(steps(dispatched=90, en_route=150, on_scene=600)) == {
        "call_processing": 90.0, "turnout": 60.0, "travel": 450.0, "response": 510.0}


def test_of_incident_names_are_the_four_standard_intervals():
    assert set(of_incident(steps())) == set(NAMES) == {"call_processing", "turnout", "travel", "response"}


def test_of_incident_none_while_a_step_is_missing():
    assert of_incident(steps()) == dict.fromkeys(NAMES)
    assert of_incident(steps(dispatched=30)) == {"call_processing": 30.0, "turnout": None, "travel": None,
                                                 "response": None}
    # on scene without en route: travel unknown, response known
    assert of_incident(steps(dispatched=30, on_scene=400)) == {"call_processing": 30.0, "turnout": None,
                                                              "travel": None, "response": 370.0}


def test_of_incident_none_for_a_negative_interval_zero_is_kept():
    out = of_incident(steps(dispatched=60, en_route=50, on_scene=60))
    assert out == {"call_processing": 60.0, "turnout": None, "travel": 10.0, "response": 0.0}


def test_of_incident_across_time_zones():
    received = datetime(2026, 11, 27, 10, 0, tzinfo=WIB)
    s = Steps(received_at=received, dispatched_at=datetime(2026, 11, 27, 3, 2, tzinfo=UTC))
    assert of_incident(s)["call_processing"] == 120.0


# --- parse_shift_starts ------------------------------------------------------------------------
def test_parse_shift_starts_sorted():
    assert parse_shift_starts("7,15,23") == (7, 15, 23)
    assert parse_shift_starts(" 23, 7 ,15 ") == (7, 15, 23)
    assert parse_shift_starts("0") == (0,)
    assert parse_shift_starts("8,20,") == (8, 20)


@pytest.mark.parametrize("text", ["", " , ", "24", "7,15,24", "-1,7"])
def test_parse_shift_starts_refuses_hours_outside_0_23_or_none(text):
    with pytest.raises(ValueError, match="0-23"):
        parse_shift_starts(text)


@pytest.mark.parametrize("text", ["pagi", "7,15.5", "7;15"])
def test_parse_shift_starts_refuses_non_numbers(text):
    with pytest.raises(ValueError):
        parse_shift_starts(text)


# --- shift_of ----------------------------------------------------------------------------------
@pytest.mark.parametrize("local, expected", [
    (datetime(2026, 11, 28, 6, 59, 59), ("2026-11-27", "23-07")),
    (datetime(2026, 11, 28, 0, 0), ("2026-11-27", "23-07")),
    (datetime(2026, 11, 28, 7, 0), ("2026-11-28", "07-15")),
    (datetime(2026, 11, 28, 14, 59), ("2026-11-28", "07-15")),
    (datetime(2026, 11, 28, 15, 0), ("2026-11-28", "15-23")),
    (datetime(2026, 11, 28, 23, 0), ("2026-11-28", "23-07")),
    (datetime(2026, 11, 28, 23, 59), ("2026-11-28", "23-07")),
])
def test_shift_of_in_wib(local, expected):
    assert shift_of(local.replace(tzinfo=WIB), STARTS) == expected


def test_shift_of_converts_utc_to_wib():
    # 23:59 UTC on the 27th is 06:59 WIB on the 28th: still the night shift that began on the 27th
    assert shift_of(datetime(2026, 11, 27, 23, 59, tzinfo=UTC), STARTS) == ("2026-11-27", "23-07")
    # 00:00 UTC on the 28th is 07:00 WIB on the 28th
    assert shift_of(datetime(2026, 11, 28, 0, 0, tzinfo=UTC), STARTS) == ("2026-11-28", "07-15")
    # 16:30 UTC on the 27th is 23:30 WIB on the 27th
    assert shift_of(datetime(2026, 11, 27, 16, 30, tzinfo=UTC), STARTS) == ("2026-11-27", "23-07")


def test_today_past_midnight_is_the_day_of_the_night_shift_on_duty():
    """At 00:15 WIB the night shift that began at 23:00 the evening before is still on duty: "today"
    (no date asked) is its day, not the new calendar day with nothing in it yet."""
    assert day_asked(None, datetime(2026, 11, 29, 0, 15, tzinfo=WIB), STARTS) == "2026-11-28"
    assert day_asked(None, datetime(2026, 11, 29, 7, 0, tzinfo=WIB), STARTS) == "2026-11-29"
    assert day_asked(datetime(2026, 11, 1).date(), datetime(2026, 11, 29, 0, 15, tzinfo=WIB), STARTS) == "2026-11-01"


def test_shift_of_across_a_month_and_year_boundary():
    assert shift_of(datetime(2027, 1, 1, 3, 0, tzinfo=WIB), STARTS) == ("2026-12-31", "23-07")
    assert shift_of(datetime(2026, 3, 1, 5, 0, tzinfo=WIB), (6, 18)) == ("2026-02-28", "18-06")


def test_shift_of_with_one_shift_a_day():
    assert shift_of(datetime(2026, 11, 28, 12, 0, tzinfo=WIB), (8,)) == ("2026-11-28", "08-08")
    assert shift_of(datetime(2026, 11, 28, 7, 0, tzinfo=WIB), (8,)) == ("2026-11-27", "08-08")


def test_shift_of_with_a_midnight_start():
    assert shift_of(datetime(2026, 11, 28, 0, 0, tzinfo=WIB), (0, 12)) == ("2026-11-28", "00-12")
    assert shift_of(datetime(2026, 11, 28, 23, 0, tzinfo=WIB), (0, 12)) == ("2026-11-28", "12-00")


# --- percentile --------------------------------------------------------------------------------
def test_percentile_of_nothing_is_none():
    assert percentile([], 0.9) is None


def test_percentile_nearest_rank_on_sorted_values():
    values = [float(v) for v in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5, 11)]  # 1..11 shuffled
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 0.5) == 6.0
    assert percentile(values, 0.9) == 10.0
    assert percentile(values, 1.0) == 11.0
    assert values[0] == 10  # the input is not sorted in place


def test_percentile_of_one_value_and_out_of_range_q():
    assert percentile([42.0], 0.9) == 42.0
    assert percentile([1.0, 2.0, 3.0], 1.5) == 3.0
    assert percentile([1.0, 2.0, 3.0], -1) == 1.0


def test_percentile_p90_of_ten_values():
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9.0


# --- summarise ---------------------------------------------------------------------------------
def test_summarise_groups_by_jurisdiction_and_shift_with_counts_median_and_p90():
    morning = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 WIB, 07-15
    evening = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # 16:00 WIB, 15-23
    rows = [
        steps(morning, dispatched=60, en_route=120, on_scene=600, jurisdiction="polres-jaksel"),
        steps(morning + timedelta(minutes=5), dispatched=120, jurisdiction="polres-jaksel"),
        steps(morning + timedelta(minutes=9), dispatched=30, en_route=60, on_scene=300,
              jurisdiction="polres-jaksel"),
        steps(morning, jurisdiction="polres-jaksel"),  # nothing dispatched yet
        steps(evening, dispatched=200, jurisdiction="polres-jaksel"),
        steps(morning, dispatched=10, jurisdiction="polres-jakpus"),
        steps(morning, dispatched=15, jurisdiction=None),
    ]
    out = summarise(rows, STARTS)
    assert [(e["jurisdiction"], e["shift"], e["incidents"]) for e in out] == [
        (None, "07-15", 1), ("polres-jakpus", "07-15", 1), ("polres-jaksel", "07-15", 4),
        ("polres-jaksel", "15-23", 1)]
    jaksel = out[2]
    assert jaksel["call_processing"] == {"count": 3, "median_s": 60.0, "p90_s": 120.0}
    assert jaksel["turnout"] == {"count": 2, "median_s": 45.0, "p90_s": 60.0}
    assert jaksel["travel"] == {"count": 2, "median_s": 360.0, "p90_s": 480.0}
    assert jaksel["response"] == {"count": 2, "median_s": 405.0, "p90_s": 540.0}
    assert out[3]["call_processing"] == {"count": 1, "median_s": 200.0, "p90_s": 200.0}
    assert out[3]["response"] == {"count": 0, "median_s": None, "p90_s": None}


def test_summarise_ignores_negative_intervals_but_counts_the_incident():
    out = summarise([steps(dispatched=60, en_route=30)], STARTS)
    assert out[0]["incidents"] == 1
    assert out[0]["turnout"] == {"count": 0, "median_s": None, "p90_s": None}
    assert out[0]["call_processing"]["count"] == 1


def test_summarise_day_filter_uses_the_shift_day():
    night_before = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)  # 05:00 WIB on the 28th: the 27th's 23-07
    day = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 09:00 WIB on the 28th
    rows = [steps(night_before, dispatched=10, jurisdiction="j"), steps(day, dispatched=20, jurisdiction="j")]
    on_27 = summarise(rows, STARTS, day="2026-11-27")
    assert [(e["shift"], e["incidents"], e["call_processing"]["median_s"]) for e in on_27] == [("23-07", 1, 10.0)]
    on_28 = summarise(rows, STARTS, day="2026-11-28")
    assert [(e["shift"], e["incidents"], e["call_processing"]["median_s"]) for e in on_28] == [("07-15", 1, 20.0)]
    assert summarise(rows, STARTS, day="2026-11-29") == []
    assert len(summarise(rows, STARTS)) == 2


def test_summarise_accepts_any_iterable_and_nothing():
    assert summarise(iter([]), STARTS) == []
    out = summarise((s for s in [steps(dispatched=5)]), STARTS)
    assert out[0]["incidents"] == 1 and out[0]["jurisdiction"] is None
