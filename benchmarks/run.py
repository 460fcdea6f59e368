"""`spkt bench [NAME ...]`: run the benchmarks, print one table, write JSON, update the docs.

Each benchmark runs in a fresh work folder (its own broker, database and logs), one after the
other so none takes the other's cores. The results of a full run replace that benchmark's entry
in benchmarks/results/latest.json, and docs/performance.md's table is regenerated from it; a
quick run (--quick: seconds, smoke sizes) publishes nothing.
"""
from __future__ import annotations

import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness import Figure, Result
from benchmarks.system import machine

BENCHMARKS = ("recommend", "pipeline", "positions", "api", "live", "recovery", "memory")
ROOT = Path(__file__).resolve().parent.parent
LATEST = ROOT / "benchmarks" / "results" / "latest.json"
DOCS = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- spkt bench: table begins (generated) -->", "<!-- spkt bench: table ends -->"


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(names: list[str] | None = None, *, quick: bool = False, keep: bool = False,
        latest: Path = LATEST, docs: Path | None = DOCS, json_out: Path | None = None) -> dict:
    """Run the named benchmarks (all when none); return this run's report."""
    names = list(names or BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    report = {"started_at": _now(), "quick": quick, "machine": machine(), "benchmarks": {}}
    base = Path(tempfile.mkdtemp(prefix="spkt-bench-"))
    try:
        for n, name in enumerate(names, start=1):
            module = importlib.import_module(f"benchmarks.{name}")
            say(f"[{n}/{len(names)}] {name}: {module.TITLE}")
            t0 = time.monotonic()
            work = base / name
            work.mkdir()
            try:
                result: Result = module.run(work, quick)
                entry = {"title": module.TITLE, "figures": [f.as_dict() for f in result.figures],
                         "limits": result.limits, "details": result.details}
            except Exception as exc:  # one benchmark failing must not lose the others' figures
                say(traceback.format_exc())
                entry = {"title": module.TITLE, "error": f"{type(exc).__name__}: {exc}", "figures": []}
            entry.update(seconds=round(time.monotonic() - t0, 1), measured_at=_now(), quick=quick,
                         machine=report["machine"])
            report["benchmarks"][name] = entry
            say(f"[{n}/{len(names)}] {name}: done in {entry['seconds']:.0f} s"
                + (f" — FAILED: {entry['error']}" if "error" in entry else ""))
    finally:
        if keep:
            say(f"work folders kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    report["finished_at"] = _now()
    print(table_text(report))
    if json_out:
        _write_json(json_out, report)
    if not quick:
        merged = merge(_read_json(latest), report)
        _write_json(latest, merged)
        say(f"written: {latest}")
        if docs is not None and docs.exists():
            docs.write_text(with_table(docs.read_text(), merged))
            say(f"updated: {docs}")
    return report


def merge(previous: dict | None, report: dict) -> dict:
    """The latest full result of each benchmark: this run's, else the one before."""
    merged = {"benchmarks": dict((previous or {}).get("benchmarks", {}))}
    merged["benchmarks"].update({k: v for k, v in report["benchmarks"].items() if not v.get("quick")})
    merged["benchmarks"] = {k: merged["benchmarks"][k] for k in BENCHMARKS if k in merged["benchmarks"]}
    merged["machine"] = report["machine"]
    merged["updated_at"] = report.get("finished_at") or _now()
    return merged


def rows(report: dict) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, figure, measured, target, verdict) for every figure."""
    out = []
    for name, entry in report["benchmarks"].items():
        if entry.get("error"):
            out.append((name, "(failed)", entry["error"], "", "FAILED"))
        for f in entry.get("figures", []):
            verdict = {True: "met", False: "MISSED", None: ""}[f["met"]]
            out.append((name, f["name"], f["value_text"], f["target_text"], verdict))
    return out


def machine_line(m: dict) -> str:
    return (f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gb')} GB, {m.get('platform')}, "
            f"Python {m.get('python')}, commit {m.get('commit')}")


def table_text(report: dict) -> str:
    lines = [f"machine: {machine_line(report['machine'])}" + ("   (quick run: not published)" if report.get("quick") else "")]
    widths = [11, 44, 14, 12, 6]
    head = ("benchmark", "figure", "measured", "target", "")
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for row in rows(report):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    missed = sum(1 for r in rows(report) if r[4] in ("MISSED", "FAILED"))
    targets = sum(1 for r in rows(report) if r[4])
    lines.append(f"targets met: {targets - missed} of {targets}")
    return "\n".join(lines)


def markdown_table(report: dict) -> str:
    lines = [f"Measured on {machine_line(report['machine'])}; updated {report.get('updated_at', '')}.", "",
             "| benchmark | figure | measured | target | |", "|---|---|---|---|---|"]
    lines += [f"| {b} | {f} | {v} | {t} | {m} |" for b, f, v, t, m in rows(report)]
    lines += ["", "What limits each figure (written by the benchmark from what it measured):", ""]
    for name, entry in report["benchmarks"].items():
        when = entry.get("measured_at", "")
        lines.append(f"- **{name}** ({entry.get('seconds', 0):.0f} s, {when}): {entry.get('limits') or entry.get('error', '')}")
    return "\n".join(lines)


def with_table(text: str, report: dict) -> str:
    """`text` with the part between the markers replaced by the table (appended when missing)."""
    block = f"{BEGIN}\n{markdown_table(report)}\n{END}"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        return before + block + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n" + block + "\n"


def failed(report: dict) -> bool:
    return any(entry.get("error") for entry in report["benchmarks"].values())


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


__all__ = ["BENCHMARKS", "Figure", "run", "merge", "rows", "table_text", "markdown_table", "with_table", "failed"]
