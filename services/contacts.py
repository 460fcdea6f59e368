"""How people are reached: phone numbers as Indonesians write them, in E.164; a plausible email
address. Pure: the API validates input with these, notify reads contacts from events with them."""
from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL = re.compile(EMAIL_PATTERN)


def normalise_phone(raw: str) -> str:
    """E.164: 0812-3456-7890, 62812..., +62 812 ... → +628123456789. ValueError in Indonesian."""
    digits = _SEPARATORS.sub("", raw.strip())
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if digits.startswith("0"):
        digits = "+62" + digits[1:]
    elif digits.startswith("62"):
        digits = "+" + digits
    elif not digits.startswith("+"):
        raise ValueError("nomor telepon harus diawali 0, 62 atau +kode negara, misalnya 0812-3456-7890")
    if not digits[1:].isdigit():
        raise ValueError("nomor telepon hanya boleh berisi angka")
    if digits.startswith("+62"):
        if not 8 <= len(digits) - 3 <= 12:
            raise ValueError("nomor telepon Indonesia harus 9–13 angka termasuk awalan 0")
    elif not 8 <= len(digits) - 1 <= 15:
        raise ValueError("nomor telepon internasional harus 8–15 angka")
    return digits


def is_email(text: str) -> bool:
    return bool(_EMAIL.fullmatch(text))
