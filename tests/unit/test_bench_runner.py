"""`spkt bench`'s runner: figures against targets, the table, the JSON merge and the docs block."""
import json
import sys
import types

import pytest

from benchmarks import run as bench
from benchmarks.harness import Figure, Result


def test_a_figure_is_met_on_the_right_side_of_its_target():
    assert Figure("p99", 0.9, "ms", target=1.0).met is True
    assert Figure("p99", 1.1, "ms", target=1.0).met is False
    assert Figure("ratio", 70.0, "%", target=70, better="higher").met is True
    assert Figure("ratio", 69.9, "%", target=70, better="higher").met is False
    assert Figure("baseline", 5.0, "ms").met is None
    assert Figure("p99", 1.1, "ms", target=1.0).target_text() == "≤ 1 ms"
    assert Figure("rate", 12_345.6, "/s", target=10_000, better="higher").value_text() == "12,346 /s"


def _fake(monkeypatch, name: str, run) -> None:
    module = types.ModuleType(f"benchmarks.{name}")
    module.NAME, module.TITLE, module.run = name, f"the {name} benchmark", run
    monkeypatch.setitem(sys.modules, f"benchmarks.{name}", module)


def test_a_full_run_publishes_its_figures_and_keeps_the_other_benchmarks_latest(monkeypatch, tmp_path):
    latest, docs = tmp_path / "latest.json", tmp_path / "performance.md"
    latest.write_text(json.dumps({"benchmarks": {"memory": {"title": "old", "figures": [], "limits": "kept"}}}))
    docs.write_text(f"# Performance\n\nintro\n\n{bench.BEGIN}\nold table\n{bench.END}\n\nafter\n")
    _fake(monkeypatch, "api", lambda work, quick: Result(
        [Figure("of bare Starlette", 64.5, "%", target=70, better="higher")], {"rps": 1}, "JSON encoding"))
    _fake(monkeypatch, "live", lambda work, quick: (_ for _ in ()).throw(RuntimeError("broker gone")))

    report = bench.run(["api", "live"], latest=latest, docs=docs)

    assert bench.failed(report)
    merged = json.loads(latest.read_text())
    assert list(merged["benchmarks"]) == ["api", "live", "memory"]  # the catalogue's order
    assert merged["benchmarks"]["api"]["figures"][0]["met"] is False
    assert merged["benchmarks"]["live"]["error"] == "RuntimeError: broker gone"
    text = docs.read_text()
    assert "old table" not in text and text.startswith("# Performance\n\nintro") and text.rstrip().endswith("after")
    assert "| api | of bare Starlette | 64.5 % | ≥ 70 % | MISSED |" in text
    assert "| live | (failed) | RuntimeError: broker gone |  | FAILED |" in text
    assert "**memory**" in text and "kept" in text


def test_a_quick_run_publishes_nothing(monkeypatch, tmp_path):
    latest, docs = tmp_path / "latest.json", tmp_path / "performance.md"
    docs.write_text("# Performance\n")
    seen = {}

    def run(work, quick):
        seen.update(quick=quick, work_exists=work.is_dir())
        return Result([Figure("p99", 1.0, "ms", target=2.0)])
    _fake(monkeypatch, "api", run)

    report = bench.run(["api"], quick=True, latest=latest, docs=docs)

    assert seen == {"quick": True, "work_exists": True}
    assert report["benchmarks"]["api"]["figures"][0]["met"] is True
    assert not latest.exists() and docs.read_text() == "# Performance\n"


def test_an_unknown_benchmark_is_named_with_the_choices():
    with pytest.raises(ValueError, match="unknown benchmark nope: choose from recommend, pipeline"):
        bench.run(["nope"])


def test_the_recommend_benchmark_runs_at_smoke_size(tmp_path):
    from benchmarks import recommend

    result = recommend.run(tmp_path, quick=True)
    by_name = {f.name: f for f in result.figures}
    assert by_name["recommend, p99"].target == 1.0 and by_name["recommend, p99"].value > 0
    assert by_name["speed-up over the naive loop, p99"].value == pytest.approx(
        result.details["naive"]["p99_ms"] / result.details["recommend"]["p99_ms"])
    assert result.details["params"]["units"] == 1_000 and "geodesic" in result.limits
