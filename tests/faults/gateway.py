"""The SMS/WhatsApp gateway of the fault suite: tests/receivers.py's HttpReceiver, plus what a real
gateway does with the `Idempotency-Key` header — a repeat of a key it has already taken is answered
2xx and not delivered to the phone again.

Both views are kept: `raw()` counts every 2xx arrival per notification id (what the wire saw),
`delivered()` counts per notification id the distinct idempotency keys taken (what reached the
phone). notify sends the notification id as the key on every attempt, so a resend after a kill
shows in `raw()` (2) and not in `delivered()` (1); a resend under another key would show in both.
"""
from __future__ import annotations

import collections

from tests.receivers import HttpReceiver


class DedupingGateway(HttpReceiver):
    def _arrivals(self) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if 200 <= r["status"] < 300 and r["headers"].get("x-spkt-notification-id")]

    def raw(self) -> collections.Counter:
        """notification id -> 2xx arrivals (resends included)."""
        return self.count_by_id()

    def delivered(self) -> collections.Counter:
        """notification id -> messages delivered to the phone: one per distinct Idempotency-Key."""
        keys: dict[str, set[str]] = collections.defaultdict(set)
        for r in self._arrivals():
            nid = r["headers"]["x-spkt-notification-id"]
            keys[nid].add(r["headers"].get("idempotency-key") or f"(no key #{id(r)})")
        return collections.Counter({nid: len(k) for nid, k in keys.items()})

    def unsigned(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if not r["signature_valid"])
