"""The TKP hash chain notices every edit, removal, reordering and forgery, and says where."""
from __future__ import annotations

import dataclasses
import hashlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.tkp.chain import GENESIS, ChainCheck, Sealed, append, canonical, link, verify

WIB = timezone(timedelta(hours=7))
T0 = datetime(2026, 11, 28, 10, 0, tzinfo=WIB)

CONTENTS = [
    {"type": "scene.arrived", "unit": "JS-01", "at": T0, "note": "Unit tiba di TKP, korban tergeletak di gang"},
    {"type": "scene.step", "phase": "tptkp", "step": "police_line", "at": T0 + timedelta(minutes=5),
     "position": {"lat": -6.2615, "lon": 106.8106}, "note": "Garis polisi dipasang"},
    {"type": "evidence.registered", "evidence_id": "BB-1", "seal_number": "SEGEL/001/XI/2026",
     "description": "Pisau dapur bernoda darah", "found_at": {"lat": -6.2616, "lon": 106.8107},
     "collected_by": "Bripka Andi", "at": T0 + timedelta(minutes=30)},
    {"type": "custody.transferred", "evidence_id": "BB-1", "from": "Bripka Andi", "to": "Inafis Polres Jaksel",
     "reason": "pemeriksaan sidik jari", "at": T0 + timedelta(hours=2)},
    {"type": "scene.step", "phase": "olah_tkp", "step": "photographed", "at": T0 + timedelta(hours=2, minutes=10),
     "meta": {"photos": 24, "camera": {"owner": "Inafis", "serial": "CX-77"}}},
    {"type": "incident.closed", "disposition": "lp_made",
     "lp_number": "LP/B/12/XI/2026/SPKT/POLRES METRO JAKARTA SELATAN", "at": T0 + timedelta(hours=6)},
]


def build() -> list[Sealed]:
    chain: list[Sealed] = []
    head = None
    for n, content in enumerate(CONTENTS):
        record = append(head, f"rec-{n}", content)
        chain.append(record)
        head = record.hash
    return chain


def as_dicts(chain: list[Sealed]) -> list[dict]:
    return [{"record_id": r.record_id, "prev_hash": r.prev_hash, "hash": r.hash, "content": dict(r.content)}
            for r in chain]


def assert_broken(check: ChainCheck, index: int, record_id: str, words: str) -> None:
    assert check.valid is False
    assert check.broken_at == index
    assert check.record_id == record_id
    assert check.checked == index + 1
    assert check.reason and words in check.reason


def test_chain_is_linked_from_genesis_and_valid():
    chain = build()
    assert chain[0].prev_hash == GENESIS == "0" * 64
    for before, after in zip(chain, chain[1:]):
        assert after.prev_hash == before.hash
    assert all(len(r.hash) == 64 and r.hash != GENESIS for r in chain)
    assert len({r.hash for r in chain}) == len(chain)
    check = verify(chain)
    assert check == ChainCheck(valid=True, checked=6, broken_at=None, record_id=None, reason=None)
    assert check.as_dict() == {"valid": True, "checked": 6, "broken_at": None, "record_id": None, "reason": None}


def test_link_is_sha256_of_prev_hash_newline_canonical_content():
    content = {"b": 1, "a": "Jl. Wijaya I"}
    expected = hashlib.sha256(GENESIS.encode("ascii") + b"\n" + b'{"a":"Jl. Wijaya I","b":1}').hexdigest()
    assert link(GENESIS, content) == expected
    assert append(None, "x", content).hash == expected


def test_empty_chain_is_valid():
    assert verify([]) == ChainCheck(True, 0, None, None, None)


def test_edited_content_field_is_found():
    records = as_dicts(build())
    records[2]["content"]["seal_number"] = "SEGEL/999/XI/2026"
    assert_broken(verify(records), 2, "rec-2", "isi catatan berubah")


def test_edited_nested_content_is_found():
    records = as_dicts(build())
    records[4]["content"] = {**records[4]["content"],
                             "meta": {"photos": 23, "camera": {"owner": "Inafis", "serial": "CX-77"}}}
    assert_broken(verify(records), 4, "rec-4", "hash tidak cocok")


