"""Free text on its way to a log, without the personal data it may carry.

Reasons and errors are often written by others (a mail server refusing `<someone@example.id>`,
pydantic quoting the value it refused): e-mail addresses keep only their domain, and runs of
digits long enough to be a phone number or a NIK only their last four digits, as `masked` does
for notifications. Names cannot be recognised in free text: log ids, never names.
"""
from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+'-]+@([\w-]+(?:\.[\w-]+)+)")
# 9 or more digits (a phone number, a NIK; not a date), possibly after + and with spaces, dashes,
# dots or brackets between them; not the tail of an id (a UUID's last group).
_NUMBER = re.compile(r"(?<![\w-])\+?\d(?:[\s\-.()/]{0,2}\d){8,}(?!\w)")


def redact(text: object) -> str:
    """`text` with e-mail addresses as `…@domain` and long numbers as `…1234`."""
    masked = _EMAIL.sub(lambda m: f"…@{m.group(1)}", str(text))
    return _NUMBER.sub(lambda m: "…" + re.sub(r"\D", "", m.group())[-4:], masked)
