"""Request and response bodies of the HTTP contract (API.md). Separate from events and tables."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.events import Candidate, Channel, Exclusion, Location, Reporter, UnitKind, UnitStatus

from services.contacts import EMAIL_PATTERN as EMAIL, normalise_phone

from .validation import check_nik


# Times a client sends lie within these years: beyond them a time cannot even be turned into UTC
# (year 1 at +07:00) or a day added to it (year 9999), and no report, fix or duty is dated there.
EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def plausible_time(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is not None and not EARLIEST <= value < LATEST:
        raise ValueError(f"waktu harus antara tahun {EARLIEST.year} dan {LATEST.year - 1}")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(plausible_time)]


def _nul_in(value: Any) -> str | None:
    """Where in `value` a text holds NUL (U+0000): "" for the value itself, else the inner path."""
    if isinstance(value, str):
        return "" if "\x00" in value else None
    if isinstance(value, BaseModel):
        value = {name: getattr(value, name) for name in type(value).model_fields}
    if isinstance(value, dict):
        items = [(str(k).replace("\x00", "\\u0000"), inner) for k, v in value.items() for inner in (k, v)]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return None
    for key, inner in items:
        where = _nul_in(inner)
        if where is not None:
            return f"{key}.{where}" if where else key
    return None


class RequestBody(BaseModel):
    """A request body. No text in it may hold NUL (U+0000): nobody types one, and PostgreSQL cannot
    store one (the event would be accepted and then set aside by the worker writing it)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        where = _nul_in(value)
        if where is not None:
            raise ValueError("teks tidak boleh berisi karakter NUL (\\u0000)" + (f" (di {where})" if where else ""))
        return value


class ReporterIn(RequestBody):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32, description="Normalised to E.164 (+62...)")
    nik: str | None = Field(default=None, max_length=16, description="16 digits, checked for form")
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL,
                              description="Where receipts and progress letters go (besides SMS/WhatsApp)")
    language: Literal["id", "en"] = Field(default="id", description="Language of the reporter's messages")

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None

    @field_validator("nik")
    @classmethod
    def _nik(cls, value: str | None) -> str | None:
        return check_nik(value) if value else None

    def as_reporter(self) -> Reporter:
        return Reporter(**self.model_dump())


class ReportIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "phone_110",
        "reporter": {"name": "Budi Santoso", "phone": "+6281234567890"},
        "description": "Motor dicuri di depan minimarket, pelaku dua orang ke arah Blok M",
        "location": {"lat": -6.2441, "lon": 106.8001, "address": "Jl. Melawai Raya, Kebayoran Baru"},
    }]})

    channel: Channel
    reporter: ReporterIn = Field(default_factory=ReporterIn)
    description: str = Field(min_length=1, max_length=5000)
    category: str | None = Field(default=None, max_length=64, description="A code from GET /api/v1/categories")
    location: Location
    occurred_at: Moment | None = None
    assistance_request: bool = False
    lp_model: Literal["A", "B"] | None = Field(
        default=None, description="Make an LP at once: A (officer/patrol) or B (member of the public)")

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("uraian kejadian tidak boleh kosong")
        return value.strip()

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        from services.intake.categories import BY_CODE

        if value is not None and value not in BY_CODE:
            raise ValueError(f"kategori '{value}' tidak dikenal; lihat GET /api/v1/categories")
        return value

    @model_validator(mode="after")
    def _location_needs_coordinates_or_address(self) -> "ReportIn":
        loc = self.location
        if (loc.lat is None) != (loc.lon is None):
            raise ValueError("location: lat dan lon harus diisi bersama")
        if loc.lat is None and not ((loc.address or "").strip() or (loc.landmark or "").strip()):
            raise ValueError("location: isi koordinat (lat, lon), alamat, atau patokan")
        return self


