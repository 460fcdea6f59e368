"""The one settings object. Every variable is read from the environment (prefix SPKT_).

README.md lists each of them; `spkt config` prints the values in force.
"""
from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


class MissingSecret(RuntimeError):
    """A secret that must come from the environment (production) does not."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SPKT_", extra="ignore")

    # --- where things live -------------------------------------------------------------
    state_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state") / "spkt",
        description="Logs, pid files, the SQLite read model and the embedded broker's data.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "spkt",
        description="Downloaded broker jars (kept between runs).",
    )

    # --- Kafka ---------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="An existing cluster (host:port,...). When set, no broker is started.",
    )
    kafka_version: str = Field(default="3.9.1", description="Apache Kafka broker version fetched from Maven Central.")
    kafka_port: int = Field(default=19092, description="First broker's client port (broker n uses port + 10*(n-1)).")
    kafka_controller_port: int = Field(default=19093, description="First broker's KRaft controller port.")
    kafka_data_dir: Path | None = Field(default=None, description="Embedded broker data; default <state_dir>/kafka.")
    kafka_heap: str = Field(default="512m", description="Embedded broker JVM heap (-Xms/-Xmx).")
    kafka_start_timeout_s: float = Field(default=90.0, description="How long to wait for the broker to answer.")
    kafka_stop_timeout_s: float = Field(default=20.0, description="TERM, then KILL after this many seconds.")
    topic_partitions: int = Field(default=3, description="Partitions of each event topic.")
    topic_replication: int = Field(default=1, description="Replication factor of each topic (3 on a cluster).")
    positions_retention_ms: int = Field(default=24 * 3600 * 1000, description="How long GPS positions are kept.")
    kafka_session_timeout_s: float = Field(default=6.0, description=(
        "Consumer session timeout of the workers: a worker that dies is noticed after this, and its "
        "partitions move to the others (6 s, the broker's smallest by default, keeps a killed worker's "
        "incidents handled again within 15 s: benchmarks/recovery.py; it was 10)."))
    gathering_workers: list[str] = Field(default=["tkp", "notify"], description=(
        "Workers nobody waits on within a second (a scene's steps are recorded, not raced; a text message "
        "100 ms later reads the same): their fetches always let events gather on the broker for up to "
        "`fetch_gather_ms`, so they cost a fetch per batch, not per event. At 50 reports a second the tkp "
        "worker took 8.5 % of a core instead of 15 %, notify 23 % instead of 26 %."))
    fetch_gather_ms: int = Field(default=100, ge=0, le=1000, description=(
        "How long a gathering worker's fetch waits for events to gather (0: never)."))
    surge_events_per_s: float = Field(default=100.0, ge=0, description=(
        "The other workers let events gather for `surge_gather_ms` a fetch while they read more than this "
        "many events a second, until they read fewer than half of it (0: never). At 10 reports a second "
        "the busiest worker reads about 50; at 50 a second, 150 and more."))
    surge_gather_ms: int = Field(default=10, ge=0, le=1000, description=(
        "How long a fetch waits for events to gather in a surge (0: never)."))

    # --- read model and API -----------------------------------------------------------------
    database_url: str | None = Field(
        default=None, description=(
            "SQLAlchemy URL of the read model; default SQLite at <state_dir>/spkt.db. On SQLite the API keeps "
            "its answers to Idempotency-Keys in a file beside it (spkt-answers.db), so that its write per "
            "report never waits for the projection's write lock."))
    api_host: str = Field(default="127.0.0.1", description="Address the API binds to.")
    api_port: int = Field(default=8000, description="Port the API binds to.")
    jwt_secret: str | None = Field(
        default=None, description="HMAC key for tokens; default a random key kept in <state_dir>/jwt-secret."
    )
    secrets_from_environment: bool = Field(default=False, description=(
        "Production: refuse to make up a token key; SPKT_JWT_SECRET must be set (at least 32 characters)."))
    token_ttl_s: int = Field(default=8 * 3600, description="Default lifetime of a token from `spkt token`.")
    max_body_bytes: int = Field(default=64 * 1024, description="Largest request body the API accepts.")
    ack_timeout_s: float = Field(default=10.0, description="How long the API waits for the broker's acknowledgement.")
    incident_pages_kept: int = Field(default=1_000, ge=0, description=(
        "Incident pages the API keeps built while the projection has not changed them (0: build on every read)."))
    incident_page_max_age_s: float = Field(default=30.0, gt=0, description=(
        "A kept incident page is built again after this many seconds even if unchanged, its hash chains "
        "verified again (an edit made behind the system's back shows on the page by then)."))
    live_buffer_events: int = Field(
        default=20_000, ge=1, description="Recent events the API keeps for live-stream clients resuming with Last-Event-ID.")
    live_client_queue: int = Field(
        default=1_000, ge=1, description="Live-stream messages waiting for one client; a client this far behind is dropped.")
    live_positions_per_unit_per_s: float = Field(
        default=2.0, ge=0, description="GPS updates per unit per second sent to one live-stream client (0: all).")
    live_heartbeat_s: float = Field(
        default=15.0, gt=0, description="Seconds between keepalive comments on an idle live stream.")
    live_window_s: float = Field(
        default=300.0, ge=0, description="How far back the API reads the topics at start to fill the live-stream buffer.")
    map_tile_url: str | None = Field(
        default=None,
        description="Map tiles of the consoles, e.g. https://tiles.example/{z}/{x}/{y}.png; unset: no base map "
                    "(positions over the jurisdiction outlines).")

    # --- intake ---------------------------------------------------------------------------
    city_file: Path | None = Field(
        default=None, description="Stations, places and gazetteer of the deployment (JSON); default the Jakarta demo city."
    )
    boundaries_file: Path | None = Field(
        default=None, description="GeoJSON jurisdiction boundaries (properties.station_id); default nearest station."
    )
    geocoder: str = Field(
        default="gazetteer", description="`gazetteer` (offline, from the city file) or a geopy service name (needs the network)."
    )
    gateway_secrets: dict[str, str] = Field(
        default_factory=dict, description='SMS/WhatsApp gateways and their HMAC secrets, JSON: {"gateway-id": "secret"}.'
    )
    resend_window_s: float = Field(default=600.0, description="A gateway message repeated within this is one report.")
    assistance_decision_s: float = Field(default=900.0, description="Time to decide a request for assistance.")
    caller_limit_per_minute: int = Field(default=5, description="Reports a minute accepted from one caller number.")
    token_limit_per_minute: int = Field(default=120, description="Writes a minute accepted from one token.")
    public_limit_per_minute: int = Field(default=60, description=(
        "Public tracker look-ups a minute from one client address (429 beyond; slows guessing of codes)."))

    # --- dispatch ---------------------------------------------------------------------------
    recommend_candidates: int = Field(default=3, description="How many units a recommendation lists.")
    position_max_age_s: float = Field(default=600.0, description="A unit position older than this is stale.")
    recommend_radius_m: float = Field(default=15_000.0, description="Units farther than this are not recommended.")
    pull_cost_s: float = Field(
        default=240.0, description="Added to the ETA of a unit on a turjawali duty (conditionally available).")
    assignment_ack_s: float = Field(
        default=60.0, description="An assignment not acknowledged within this raises an alert and is re-recommended.")
    auto_assign_categories: str = Field(
        default="", description="Comma-separated category codes whose top candidate dispatch assigns by itself.")
    osrm_url: str | None = Field(
        default=None, description="OSRM server for travel times (e.g. http://osrm:5000); straight line when unset.")
    command_wait_s: float = Field(
        default=5.0, description="How long the API waits for a command's outcome before answering 202.")
    shift_start_hours: str = Field(
        default="7,15,23", description="Local (WIB) hours at which shifts start, for the interval statistics.")

    # --- tkp: the legal clock and turjawali ---------------------------------------------------
    sp2hp_first_days: float = Field(
        default=3.0, description="SP2HP A1 to the reporter is due this many days after the report.")
    sp2hp_every_days: str = Field(
        default="mudah=10,sedang=15,sulit=20,sangat_sulit=30",
        description="Days between periodic SP2HP letters, by case difficulty.")
    spdp_days: float = Field(default=7.0, description="SPDP is due this many days after the investigation order.")
    guard_check_in_min: float = Field(
        default=30.0, description="A scene guard (penjagaan) checks in every this many minutes unless the duty says.")

    # --- notify ---------------------------------------------------------------------------------
    smtp_host: str | None = Field(default=None, description="SMTP server for email; email is not sent when unset.")
    smtp_port: int = Field(default=25, description="SMTP port.")
    smtp_sender: str = Field(default="spkt@polri.example", description="From address of the emails.")
    sms_gateway_url: str | None = Field(
        default=None, description="SMS/WhatsApp gateway endpoint (JSON POST, HMAC-signed); not sent when unset.")
    sms_gateway_secret: str = Field(default="", description="HMAC secret shared with the SMS/WhatsApp gateway.")
    supervisor_contacts: str = Field(
        default="", description="Comma-separated emails or phone numbers of the supervisors on duty.")
    webhook_subscribers: list[dict] = Field(
        default_factory=list,
        description='Other systems\' webhooks, JSON: [{"name", "url", "secret", "types": ["incident.opened", ...]}].')
    notify_max_attempts: int = Field(default=8, description="Delivery attempts per channel before a notification fails.")
    notify_retry_base_s: float = Field(default=2.0, description="First retry delay; doubles each attempt.")
    notify_retry_max_s: float = Field(default=300.0, description="Longest retry delay.")
    notify_per_recipient_per_hour: int = Field(
        default=30, description="Messages one person (reporter, unit, supervisor) gets an hour at most; more wait "
                                "for the next window. Webhook subscribers and panic alarms are never held back.")

    # --- processes --------------------------------------------------------------------------
    log_level: str = Field(default="INFO", description="Log level of every process.")
    ready_timeout_s: float = Field(default=120.0, description="How long `spkt up` waits for every process.")
    demo_report_interval_s: float = Field(default=8.0, description="Seconds between demo reports (spkt up --demo).")
    demo_position_interval_s: float = Field(default=5.0, description="Seconds between demo unit positions.")

    # ---------------------------------------------------------------------------------------
    @property
    def kafka_data(self) -> Path:
        return self.kafka_data_dir or self.state_dir / "kafka"

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap

    @property
    def bootstrap(self) -> str:
        """host:port of the cluster the processes talk to."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def city(self) -> Path:
        return self.city_file or Path(__file__).parent / "demo" / "jakarta.json"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'spkt.db'}"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    def signing_key(self) -> str:
        """The token key: configured, or created once and kept beside the state."""
        if self.jwt_secret:
            if self.secrets_from_environment and len(self.jwt_secret) < 32:
                raise MissingSecret("SPKT_JWT_SECRET is shorter than 32 characters")
            return self.jwt_secret
        if self.secrets_from_environment:
            raise MissingSecret("SPKT_JWT_SECRET is not set, and SPKT_SECRETS_FROM_ENVIRONMENT forbids making one up")
        path = self.state_dir / "jwt-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
