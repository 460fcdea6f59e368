"""What a call taker types is normalised, or refused with a reason in Bahasa Indonesia."""
import pytest
from pydantic import ValidationError

from services.api.models import ReportIn
from services.api.validation import check_nik, indonesian
from services.contacts import normalise_phone


@pytest.mark.parametrize("raw, e164", [
    ("0812-3456-7890", "+6281234567890"), ("62 812 3456 7890", "+6281234567890"),
    ("+62 (21) 5234567", "+62215234567"), ("0062812345678", "+62812345678"), ("+44 20 7946 0958", "+442079460958"),
])
def test_phone_numbers_become_e164(raw, e164):
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize("raw, words", [
    ("812345", "diawali 0, 62"), ("0812-ABC-999", "hanya boleh berisi angka"), ("0812", "9–13 angka"),
])
def test_bad_phone_numbers_are_refused_in_indonesian(raw, words):
    with pytest.raises(ValueError, match=words):
        normalise_phone(raw)


def test_nik_form_province_and_birth_date():
    assert check_nik("3174055506900001") == "3174055506900001"  # woman born 15-06-1990 (55 = 15 + 40)
    with pytest.raises(ValueError, match="16 angka"):
        check_nik("317405550690")
    with pytest.raises(ValueError, match="kode provinsi"):
        check_nik("0174055506900001")
    with pytest.raises(ValueError, match="tanggal lahir"):
        check_nik("3174053213900001")


def test_a_report_names_each_bad_field_in_indonesian():
    with pytest.raises(ValidationError) as caught:
        ReportIn.model_validate({"channel": "telepati", "description": "", "location": {"lat": 91, "lon": 0}})
    messages = {".".join(map(str, e["loc"])): indonesian(e) for e in caught.value.errors()}
    assert messages["channel"].startswith("harus salah satu dari")
    assert "tidak boleh kosong" in messages["description"] or "terlalu pendek" in messages["description"]
    assert messages["location.lat"] == "harus paling besar 90"


def test_location_needs_coordinates_an_address_or_a_landmark():
    with pytest.raises(ValidationError, match="koordinat"):
        ReportIn.model_validate({"channel": "web", "description": "x", "location": {}})
    assert ReportIn.model_validate({"channel": "web", "description": "x", "location": {"landmark": "Monas"}})
