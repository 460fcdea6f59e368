"""Input rules a call taker can understand: normalised phone numbers, NIK form, Indonesian errors."""
from __future__ import annotations

import re
from datetime import date

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


def check_nik(nik: str) -> str:
    """A NIK's form: 16 digits, a province code, and a birth date (day + 40 for women)."""
    nik = nik.strip()
    if not re.fullmatch(r"\d{16}", nik):
        raise ValueError("NIK harus 16 angka")
    if not 11 <= int(nik[:2]) <= 96:
        raise ValueError("NIK tidak sah: kode provinsi (2 angka pertama) tidak dikenal")
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    if day > 40:
        day -= 40
    try:
        date(2000 + year, month, day)
    except ValueError:
        raise ValueError("NIK tidak sah: tanggal lahir (angka ke-7 s.d. 12) tidak mungkin") from None
    return nik


# pydantic error type -> Indonesian; {placeholders} come from the error's context.
_MESSAGES = {
    "missing": "wajib diisi",
    "string_too_short": "terlalu pendek (minimal {min_length} karakter)",
    "string_too_long": "terlalu panjang (maksimal {max_length} karakter)",
    "too_short": "terlalu sedikit (minimal {min_length})",
    "too_long": "terlalu banyak (maksimal {max_length})",
    "less_than_equal": "harus paling besar {le}",
    "greater_than_equal": "harus paling kecil {ge}",
    "less_than": "harus kurang dari {lt}",
    "greater_than": "harus lebih dari {gt}",
    "literal_error": "harus salah satu dari: {expected}",
    "enum": "harus salah satu dari: {expected}",
    "extra_forbidden": "kolom ini tidak dikenal",
    "json_invalid": "isi permintaan bukan JSON yang sah",
    "bool_parsing": "harus true atau false",
    "bool_type": "harus true atau false",
    "float_parsing": "harus berupa angka",
    "float_type": "harus berupa angka",
    "int_parsing": "harus berupa bilangan bulat",
    "string_type": "harus berupa teks",
    "dict_type": "harus berupa objek JSON",
    "model_attributes_type": "harus berupa objek JSON",
    "list_type": "harus berupa daftar",
    "datetime_parsing": "waktu harus dalam format RFC 3339, misalnya 2026-11-27T21:00:00+07:00",
    "datetime_from_date_parsing": "waktu harus dalam format RFC 3339, misalnya 2026-11-27T21:00:00+07:00",
    "timezone_aware": "waktu harus menyertakan zona waktu, misalnya +07:00",
    "string_pattern_mismatch": "bentuknya tidak sesuai",
}


def indonesian(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "value_error":
        return str(error.get("msg", "")).removeprefix("Value error, ")
    template = _MESSAGES.get(kind)
    if template is None:
        return str(error.get("msg", "tidak sah"))
    ctx = {}
    for key, value in (error.get("ctx") or {}).items():
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # "paling besar 90", not "90.0"
        ctx[key] = str(value).replace(" or ", " atau ")
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field and why, in Bahasa Indonesia."""
    detail = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        field = ".".join(p for p in loc if p not in ("body", "query", "path", "header")) or "(isi permintaan)"
        detail.append({"loc": loc, "field": field, "msg": f"{field}: {indonesian(error)}", "type": error.get("type")})
    return JSONResponse({"detail": detail}, status_code=422)


async def no_nul_in_parameters(request: Request) -> None:
    """422 for a path or query parameter holding NUL (U+0000): no id, code or filter has one, and
    PostgreSQL refuses to compare text with one (request bodies: models.RequestBody)."""
    bad = [("path", name) for name, value in request.path_params.items() if "\x00" in str(value)]
    bad += [("query", name) for name, value in request.query_params.multi_items() if "\x00" in value + name]
    detail = []
    for where, name in bad:
        shown = name.replace("\x00", "\\u0000")
        detail.append({"loc": [where, shown], "field": shown, "type": "value_error",
                       "msg": f"{shown}: tidak boleh berisi karakter NUL (\\u0000)"})
    if detail:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail)


async def server_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A fault of ours, not the client's: {"detail": ...} like every other error (the traceback is
    logged by the server, and a test of the API fails on it)."""
    return JSONResponse({"detail": "Terjadi kesalahan di server; permintaan mungkin belum tercatat, silakan ulangi"},
                        status_code=500)
