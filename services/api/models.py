"""Request and response bodies of the HTTP contract (API.md). Separate from events and tables."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.events import Candidate, Channel, Exclusion, Location, Reporter


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "channel": "phone_110",
        "reporter": {"name": "Budi Santoso", "phone": "+6281234567890"},
        "description": "Motor dicuri di depan minimarket, pelaku dua orang ke arah Blok M",
        "location": {"lat": -6.2441, "lon": 106.8001, "address": "Jl. Melawai Raya, Kebayoran Baru"},
    }]})

    channel: Channel
    reporter: Reporter = Field(default_factory=Reporter)
    description: str = Field(min_length=1, max_length=5000)
    category: str | None = Field(default=None, max_length=64)
    location: Location
    occurred_at: AwareDatetime | None = None
    assistance_request: bool = False

    @model_validator(mode="after")
    def _location_needs_coordinates_or_address(self) -> "ReportIn":
        loc = self.location
        if (loc.lat is None) != (loc.lon is None):
            raise ValueError("location: lat dan lon harus diisi bersama")
        if loc.lat is None and not (loc.address and loc.address.strip()):
            raise ValueError("location: isi koordinat (lat, lon) atau alamat")
        return self


class ReportAccepted(BaseModel):
    report_id: str
    tracking_code: str
    status: Literal["received"] = "received"


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


class RecommendationOut(BaseModel):
    candidates: list[Candidate]
    excluded: list[Exclusion]
    recommended_at: datetime | None = None


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


class TkpOut(BaseModel):
    tptkp: list[dict[str, Any]] = Field(default_factory=list)
    olah_tkp: list[dict[str, Any]] = Field(default_factory=list)
    evidence: list[dict[str, Any]] = Field(default_factory=list)


class IncidentOut(BaseModel):
    incident_id: str
    number: str
    status: str
    category: str
    priority: str
    summary: str
    location: dict[str, Any]
    jurisdiction: str | None
    opened_at: datetime
    reports: list[str]
    assignments: list[AssignmentOut]
    recommendation: RecommendationOut | None
    tkp: TkpOut = Field(default_factory=TkpOut)
    duties: list[dict[str, Any]] = Field(default_factory=list)
    timeline: list[TimelineItem]
    disposition: str | None
    lp_number: str | None
    timers: dict[str, Any] = Field(default_factory=dict)


class UnitOut(BaseModel):
    unit_id: str
    callsign: str
    kind: str
    station: str
    capabilities: list[str]
    status: str
    incident_id: str | None
    position: dict[str, Any] | None


class UnitsOut(BaseModel):
    items: list[UnitOut]
