"""JSON Schema files generated from the models, and the check that a change keeps old readers working.

`spkt schemas generate` writes schemas/json/<type>.v<version>.json. The committed files are the
contract: a test fails when a model drifts from its file, and when a model no longer satisfies
what its committed file promised (a field removed, retyped, or newly required).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .events import EventData
from .registry import REGISTRY

JSON_DIR = Path(__file__).parent / "json"


def schema_file(cls: type[EventData]) -> Path:
    return JSON_DIR / f"{cls.event_type}.v{cls.version}.json"


def schema_of(cls: type[EventData]) -> dict[str, Any]:
    schema = cls.model_json_schema(mode="serialization")
    schema["$id"] = f"urn:spkt:{cls.event_type}:v{cls.version}"
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("$defs", {}).get(name, {})
    return node


def _types(node: dict[str, Any], root: dict[str, Any]) -> set[str]:
    """The JSON types a value may take, looking through refs, anyOf and enums."""
    node = _resolve(node, root)
    if "anyOf" in node:
        out: set[str] = set()
        for sub in node["anyOf"]:
            out |= _types(sub, root)
        return out
    if "type" in node:
        t = node["type"]
        return set(t) if isinstance(t, list) else {t}
    if "const" in node or "enum" in node:
        values = node.get("enum", [node.get("const")])
        return {type(v).__name__ for v in values}
    return {"object"} if "properties" in node else {"any"}


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """What in `new` breaks a reader or a stored event written against `old`.

    Removed or retyped fields break readers; a field required now but optional (or absent)
    before breaks reading the events already kept forever in Kafka. Added optional fields and
    widened types (a new enum value aside) are fine.
    """
    problems: list[str] = []
    old_root, new_root = old, new
    _compare(_resolve(old, old_root), _resolve(new, new_root), old_root, new_root, path or "data", problems)
    return problems


def _compare(old, new, old_root, new_root, path, problems) -> None:
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    for name, old_node in old_props.items():
        where = f"{path}.{name}"
        if name not in new_props:
            problems.append(f"{where}: removed")
            continue
        old_t, new_t = _types(old_node, old_root), _types(new_props[name], new_root)
        if not old_t <= new_t and "any" not in new_t:
            problems.append(f"{where}: type changed from {sorted(old_t)} to {sorted(new_t)}")
            continue
        _compare(_resolve(old_node, old_root), _resolve(new_props[name], new_root), old_root, new_root, where, problems)
        old_items = _resolve(old_node, old_root).get("items")
        new_items = _resolve(new_props[name], new_root).get("items")
        if old_items and new_items:
            _compare(_resolve(old_items, old_root), _resolve(new_items, new_root), old_root, new_root, where + "[]", problems)
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"{path}.{name}: newly required (events already stored lack it)")


def check_all() -> dict[str, list[str]]:
    """Per event type: drift and compatibility problems against the committed files."""
    report: dict[str, list[str]] = {}
    for event_type, cls in sorted(REGISTRY.items()):
        problems: list[str] = []
        path = schema_file(cls)
        current = schema_of(cls)
        if not path.exists():
            problems.append(f"{path.name} is missing: run `spkt schemas generate`")
        else:
            committed = json.loads(path.read_text())
            problems += breaking_changes(committed, current)
            if not problems and render(current) != path.read_text():
                problems.append(f"{path.name} differs from the model: run `spkt schemas generate`")
        report[event_type] = problems
    return report


def generate() -> list[Path]:
    """Write every schema file; refuse (ValueError) to overwrite one with a breaking change."""
    written = []
    JSON_DIR.mkdir(exist_ok=True)
    for cls in REGISTRY.values():
        path = schema_file(cls)
        current = schema_of(cls)
        if path.exists():
            problems = breaking_changes(json.loads(path.read_text()), current)
            if problems:
                raise ValueError(
                    f"{cls.event_type} v{cls.version} would break older readers ({'; '.join(problems)}): "
                    f"give the type a new version instead"
                )
        path.write_text(render(current))
        written.append(path)
    return written
