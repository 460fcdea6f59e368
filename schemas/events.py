"""Event payloads (the `data` of the envelope). Past-tense facts, in the users' words.

Readers ignore fields they do not know, so producers may add optional fields freely.

Changing a field's meaning or type, or removing one, needs a new version of the type: the
committed JSON Schemas in schemas/json/ are what older readers rely on, and the tests compare.
"""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Priority = Literal["P1", "P2", "P3", "P4"]
Channel = Literal["phone_110", "walk_in", "sms", "whatsapp", "web", "social_media", "patrol"]
UnitKind = Literal["car", "motorcycle", "foot", "inafis", "reskrim", "lantas"]
# Secondary statuses (DOMAIN.md); the primary status (available / conditionally available /
# not available) follows from them, see services.dispatch.domain.
UnitStatus = Literal[
    "available", "dispatched", "en_route", "on_scene", "transporting", "patrol", "post",
    "escort", "traffic_control", "guarding_scene", "break", "off_duty", "out_of_service",
]


class EventData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    subject_field: ClassVar[str]
    """Which field is the aggregate id: the envelope's subject and the Kafka key."""

    def subject(self) -> str:
        return str(getattr(self, self.subject_field))


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0)
    address: str | None = Field(default=None, max_length=500)
    landmark: str | None = Field(default=None, max_length=200)

    def point(self) -> GeoPoint | None:
        if self.lat is None or self.lon is None:
            return None
        return GeoPoint(lat=self.lat, lon=self.lon)


