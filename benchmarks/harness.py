"""What every benchmark returns, and the figures' targets.

A benchmark module has NAME, TITLE and `run(work: Path, quick: bool) -> Result`. `work` is a
fresh folder for its brokers, databases and logs; `quick` shrinks it to a smoke run (seconds,
for the test suite), whose figures are not published.

A figure with a baseline is given three times: the subject, the baseline measured beside it in
the same run, and their ratio (the ratio carries the target: absolute times drift on a shared
machine, ratios much less).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Figure:
    name: str                      # what is measured, e.g. "202 → recommendation, p99"
    value: float
    unit: str                      # "ms", "s", "/s", "MB", "%", "x"
    target: float | None = None    # None: reported for context (a baseline, a median)
    better: str = "lower"          # "lower": met when value <= target; "higher": when value >= target

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def target_text(self) -> str:
        if self.target is None:
            return ""
        return f"{'≤' if self.better == 'lower' else '≥'} {_number(self.target)} {self.unit}".rstrip()

    def value_text(self) -> str:
        return f"{_number(self.value)} {self.unit}".rstrip()

    def as_dict(self) -> dict:
        return {**asdict(self), "met": self.met, "target_text": self.target_text(), "value_text": self.value_text()}


@dataclass
class Result:
    figures: list[Figure]
    details: dict = field(default_factory=dict)   # everything else measured (raw, for the JSON)
    limits: str = ""                              # what limits these figures, in a sentence or three


def _number(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:  # targets are round numbers: "≤ 1 ms", "≥ 70 %"
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def percentiles_ms(samples_ms) -> dict[str, float]:
    """p50 / p99 / max / mean / n of samples already in milliseconds."""
    a = np.asarray(list(samples_ms), dtype=float)
    if a.size == 0:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan"), "mean_ms": float("nan"), "n": 0}
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max()), "mean_ms": float(a.mean()), "n": int(a.size)}


def wait_until(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until `probe` returns something truthy; raise saying what never happened."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"within {timeout:.0f} s: {what} (last seen: {last!r})")


def print_result(result: Result) -> None:
    """A benchmark run on its own (`python -m benchmarks.NAME`): its figures, the raw details, its limits."""
    import json

    for f in result.figures:
        print(f"{f.name:60} {f.value_text():>14}  {f.target_text()}")
    print(json.dumps(result.details, indent=2, default=str))
    print(result.limits)


def run_alone(name: str, doc: str, run: Callable, argv: list[str], quick_help: str = "a smoke run") -> None:
    """`python -m benchmarks.NAME [--quick] [--work DIR]`: one benchmark, in a temporary folder
    unless given one, its result printed."""
    import argparse
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}", description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix=f"spkt-bench-{name}-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print_result(run(work, args.quick))
