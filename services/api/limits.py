"""Rate limits in the API process: per caller number and per token (sliding one-minute window).

About four in five calls to 110 are pranks or not emergencies: a flood from one number must not
bury the others. A limited caller gets 429 with Retry-After, never silence.
"""
from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}
        self._last_sweep = 0.0

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Count one request; None when allowed, else the seconds until the next is."""
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, deque())
        while hits and now - hits[0] >= self.window_s:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return round(self.window_s - (now - hits[0]), 1) or 0.1
        hits.append(now)
        self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        # Forget callers silent for a whole window, so the table stays small.
        if now - self._last_sweep < self.window_s:
            return
        self._last_sweep = now
        for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= self.window_s]:
            del self._hits[key]