class InboundMessage(RequestBody):
    """What an SMS/WhatsApp gateway relays (signed with its secret)."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{
        "sender": "081234567890", "text": "Tolong ada tawuran di depan Pasar Tanah Abang",
        "received_at": "2026-11-27T21:00:00+07:00", "channel": "whatsapp",
    }]})

    sender: str = Field(min_length=3, max_length=32)
    text: str = Field(min_length=1, max_length=5000)
    received_at: Moment
    channel: Literal["sms", "whatsapp"] = "sms"
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return normalise_phone(value)


class ReportAccepted(BaseModel):
    report_id: str
    tracking_code: str
    status: Literal["received"] = "received"
    caller_warning: str | None = None


class ReportOut(BaseModel):
    report_id: str
    status: Literal["received", "triaged"]
    incident_id: str | None
    merged: bool
    tracking_code: str
    channel: str
    description: str
    category: str | None
    location: dict[str, Any]
    received_at: datetime
    assistance_request: bool
    lp_number: str | None = None
    match: dict[str, Any] | None = Field(default=None, description="Why it was attached to its incident")
    caller_warning: str | None = None


class CategoryOut(BaseModel):
    code: str
    name: str
    group: str
    priority: str
    response_plan: list[dict[str, Any]]
    targets: dict[str, int]
    duplicate_radius_m: float
    duplicate_window_s: int
    sensitive: bool

    @classmethod
    def of(cls, c) -> "CategoryOut":
        return cls(code=c.code, name=c.name, group=c.group, priority=c.priority,
                   response_plan=[{"kind": n.kind, "count": n.count, "capabilities": list(n.capabilities)}
                                  for n in c.response_plan],
                   targets={"dispatch_s": c.targets.dispatch_s, "on_scene_s": c.targets.on_scene_s},
                   duplicate_radius_m=c.duplicate_radius_m, duplicate_window_s=c.duplicate_window_s,
                   sensitive=c.sensitive)


class MergeIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"into": "inc-5c21e0", "reason": "Laporan tentang kebakaran yang sama di Pasar Minggu"}]})
    into: str = Field(min_length=1, max_length=64, description="The incident that remains")
    reason: str | None = Field(default=None, max_length=500)


class SplitIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"report_id": "rep-91ab02", "reason": "Kejadian lain di tempat berbeda"}]})
    report_id: str = Field(min_length=1, max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class CommandAccepted(BaseModel):
    command_id: str
    status: Literal["accepted"] = "accepted"


class DecisionIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"decision": "accept", "reason": "Pendampingan pengamanan acara warga disetujui"}]})
    decision: Literal["accept", "decline", "refer"]
    reason: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _decline_needs_reason(self) -> "DecisionIn":
        if self.decision in ("decline", "refer") and not (self.reason or "").strip():
            raise ValueError("reason: alasan wajib diisi untuk menolak atau merujuk")
        return self


class DecisionOut(BaseModel):
    incident_id: str
    decision: str
    reason: str | None
    decided_by: str
    decided_at: datetime


class EscalationOut(BaseModel):
    incident_id: str
    number: str | None
    why: str
    detail: str
    escalated_at: datetime


class EscalationsOut(BaseModel):
    items: list[EscalationOut]


class RecommendationOut(BaseModel):
    candidates: list[Candidate]
    excluded: list[Exclusion]
    recommended_at: datetime | None = None
    excluded_counts: dict[str, int] = Field(default_factory=dict, description="reason code -> units, over all units")
    shortfalls: list[str] = Field(default_factory=list, description="response-plan lines nobody can fill")
    trigger: str | None = None


class TimelineItem(BaseModel):
    at: datetime
    type: str
    actor: str
    summary: str


class AssignmentOut(BaseModel):
    assignment_id: str
    unit_id: str
    status: str
    assigned_by: str
    assigned_at: datetime
    callsign: str | None = None
    automatic: bool = False
    warning: str | None = None
    acknowledged_at: datetime | None = None
    en_route_at: datetime | None = None
    arrived_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None


class TkpOut(BaseModel):
    tptkp: list[dict[str, Any]] = Field(default_factory=list)
    olah_tkp: list[dict[str, Any]] = Field(default_factory=list)
    evidence: list[dict[str, Any]] = Field(default_factory=list)


class IncidentCore(BaseModel):
    """What every view of an incident shows."""
    incident_id: str
    number: str
    status: str
    category: str
    priority: str
    summary: str
    location: dict[str, Any]
    jurisdiction: str | None
    opened_at: datetime


class IncidentOut(IncidentCore):
    reports: list[str]
    assignments: list[AssignmentOut]
    recommendation: RecommendationOut | None
    tkp: TkpOut = Field(default_factory=TkpOut)
    duties: list[dict[str, Any]] = Field(default_factory=list)
    timeline: list[TimelineItem]
    disposition: str | None
    lp_number: str | None
    timers: dict[str, Any] = Field(default_factory=dict)
    polres: str | None = None
    location_verified: bool = True
    location_note: str | None = None
    category_confidence: float | None = None
    category_low_confidence: bool = False
    sensitive: bool = False
    assistance_request: bool = False
    decision: dict[str, Any] | None = None
    merged_into: str | None = None
    intervals: IncidentIntervalsOut | None = None
    response_plan: list[dict[str, Any]] = Field(default_factory=list)
    scene_status: str | None = None
    chain: dict[str, Any] = Field(default_factory=dict, description="whether the timeline and TKP records still hold")
    apco_code: str | None = None
    legal_deadlines: list[dict[str, Any]] = Field(default_factory=list)


class UnitOut(BaseModel):
    unit_id: str
    callsign: str
    kind: str
    station: str
    capabilities: list[str]
    status: str
    incident_id: str | None
    position: dict[str, Any] | None
    availability: Literal["available", "conditionally_available", "not_available"] = "available"
    status_since: datetime | None = None
    stale: bool = Field(default=False, description="no position within SPKT_POSITION_MAX_AGE_S")
    shift: str | None = Field(default=None, description="on duty hours (WIB), e.g. 07-19")
    jurisdiction: str | None = None
    signed_in: bool = Field(default=True, description="signed in on the field app (alerts go there)")


class UnitsOut(BaseModel):
    items: list[UnitOut]


# --- units and assignments (dispatch) -----------------------------------------------------------
UNIT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class UnitIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"unit_id": "u-jaksel-r2-07", "callsign": "JAKSEL R2-07", "kind": "motorcycle", "station": "polsek-tebet", "capabilities": ["rapid_response"], "shift_start_h": 7, "shift_end_h": 19, "jurisdiction": "polsek-tebet", "phone": "+6281211110007"}]})
    unit_id: str = Field(pattern=UNIT_ID, description="Letters, digits, dot, dash, underscore")
    callsign: str = Field(min_length=1, max_length=64)
    kind: UnitKind
    station: str = Field(min_length=1, max_length=200)
    capabilities: list[str] = Field(default_factory=list, max_length=20)
    shift_start_h: int | None = Field(default=None, ge=0, le=23, description="On duty from this hour (WIB)")
    shift_end_h: int | None = Field(default=None, ge=0, le=23, description="... to this hour (WIB)")
    jurisdiction: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32, description="Where the unit is alerted (E.164, +62...)")
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL)

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return normalise_phone(value) if value else None

    @model_validator(mode="after")
    def _shift_both_or_neither(self):
        if (self.shift_start_h is None) != (self.shift_end_h is None):
            raise ValueError("jam dinas perlu jam mulai dan jam selesai (shift_start_h dan shift_end_h)")
        return self


class UnitStatusIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "on_scene", "incident_id": "inc-7f3a10"}]})
    status: UnitStatus
    incident_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=500)


class UnitStatusOut(BaseModel):
    unit_id: str
    status: str
    previous_status: str | None = None
    incident_id: str | None = None


class PositionIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"lat": -6.2263, "lon": 106.8531, "at": "2026-11-28T19:02:11+07:00", "speed_kmh": 32.5, "heading": 270}]})
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    at: Moment | None = Field(default=None, description="When the fix was taken; now when omitted")
    speed_kmh: float | None = Field(default=None, ge=0, le=400)
    heading: float | None = Field(default=None, ge=0, lt=360)


class PositionAccepted(BaseModel):
    unit_id: str
    status: Literal["accepted"] = "accepted"


class AssignIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"unit_id": "u-jaksel-r2-07", "override_reason": None}]})
    unit_id: str = Field(pattern=UNIT_ID)
    override_reason: str | None = Field(default=None, max_length=500,
                                        description="Why not the top recommendation (kept on the record)")


class AssignmentCreated(BaseModel):
    assignment_id: str
    unit_id: str
    status: str


class CommandPending(BaseModel):
    command_id: str
    status: Literal["pending"] = "pending"
    detail: str


class DeclineIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "Ban kempis, tidak dapat bergerak"}]})
    reason: str = Field(min_length=3, max_length=500, description="Why the unit cannot take it")


class AssignmentAnswerOut(BaseModel):
    assignment_id: str
    unit_id: str
    status: Literal["accepted", "declined"]


class BackupIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "Massa bertambah, butuh dua unit lagi"}]})
    reason: str | None = Field(default=None, max_length=500)


class RelocateIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"location": {"lat": -6.2401, "lon": 106.8012, "address": "Jl. Panglima Polim IX"}, "reason": "Pelapor salah menyebut jalan"}]})
    location: Location
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _needs_a_point(self):
        if self.location.point() is None:
            raise ValueError("lokasi baru perlu koordinat (lat dan lon)")
        return self


class PanicIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"lat": -6.2263, "lon": 106.8531, "note": "Diserang massa"}]})
    lat: float | None = Field(default=None, ge=-90, le=90, description="Where the unit is; its last GPS fix if omitted")
    lon: float | None = Field(default=None, ge=-180, le=180)
    note: str | None = Field(default=None, max_length=500)


class PanicAccepted(BaseModel):
    report_id: str
    tracking_code: str
    status: Literal["received"] = "received"


class IntervalStats(BaseModel):
    count: int
    median_s: float | None
    p90_s: float | None


class IntervalGroup(BaseModel):
    jurisdiction: str | None
    shift: str
    incidents: int
    call_processing: IntervalStats
    turnout: IntervalStats
    travel: IntervalStats
    response: IntervalStats


class IncidentIntervalsOut(BaseModel):
    received_at: datetime
    dispatched_at: datetime | None = None
    en_route_at: datetime | None = None
    on_scene_at: datetime | None = None
    call_processing_s: float | None = None
    turnout_s: float | None = None
    travel_s: float | None = None
    response_s: float | None = None


class IntervalsOut(BaseModel):
    date: str
    groups: list[IntervalGroup]

IncidentOut.model_rebuild()


# --- TKP -----------------------------------------------------------------------------------------
class PointIn(RequestBody):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class SceneStepIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"step": "police_line", "note": "Garis polisi dipasang radius 20 m", "position": {"lat": -6.2841, "lon": 106.8442}}]})
    step: str = Field(min_length=1, max_length=64, examples=["police_line"])
    note: str = Field(default="", max_length=2000)
    position: PointIn | None = None


class SceneStepOut(BaseModel):
    incident_id: str
    phase: Literal["tptkp", "olah_tkp"]
    step: str
    recorded_at: datetime
    out_of_order: list[str] = Field(default_factory=list, description="usual earlier steps not yet recorded")
    warning: str | None = None


class EvidenceIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"description": "Pisau lipat bergagang hitam, bernoda", "kind": "senjata_tajam", "seal_number": "SEGEL-JS-2026-000123", "found_at": {"lat": -6.2841, "lon": 106.8442}, "found_where": "Di bawah gerobak sayur"}]})
    description: str = Field(min_length=3, max_length=2000, examples=["Pisau dapur bergagang hitam, noda merah"])
    kind: str = Field(min_length=1, max_length=100, examples=["senjata tajam"])
    seal_number: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9./\-]+$", examples=["SGL-2026-000123"])
    found_at: PointIn | None = None
    found_where: str | None = Field(default=None, max_length=500, examples=["di bawah meja ruang tamu"])
    media: list[str] = Field(default_factory=list, max_length=50, description="references to photos, videos")


class EvidenceCreated(BaseModel):
    evidence_id: str
    seal_number: str


class CustodyIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"to": "Inafis Polres Jakarta Selatan (Bripka Andi)", "reason": "Pemeriksaan sidik jari"}]})
    to: str = Field(min_length=2, max_length=200, examples=["Tahti Polres Metro Jakarta Selatan"])
    reason: str = Field(min_length=3, max_length=1000, examples=["penyimpanan barang bukti"])


class CustodyOut(BaseModel):
    evidence_id: str
    sequence: int
    from_holder: str
    to: str
    reason: str | None = None
    by: str | None = None
    at: datetime


class EvidenceOut(BaseModel):
    evidence_id: str
    incident_id: str
    description: str
    kind: str
    seal_number: str
    found_at: dict[str, Any] | None
    found_where: str | None
    media: list[str]
    collected_by: str
    collected_at: datetime
    holder: str
    corrections: list[dict[str, Any]]
    custody: list[CustodyOut]
    chain_valid: bool
    chain: dict[str, Any]


class CloseLpIn(RequestBody):
    model_config = ConfigDict(extra="forbid")
    model: Literal["A", "B"]


class CloseIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"disposition": "lp_made", "summary": "Pelaku diamankan, korban dirawat di RS Fatmawati", "lp": {"model": "B"}}]})
    disposition: Literal["lp_made", "resolved_on_spot", "no_report_needed", "referred", "restorative_justice",
                         "false_report", "cancelled", "duplicate"]
    summary: str = Field(default="", max_length=4000)
    lp: CloseLpIn | None = None
    difficulty: Literal["mudah", "sedang", "sulit", "sangat_sulit"] = "sedang"


class ClosedOut(BaseModel):
    incident_id: str
    disposition: str
    lp_number: str | None = None
    closed_at: datetime


class ReopenIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "Bukti baru dari saksi"}]})
    reason: str = Field(min_length=3, max_length=2000)


class ReopenedOut(BaseModel):
    incident_id: str
    status: Literal["reopened"] = "reopened"


class DutyIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"kind": "pengawalan", "unit_ids": ["u-lantas-03", "u-lantas-04"], "area": "Jl. Sudirman - Thamrin", "route": "Bundaran HI - Semanggi", "starts_at": "2026-11-29T06:00:00+07:00", "ends_at": "2026-11-29T09:00:00+07:00", "check_in_every_min": 30}]})
    kind: Literal["pengaturan", "penjagaan", "pengawalan", "patroli"]
    unit_ids: list[str] = Field(min_length=1, max_length=50)
    incident_id: str | None = None
    area: str | None = Field(default=None, max_length=500, examples=["Simpang Kuningan, sisi utara"])
    route: str | None = Field(default=None, max_length=2000)
    starts_at: Annotated[datetime, AfterValidator(plausible_time)] | None = None
    ends_at: Annotated[datetime, AfterValidator(plausible_time)] | None = None
    check_in_every_min: float | None = Field(default=None, gt=0, le=24 * 60,
                                             description="a guard checks in every N minutes (penjagaan: default setting)")


class DutyCreated(BaseModel):
    duty_id: str


class CheckInIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"unit_id": "u-lantas-03", "note": "Situasi aman", "position": {"lat": -6.195, "lon": 106.823}}]})
    unit_id: str
    note: str = Field(default="", max_length=1000)
    position: PointIn | None = None


class DutyOut(BaseModel):
    duty_id: str
    kind: str
    unit_ids: list[str]
    incident_id: str | None
    area: str | None
    route: str | None
    starts_at: datetime
    ends_at: datetime | None
    check_in_every_min: float | None
    status: str
    last_check_in_at: datetime | None
    missed_check_ins: int


class LetterIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"key": "sp2hp-a1", "reference": "B/123/XI/2026/Reskrim"}]})
    key: str = Field(min_length=2, max_length=32, examples=["sp2hp-a1"], description="the deadline this letter meets")
    reference: str = Field(min_length=2, max_length=200, examples=["B/123/XI/2026/Reskrim"])


class LetterOut(BaseModel):
    incident_id: str
    key: str
    code: str
    sent_at: datetime


class CorrectionIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"changes": {"description": "Pisau lipat bergagang hitam"}, "reason": "Salah ketik warna gagang"}]})
    changes: dict[str, Any] = Field(min_length=1, examples=[{"description": "Pisau lipat bergagang hitam"}],
                                    description="description, kind, found_where and/or media: the corrected values")
    reason: str = Field(min_length=3, max_length=1000)


class CorrectionOut(BaseModel):
    evidence_id: str
    status: Literal["corrected"] = "corrected"


class IncidentSummary(IncidentCore):
    """One row of the incident queue."""
    updated_at: datetime
    scene_status: str | None = None
    sensitive: bool = False
    assistance_request: bool = False
    location_verified: bool = True
    targets: dict[str, Any] = Field(default_factory=dict, description="The category's time targets (seconds)")
    breached: list[str] = Field(default_factory=list, description="Time targets breached so far")
    units: list[str] = Field(default_factory=list, description="Units assigned and not yet cleared")


class IncidentPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "items": [{"incident_id": "inc-7f3a", "number": "INC/2026/11/000123", "status": "assigned",
                   "category": "pencurian_dengan_kekerasan", "priority": "P1", "summary": "Begal motor",
                   "location": {"lat": -6.2615, "lon": 106.8106}, "jurisdiction": "polsek-kebayoran-baru",
                   "opened_at": "2026-11-28T12:00:00+07:00", "updated_at": "2026-11-28T12:01:10+07:00",
                   "breached": [], "units": ["u-jaksel-01"]}],
        "next_cursor": "MjAyNi0xMS0yOFQwNTowMDowMHxpbmMtN2YzYQ"}]})
    items: list[IncidentSummary]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page")


class BreachOut(BaseModel):
    incident_id: str
    number: str | None
    priority: str | None
    timer: str
    detail: str
    breached_at: datetime


class BoardOut(BaseModel):
    at: datetime
    incidents: dict[str, dict[str, int]] = Field(description="Open incidents: by_status and by_priority")
    units: dict[str, dict[str, int]] = Field(description="Units: by_status and by_class (available, conditional, not_available)")
    units_by_status: dict[str, list[UnitOut]] = Field(description="The unit board: units grouped by status")
    breached: list[BreachOut] = Field(description="Time targets breached on incidents still open")


class Milestone(BaseModel):
    at: datetime
    code: Literal["received", "in_progress", "unit_on_the_way", "unit_on_scene", "lp_made", "closed"]
    text: str


class TrackOut(BaseModel):
    """What the public may see of a report: no names, phone numbers, NIK or exact address."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tracking_code": "SPKT-7K2Q9M", "status": "unit_on_scene", "status_text": "Petugas sudah tiba di lokasi",
        "updated_at": "2026-11-28T12:09:00+07:00", "lp_number": None,
        "milestones": [{"at": "2026-11-28T12:00:00+07:00", "code": "received", "text": "Laporan diterima"}]}]})
    tracking_code: str
    status: str
    status_text: str
    updated_at: datetime
    lp_number: str | None = None
    milestones: list[Milestone]


class ShareableIn(RequestBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "Pelapor (ibu korban) meminta informasi perkembangan"}]})
    reason: str | None = Field(default=None, max_length=500)


class ShareableOut(BaseModel):
    incident_id: str
    shareable: bool


class ErrorOut(BaseModel):
    """Every error the API answers (API.md, Errors): a sentence saying what is wrong, or for bad
    input a list naming each field and why."""
    detail: str | list[dict[str, Any]]


class UnitSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"device": "Samsung A14 (IMEI ...4321)"}]})
    device: str | None = Field(default=None, max_length=200, description="the phone or terminal")


class UnitSessionOut(BaseModel):
    unit_id: str
    signed_in: bool