class Reporter(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    nik: str | None = Field(default=None, pattern=r"^\d{16}$")
    email: str | None = Field(default=None, max_length=254)
    language: Literal["id", "en"] = "id"


class ReportReceived(EventData):
    event_type = "report.received"
    subject_field = "report_id"

    report_id: str
    tracking_code: str
    channel: Channel
    reporter: Reporter = Field(default_factory=Reporter)
    description: str = Field(min_length=1, max_length=5000)
    category: str | None = None
    location: Location
    occurred_at: AwareDatetime | None = None
    received_at: AwareDatetime
    received_by: str | None = Field(default=None, description="Token subject of the call taker or unit")
    panic_unit_id: str | None = Field(default=None, description="the unit whose panic button made this report")
    assistance_request: bool = False
    area: str | None = Field(default=None, description="Polres the report was routed to (its Kafka key)")
    lp_model: Literal["A", "B"] | None = Field(default=None, description="An LP is made at once (A: officer, B: public)")
    gateway: str | None = Field(default=None, description="SMS/WhatsApp gateway that relayed it")
    caller_warning: str | None = Field(default=None, description="Shown to the call taker: e.g. earlier false reports")


class IncidentOpened(EventData):
    event_type = "incident.opened"
    subject_field = "incident_id"

    incident_id: str
    number: str
    report_ids: list[str]
    category: str
    priority: Priority
    summary: str
    location: Location
    jurisdiction: str | None = None
    opened_at: AwareDatetime
    polres: str | None = None
    location_verified: bool = True
    location_note: str | None = None
    category_confidence: float | None = None
    category_low_confidence: bool = False
    category_matched: list[str] = Field(default_factory=list)
    sensitive: bool = False
    assistance_request: bool = False
    response_plan: list[dict] = Field(default_factory=list)
    targets: dict[str, AwareDatetime] = Field(default_factory=dict, description="target name -> due time")
    panic_unit_id: str | None = Field(default=None, description="opened by this unit's panic button")


class IncidentRelocated(EventData):
    """A dispatcher corrected where the incident is; dispatch recommends again from there."""

    event_type = "incident.relocated"
    subject_field = "incident_id"

    incident_id: str
    location: Location
    relocated_by: str
    relocated_at: AwareDatetime
    reason: str | None = None


class MatchScore(BaseModel):
    model_config = ConfigDict(extra="ignore")
    total: float
    distance_m: float
    minutes: float
    category_score: float
    text_score: float
    reasons: list[str]
    # What the details named on both sides added or took off (a make, an item, a colour...).
    detail_score: float = 0.0


class ReportAttached(EventData):
    """A report describing an incident already open: attached to it instead of opening another."""

    event_type = "report.attached"
    subject_field = "incident_id"

    incident_id: str
    report_id: str
    match: MatchScore
    attached_at: AwareDatetime


class IncidentMerged(EventData):
    """`incident_id` is replaced by `into` (EIDO: REPLACED / REPLACING); its reports move along."""

    event_type = "incident.merged"
    subject_field = "incident_id"

    incident_id: str
    into: str
    report_ids: list[str]
    merged_by: str
    reason: str | None = None
    merged_at: AwareDatetime


class IncidentSplit(EventData):
    """A report taken out of `incident_id` into a new incident of its own (EIDO: SPLIT)."""

    event_type = "incident.split"
    subject_field = "incident_id"

    incident_id: str
    report_id: str
    new_incident_id: str
    split_by: str
    reason: str | None = None
    split_at: AwareDatetime


class LpRegistered(EventData):
    event_type = "lp.registered"
    subject_field = "report_id"

    lp_number: str
    model: Literal["A", "B"]
    office: str
    sequence: int
    year: int
    report_id: str
    registered_at: AwareDatetime
    incident_id: str | None = Field(default=None, description="set when the LP is made at closure")
    command_id: str | None = None

    def subject(self) -> str:
        # An LP made at closure is keyed by its incident, so the tkp worker deciding for that
        # incident reads it; one made from a report at intake stays keyed by the report.
        return self.incident_id or self.report_id


class TargetBreached(EventData):
    """A time target of an incident passed without being met (notify and the board react)."""

    event_type = "incident.target-breached"
    subject_field = "incident_id"

    incident_id: str
    target: str
    due_at: AwareDatetime
    breached_at: AwareDatetime
    priority: Priority | None = None


class AssistanceDecided(EventData):
    """The recorded decision on a request for assistance (pendampingan), by a named officer."""

    event_type = "assistance.decided"
    subject_field = "incident_id"

    incident_id: str
    decision: Literal["accept", "decline", "refer"]
    reason: str | None = None
    decided_by: str
    decided_at: AwareDatetime


class IncidentMarkedShareable(EventData):
    """An officer let the public tracker show the progress of a sensitive incident (children,
    sexual offences, domestic violence show nothing beyond "received" until then)."""

    event_type = "incident.marked-shareable"
    subject_field = "incident_id"

    incident_id: str
    marked_by: str
    marked_at: AwareDatetime
    reason: str | None = None


class AssistanceEscalated(EventData):
    """A declined or undecided assistance request, put before the supervisor."""

    event_type = "assistance.escalated"
    subject_field = "incident_id"

    incident_id: str
    why: Literal["declined", "no_decision_in_time"]
    detail: str
    escalated_at: AwareDatetime


class CommandRejected(EventData):
    event_type = "command.rejected"
    subject_field = "command_id"

    command_id: str
    command: str
    reason: str
    rejected_at: AwareDatetime


# --- commands: imperatives, on spkt.commands, keyed by the area (polres) that must decide ---------
class MergeIncidents(EventData):
    event_type = "merge-incidents"
    subject_field = "area"

    command_id: str
    area: str
    incident_id: str
    into: str
    requested_by: str
    reason: str | None = None


class SplitReport(EventData):
    event_type = "split-report"
    subject_field = "area"

    command_id: str
    area: str
    incident_id: str
    report_id: str
    report: dict = Field(description="the report as received (report.received data), from the read model")
    requested_by: str
    reason: str | None = None


class Candidate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    unit_id: str
    callsign: str
    kind: UnitKind
    distance_m: float
    eta_s: float
    reasons: list[str]
    warnings: list[str] = Field(default_factory=list, description="e.g. pulled from a turjawali duty")
    conditional: bool = Field(default=False, description="conditionally available: on a duty, pulled with a record")
    meets: str | None = Field(default=None, description="the response-plan line it fills, e.g. inafis")


class Exclusion(BaseModel):
    model_config = ConfigDict(extra="ignore")
    unit_id: str
    reason: str


class DispatchRecommended(EventData):
    event_type = "dispatch.recommended"
    subject_field = "incident_id"

    incident_id: str
    candidates: list[Candidate]
    excluded: list[Exclusion]
    recommended_at: AwareDatetime
    excluded_counts: dict[str, int] = Field(default_factory=dict, description="reason code -> units, over all units")
    shortfalls: list[str] = Field(default_factory=list, description="response-plan lines nobody can fill")
    trigger: str = Field(default="incident.opened", description="the event that asked for it")


class UnitRegistered(EventData):
    event_type = "unit.registered"
    subject_field = "unit_id"

    unit_id: str
    callsign: str
    kind: UnitKind
    station: str
    capabilities: list[str] = Field(default_factory=list)
    registered_at: AwareDatetime
    shift_start_h: int | None = Field(default=None, ge=0, le=23, description="on duty from this hour (WIB)")
    shift_end_h: int | None = Field(default=None, ge=0, le=23, description="... to this hour; None: always")
    jurisdiction: str | None = Field(default=None, description="the Polres it serves")
    phone: str | None = Field(default=None, max_length=32, description="where the unit is alerted (SMS, WhatsApp)")
    email: str | None = Field(default=None, max_length=254)


class _UnitSession(EventData):
    subject_field = "unit_id"

    unit_id: str
    at: AwareDatetime
    by: str = Field(description="who signed the unit in or out (the token's subject)")
    device: str | None = Field(default=None, max_length=200, description="the phone or terminal, if given")


class UnitSignedIn(_UnitSession):
    """The unit's crew signed in on the field app: alerts reach it there."""

    event_type = "unit.signed-in"


class UnitSignedOut(_UnitSession):
    """The unit's crew signed out of the field app: it is not alerted there until it signs in
    again (its status is unchanged; a dispatcher reaches it by radio)."""

    event_type = "unit.signed-out"


class UnitStatusChanged(EventData):
    event_type = "unit.status-changed"
    subject_field = "unit_id"

    unit_id: str
    status: UnitStatus
    previous_status: UnitStatus | None = None
    incident_id: str | None = None
    changed_at: AwareDatetime
    status_version: int | None = Field(default=None, description="per unit, from dispatch: older ones are ignored")
    command_id: str | None = None
    changed_by: str | None = None
    assignment_id: str | None = None


class UnitPositionReported(EventData):
    event_type = "unit.position-reported"
    subject_field = "unit_id"

    unit_id: str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    at: AwareDatetime
    speed_kmh: float | None = Field(default=None, ge=0)
    heading: float | None = Field(default=None, ge=0, lt=360)


class UnitAssigned(EventData):
    event_type = "unit.assigned"
    subject_field = "incident_id"

    assignment_id: str
    incident_id: str
    unit_id: str
    assigned_by: str
    assigned_at: AwareDatetime
    override_reason: str | None = None
    command_id: str | None = None
    automatic: bool = Field(default=False, description="assigned by dispatch itself (category configured for it)")
    callsign: str | None = None
    warning: str | None = Field(default=None, description="e.g. pulled from a turjawali duty")


class AssignmentAcknowledged(EventData):
    """The unit accepted the assignment."""

    event_type = "assignment.acknowledged"
    subject_field = "incident_id"

    assignment_id: str
    incident_id: str
    unit_id: str
    acknowledged_at: AwareDatetime
    command_id: str | None = None


class AssignmentDeclined(EventData):
    """The unit declined the assignment (with its reason); dispatch recommends again."""

    event_type = "assignment.declined"
    subject_field = "incident_id"

    assignment_id: str
    incident_id: str
    unit_id: str
    reason: str
    declined_at: AwareDatetime
    command_id: str | None = None


class AssignmentUnacknowledged(EventData):
    """No acknowledgement within the limit: an alert, and dispatch recommends again."""

    event_type = "assignment.unacknowledged"
    subject_field = "incident_id"

    assignment_id: str
    incident_id: str
    unit_id: str
    assigned_at: AwareDatetime
    waited_s: float
    alerted_at: AwareDatetime


class UnitArrived(EventData):
    """A unit reached the scene (on_scene): meets the incident's on-scene target."""

    event_type = "unit.arrived"
    subject_field = "incident_id"

    assignment_id: str | None = None
    incident_id: str
    unit_id: str
    arrived_at: AwareDatetime


class AssignmentEnded(EventData):
    """The unit is no longer on the incident: cleared, cancelled or declined."""

    event_type = "assignment.ended"
    subject_field = "incident_id"

    assignment_id: str | None = None
    incident_id: str
    unit_id: str
    why: Literal["cleared", "cancelled", "declined"]
    ended_at: AwareDatetime


class RecommendationRequested(EventData):
    """A dispatcher (or a field unit asking for backup) wants a fresh recommendation."""

    event_type = "recommendation.requested"
    subject_field = "incident_id"

    request_id: str
    incident_id: str
    requested_by: str
    requested_at: AwareDatetime
    backup: bool = Field(default=False, description="a backup request from a unit on the incident")
    unit_id: str | None = Field(default=None, description="the unit asking for backup")
    reason: str | None = None


# --- commands for one unit: on spkt.unit-commands, keyed by unit_id, so one dispatch worker at a
# time decides for each unit (no double assignment) ------------------------------------------------
class AssignUnit(EventData):
    event_type = "assign-unit"
    subject_field = "unit_id"

    command_id: str
    unit_id: str
    incident_id: str
    requested_by: str
    requested_at: AwareDatetime
    override_reason: str | None = None
    automatic: bool = False


class ChangeUnitStatus(EventData):
    event_type = "change-unit-status"
    subject_field = "unit_id"

    command_id: str
    unit_id: str
    status: UnitStatus
    incident_id: str | None = None
    requested_by: str
    requested_at: AwareDatetime
    reason: str | None = None


class RespondToAssignment(EventData):
    event_type = "respond-to-assignment"
    subject_field = "unit_id"

    command_id: str
    unit_id: str
    assignment_id: str
    accept: bool
    reason: str | None = None
    requested_by: str
    requested_at: AwareDatetime


Disposition = Literal[
    "lp_made", "resolved_on_spot", "no_report_needed", "referred", "restorative_justice",
    "false_report", "cancelled", "duplicate",
]


class IncidentClosed(EventData):
    event_type = "incident.closed"
    subject_field = "incident_id"

    incident_id: str
    disposition: Disposition
    summary: str = ""
    closed_at: AwareDatetime
    closed_by: str | None = None
    lp_number: str | None = None
    command_id: str | None = None
    apco_code: str | None = Field(default=None, description="APCO-style close-out code of the disposition")
    prev_hash: str | None = Field(default=None, description="the incident's TKP record chain: the previous record's hash")
    record_hash: str | None = Field(default=None, description="SHA-256 over prev_hash and this record's content")


class MessageDeadLettered(EventData):
    """A message a service could not handle, set aside with the reason (never dropped)."""

    event_type = "message.dead-lettered"
    subject_field = "original_topic"

    service: str
    reason: str
    error_kind: str
    original_topic: str
    original_partition: int
    original_offset: int
    original_key: str | None = None
    original_value: str | None = None
    original_value_encoding: Literal["utf-8", "base64"] = "utf-8"
    original_value_truncated: bool = False
    original_timestamp_ms: int | None = None
    failed_at: AwareDatetime


# --- TKP: the scene, evidence, closure (tkp service) -----------------------------------------------
# Every record the tkp service writes for an incident carries the hash chain of that incident's
# records (services/tkp/chain.py): prev_hash is the previous record's hash, record_hash the SHA-256
# over prev_hash and this record's content (its data without the two hash fields).
ScenePhase = Literal["tptkp", "olah_tkp"]
DutyKind = Literal["pengaturan", "penjagaan", "pengawalan", "patroli"]
CaseDifficulty = Literal["mudah", "sedang", "sulit", "sangat_sulit"]


class _Chained(EventData):
    prev_hash: str | None = None
    record_hash: str | None = None


class _SceneStep(EventData):
    """A TPTKP or olah TKP step: what the unit asks to record, and what is recorded."""

    incident_id: str
    phase: ScenePhase
    step: str
    note: str = ""
    position: GeoPoint | None = None
    unit_id: str | None = None
    recorded_by: str
    recorded_at: AwareDatetime


class _EvidenceItem(EventData):
    """An item of evidence: what the unit asks to register, and what is registered."""

    incident_id: str
    evidence_id: str
    description: str
    kind: str
    seal_number: str
    found_at: GeoPoint | None = None
    found_where: str | None = None
    media: list[str] = Field(default_factory=list)
    collected_by: str
    collected_at: AwareDatetime


class RecordSceneStep(_SceneStep):
    event_type = "record-scene-step"
    subject_field = "incident_id"

    command_id: str


class RegisterEvidence(_EvidenceItem):
    event_type = "register-evidence"
    subject_field = "incident_id"

    command_id: str


class TransferCustody(EventData):
    event_type = "transfer-custody"
    subject_field = "incident_id"

    command_id: str
    incident_id: str
    evidence_id: str
    to: str
    reason: str
    by: str
    at: AwareDatetime


class CorrectEvidence(EventData):
    event_type = "correct-evidence"
    subject_field = "incident_id"

    command_id: str
    incident_id: str
    evidence_id: str
    changes: dict = Field(description="field -> corrected value (description, kind, found_where, media)")
    reason: str
    by: str
    at: AwareDatetime


class CloseIncident(EventData):
    event_type = "close-incident"
    subject_field = "incident_id"

    command_id: str
    incident_id: str
    area: str
    disposition: Disposition
    summary: str = ""
    lp_model: Literal["A", "B"] | None = None
    difficulty: CaseDifficulty = "sedang"
    report_id: str | None = Field(default=None, description="the report the LP is made from (model B)")
    closed_by: str
    requested_at: AwareDatetime


class ReopenIncident(EventData):
    event_type = "reopen-incident"
    subject_field = "incident_id"

    command_id: str
    incident_id: str
    reason: str
    reopened_by: str
    requested_at: AwareDatetime


class RecordLetter(EventData):
    event_type = "record-letter"
    subject_field = "incident_id"

    command_id: str
    incident_id: str
    key: str = Field(description="the deadline met, e.g. sp2hp-a1, spdp")
    reference: str = Field(description="the letter's number")
    sent_by: str
    sent_at: AwareDatetime


class RegisterLp(EventData):
    """tkp asks intake for the LP number of a closure: intake keeps the office's gapless sequence."""

    event_type = "register-lp"
    subject_field = "area"

    command_id: str
    area: str
    incident_id: str
    report_id: str | None = None
    model: Literal["A", "B"]
    requested_by: str
    requested_at: AwareDatetime


class SceneStepRecorded(_SceneStep, _Chained):
    event_type = "scene.step-recorded"
    subject_field = "incident_id"

    command_id: str | None = None
    out_of_order: list[str] = Field(default_factory=list, description="usual earlier steps not yet recorded")
    warning: str | None = None


class SceneStatusChanged(_Chained):
    event_type = "scene.status-changed"
    subject_field = "incident_id"

    incident_id: str
    status: Literal["on_scene", "tptkp", "scene_secured", "olah_tkp", "scene_released"]
    previous: str | None = None
    changed_at: AwareDatetime


class EvidenceRegistered(_EvidenceItem, _Chained):
    event_type = "evidence.registered"
    subject_field = "incident_id"

    command_id: str | None = None


class CustodyTransferred(_Chained):
    event_type = "evidence.custody-transferred"
    subject_field = "incident_id"

    incident_id: str
    command_id: str | None = None
    evidence_id: str
    from_holder: str
    to: str
    reason: str
    by: str
    at: AwareDatetime
    sequence: int = Field(description="1 for the first hand-over of the item, then 2, ...")


class EvidenceCorrected(_Chained):
    event_type = "evidence.corrected"
    subject_field = "incident_id"

    incident_id: str
    command_id: str | None = None
    evidence_id: str
    changes: dict
    reason: str
    by: str
    at: AwareDatetime


class IncidentReopened(_Chained):
    event_type = "incident.reopened"
    subject_field = "incident_id"

    incident_id: str
    command_id: str | None = None
    reason: str
    reopened_by: str
    reopened_at: AwareDatetime


class SttlpIssued(EventData):
    """The receipt of an LP for the reporter (notify sends it)."""

    event_type = "sttlp.issued"
    subject_field = "incident_id"

    incident_id: str
    lp_number: str
    report_ids: list[str] = Field(default_factory=list)
    issued_at: AwareDatetime


class LegalDeadline(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str
    kind: Literal["sp2hp", "spdp"]
    code: str
    due_at: AwareDatetime
    words: str


class LegalClockStarted(EventData):
    """The case went to Reskrim with an LP: its letters are due by these times."""

    event_type = "legal.clock-started"
    subject_field = "incident_id"

    incident_id: str
    lp_number: str | None = None
    difficulty: CaseDifficulty
    deadlines: list[LegalDeadline]
    started_at: AwareDatetime


class LetterSent(_Chained):
    """A letter of the legal clock went out (SP2HP to the reporter, SPDP to the prosecutor)."""

    event_type = "legal.letter-sent"
    subject_field = "incident_id"

    incident_id: str
    command_id: str | None = None
    key: str
    code: str
    reference: str
    sent_by: str
    sent_at: AwareDatetime


class LegalDeadlineOverdue(EventData):
    event_type = "legal.deadline-overdue"
    subject_field = "incident_id"

    incident_id: str
    key: str
    code: str
    words: str
    due_at: AwareDatetime
    noticed_at: AwareDatetime


# --- turjawali duties: on spkt.turjawali, keyed by duty_id ----------------------------------------
class DutyAssigned(EventData):
    event_type = "duty.assigned"
    subject_field = "duty_id"

    duty_id: str
    kind: DutyKind
    unit_ids: list[str]
    incident_id: str | None = None
    area: str | None = None
    route: str | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    check_in_every_min: float | None = Field(default=None, gt=0, description="a guard checks in every N minutes")
    assigned_by: str


class DutyCheckedIn(EventData):
    event_type = "duty.checked-in"
    subject_field = "duty_id"

    duty_id: str
    unit_id: str
    at: AwareDatetime
    position: GeoPoint | None = None
    note: str = ""


class DutyCompleted(EventData):
    event_type = "duty.completed"
    subject_field = "duty_id"

    duty_id: str
    unit_ids: list[str] = Field(default_factory=list)
    completed_by: str
    completed_at: AwareDatetime


class DutyCheckInMissed(EventData):
    event_type = "duty.check-in-missed"
    subject_field = "duty_id"

    duty_id: str
    incident_id: str | None = None
    unit_ids: list[str] = Field(default_factory=list)
    due_at: AwareDatetime
    noticed_at: AwareDatetime


# --- notify: on spkt.notifications, keyed by incident (or by the recipient when there is none) ------
class NotificationSent(EventData):
    event_type = "notification.sent"
    subject_field = "subject_key"

    notification_id: str
    incident_id: str | None = None
    template: str
    recipient_kind: str
    recipient: str = Field(description="masked: the last digits of a phone, the domain of an address")
    channel: str
    attempts: int
    cause_event_id: str
    sent_at: AwareDatetime

    @property
    def subject_key(self) -> str:
        return self.incident_id or self.notification_id


class NotificationFailed(EventData):
    event_type = "notification.failed"
    subject_field = "subject_key"

    notification_id: str
    incident_id: str | None = None
    template: str
    recipient_kind: str
    recipient: str
    channels_tried: list[str]
    attempts: int
    reason: str
    permanent: bool
    cause_event_id: str
    failed_at: AwareDatetime

    @property
    def subject_key(self) -> str:
        return self.incident_id or self.notification_id


ALL_EVENTS: tuple[type[EventData], ...] = (
    UnitSignedIn,
    UnitSignedOut,
    IncidentMarkedShareable,
    ReportReceived,
    IncidentOpened,
    DispatchRecommended,
    UnitRegistered,
    UnitStatusChanged,
    UnitPositionReported,
    UnitAssigned,
    IncidentClosed,
    MessageDeadLettered,
    ReportAttached,
    IncidentMerged,
    IncidentSplit,
    LpRegistered,
    TargetBreached,
    AssistanceDecided,
    AssistanceEscalated,
    CommandRejected,
    MergeIncidents,
    SplitReport,
    AssignmentAcknowledged,
    AssignmentDeclined,
    AssignmentUnacknowledged,
    UnitArrived,
    AssignmentEnded,
    RecommendationRequested,
    AssignUnit,
    ChangeUnitStatus,
    RespondToAssignment,
    IncidentRelocated,
    RecordSceneStep,
    RegisterEvidence,
    TransferCustody,
    CorrectEvidence,
    CloseIncident,
    ReopenIncident,
    RegisterLp,
    RecordLetter,
    LetterSent,
    SceneStepRecorded,
    SceneStatusChanged,
    EvidenceRegistered,
    CustodyTransferred,
    EvidenceCorrected,
    IncidentReopened,
    SttlpIssued,
    LegalClockStarted,
    LegalDeadlineOverdue,
    DutyAssigned,
    DutyCheckedIn,
    DutyCompleted,
    DutyCheckInMissed,
    NotificationSent,
    NotificationFailed,
)
