"""How well the intake classifier suggests categories, on a labelled set of descriptions.

    python -m benchmarks.classification [--errors] [PATH]

The set (benchmarks/data/descriptions.jsonl) holds reports written as people send them to 110,
SPKT or WhatsApp, one `{"text": ..., "category": ...}` a line, written apart from the keyword
lists. Prints accuracy overall and on the confident suggestions, the share flagged
low-confidence, recall per category, the confusions and the mean time per classification.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from services.intake.classify import classify

DATA = Path(__file__).resolve().parent / "data" / "descriptions.jsonl"


def load(path: Path = DATA) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(rows: list[dict[str, str]], repeat: int = 20) -> dict:
    """The figures for a labelled set (see the module docstring)."""
    results = [classify(r["text"]) for r in rows]
    correct = [res.category == r["category"] for r, res in zip(rows, results)]
    confident = [ok for ok, res in zip(correct, results) if not res.low_confidence]
    by_category: dict[str, list[bool]] = defaultdict(list)
    for r, ok in zip(rows, correct):
        by_category[r["category"]].append(ok)
    confusions = Counter((r["category"], res.category) for r, res in zip(rows, results)
                         if res.category != r["category"])
    started = time.perf_counter()
    for _ in range(repeat):
        for r in rows:
            classify(r["text"])
    mean_ms = (time.perf_counter() - started) * 1000 / (repeat * len(rows)) if rows else 0.0
    return {
        "n": len(rows),
        "accuracy": sum(correct) / len(rows) if rows else 0.0,
        "confident_n": len(confident),
        "confident_accuracy": sum(confident) / len(confident) if confident else 0.0,
        "low_confidence_share": 1 - len(confident) / len(rows) if rows else 0.0,
        "recall": {c: sum(oks) / len(oks) for c, oks in sorted(by_category.items())},
        "confusions": [(expected, got, n) for (expected, got), n in confusions.most_common()],
        "errors": [(r["text"], r["category"], res.category, res.confidence)
                   for r, res, ok in zip(rows, results, correct) if not ok],
        "mean_ms": mean_ms,
    }


def report(figures: dict, errors: bool = False) -> str:
    lines = [
        f"descriptions:              {figures['n']}",
        f"accuracy:                  {figures['accuracy']:.3f}",
        f"accuracy when confident:   {figures['confident_accuracy']:.3f} ({figures['confident_n']} confident)",
        f"flagged low-confidence:    {figures['low_confidence_share']:.3f}",
        f"mean time/classification:  {figures['mean_ms']:.3f} ms",
        "",
        "recall per category:",
        *(f"  {code:<22}{recall:.2f}" for code, recall in figures["recall"].items()),
        "",
        "confusions (expected -> suggested):",
        *(f"  {expected:<22}-> {got:<22}{n}" for expected, got, n in figures["confusions"]),
    ]
    if errors:
        lines += ["", "errors:",
                  *(f"  [{exp} -> {got} {conf:.2f}] {text}" for text, exp, got, conf in figures["errors"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    args = sys.argv[1:] if argv is None else argv
    show_errors = "--errors" in args
    paths = [a for a in args if not a.startswith("--")]
    figures = evaluate(load(Path(paths[0]) if paths else DATA))
    print(report(figures, errors=show_errors))
    return figures


if __name__ == "__main__":
    main()