def test_edited_hash_is_found():
    chain = build()
    chain[3] = dataclasses.replace(chain[3], hash="f" * 64)
    assert_broken(verify(chain), 3, "rec-3", "hash tidak cocok")


def test_rehashed_edit_breaks_the_next_link():
    """An editor who recomputes the edited record's hash still breaks its successor."""
    chain = build()
    content = {**chain[1].content, "note": "Garis polisi tidak dipasang"}
    chain[1] = Sealed("rec-1", chain[1].prev_hash, link(chain[1].prev_hash, content), content)
    assert_broken(verify(chain), 2, "rec-2", "prev_hash tidak cocok")


def test_removed_middle_record_is_found():
    chain = build()
    del chain[3]
    check = verify(chain)
    assert_broken(check, 3, "rec-4", "catatan sebelumnya hilang atau urutan berubah")


def test_removed_first_record_is_found():
    chain = build()[1:]
    check = verify(chain)
    assert_broken(check, 0, "rec-1", "prev_hash")
    assert "hilang" in check.reason


def test_swapped_records_are_found():
    chain = build()
    chain[2], chain[3] = chain[3], chain[2]
    assert_broken(verify(chain), 2, "rec-3", "urutan berubah")


def test_appended_record_with_forged_prev_hash_is_found():
    chain = build()
    forged = append("a" * 64, "rec-6", {"type": "evidence.corrected", "evidence_id": "BB-1", "at": T0})
    check = verify([*chain, forged])
    assert_broken(check, 6, "rec-6", "prev_hash tidak cocok")
    honest = append(chain[-1].hash, "rec-6", {"type": "evidence.corrected", "evidence_id": "BB-1", "at": T0})
    assert verify([*chain, honest]).valid is True


def test_incomplete_record_is_reported_not_raised():
    records = as_dicts(build())
    del records[1]["hash"]
    check = verify(records)
    assert (check.valid, check.broken_at, check.record_id) == (False, 1, "rec-1")
    assert check.reason


def test_canonical_ignores_key_order():
    a = {"z": 1, "a": {"y": [1, 2], "b": "Saksi melihat pelaku"}, "m": None}
    b = {"m": None, "a": {"b": "Saksi melihat pelaku", "y": [1, 2]}, "z": 1}
    assert canonical(a) == canonical(b)
    assert link(GENESIS, a) == link(GENESIS, b)
    assert canonical(a) != canonical({**a, "z": 2})


def test_canonical_same_instant_in_different_zones_is_the_same():
    wib = datetime(2026, 11, 28, 10, 0, tzinfo=WIB)
    utc = datetime(2026, 11, 28, 3, 0, tzinfo=timezone.utc)
    wit = utc.astimezone(timezone(timedelta(hours=9)))
    assert canonical({"at": wib}) == canonical({"at": utc}) == canonical({"at": wit})
    assert canonical({"at": wib}) == b'{"at":"2026-11-28T03:00:00+00:00"}'
    assert canonical({"at": wib}) != canonical({"at": wib + timedelta(seconds=1)})


def test_canonical_keeps_indonesian_text_as_utf8_and_other_types():
    raw = canonical({"catatan": "Korban dibawa ke RS Fatmawati — luka tusuk", "d": date(2026, 11, 28),
                     "berat": Decimal("1.50"), "tag": {"pisau", "darah"}})
    assert "Korban dibawa ke RS Fatmawati — luka tusuk".encode("utf-8") in raw
    assert b'"d":"2026-11-28"' in raw and b'"berat":"1.50"' in raw and b'"tag":["darah","pisau"]' in raw


def test_canonical_refuses_unknown_types():
    with pytest.raises(TypeError):
        canonical({"x": object()})


def test_verify_accepts_sealed_and_plain_dicts_alike():
    chain = build()
    assert verify(chain) == verify(as_dicts(chain)) == verify(iter(chain))
    mixed = [chain[0], *as_dicts(chain[1:])]
    assert verify(mixed).valid is True
    broken = as_dicts(chain)
    broken[5]["content"]["disposition"] = "false_report"
    assert verify([*chain[:5], broken[5]]).broken_at == 5
