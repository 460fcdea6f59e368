"""deploy/production keeps in step with the code: real settings, real process names, safe defaults."""
import re
import shlex
from pathlib import Path

from spkt.runner import PROCESSES
from spkt.settings import Settings

PRODUCTION = Path(__file__).resolve().parents[2] / "deploy" / "production"
ENV_EXAMPLE = PRODUCTION / "spkt.env.example"
UNITS = sorted((PRODUCTION / "systemd").glob("*.service"))
SETTING_NAMES = {"SPKT_" + name.upper() for name in Settings.model_fields}
SPKT_NAME = re.compile(r"\bSPKT_[A-Z0-9_]+\b")


def env_assignments() -> dict[str, str]:
    """KEY=VALUE lines of the env example (comments skipped, one level of quotes removed)."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def unit_lines(path: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1].strip() for line in path.read_text().splitlines() if line.startswith(f"{key}=")]


def test_settings_are_prefixed_spkt():
    assert Settings.model_config["env_prefix"] == "SPKT_"


def test_every_spkt_name_is_a_setting():
    for path in [ENV_EXAMPLE, *UNITS]:
        unknown = sorted(set(SPKT_NAME.findall(path.read_text())) - SETTING_NAMES)
        assert unknown == [], f"{path.name}: not fields of spkt.settings.Settings: {unknown}"


def test_every_exec_start_runs_a_known_process():
    assert UNITS
    for path in UNITS:
        (command,) = unit_lines(path, "ExecStart")
        argv = shlex.split(command)
        assert argv[0] == "/opt/spkt/.venv/bin/spkt" and argv[1] == "run" and len(argv) == 3, path.name
        assert argv[2] in PROCESSES, f"{path.name}: {argv[2]!r} is not one of {PROCESSES}"


def test_env_example_is_a_cluster_with_postgresql():
    env = env_assignments()
    assert len(env["SPKT_KAFKA_BOOTSTRAP"].split(",")) >= 3
    assert int(env["SPKT_TOPIC_REPLICATION"]) >= 3
    assert int(env["SPKT_TOPIC_PARTITIONS"]) >= 2
    assert env["SPKT_DATABASE_URL"].startswith("postgresql")
    assert env["SPKT_JWT_SECRET"]
    # The units set these per instance; the EnvironmentFile would override them.
    assert "SPKT_STATE_DIR" not in env and "SPKT_API_PORT" not in env


def test_env_example_parses_as_settings(monkeypatch):
    for key, value in env_assignments().items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.topic_replication >= 3 and not settings.embedded_kafka


def test_a_unit_for_each_process():
    ran = {shlex.split(unit_lines(path, "ExecStart")[0])[2]: path.name for path in UNITS}
    assert set(ran) == {"intake", "dispatch", "tkp", "notify", "projection", "api"}
    assert ran["projection"] == "spkt-projection.service"  # one writer: not a template
    for name in ("intake", "dispatch", "tkp", "notify", "api"):
        assert ran[name] == f"spkt-{name}@.service"


def test_units_are_confined_and_restarted():
    for path in UNITS:
        text = path.read_text()
        for line in ("EnvironmentFile=/etc/spkt/spkt.env", "Restart=always", "RestartSec=2", "User=spkt",
                     "NoNewPrivileges=yes", "ProtectSystem=strict", "WantedBy=spkt.target"):
            assert line in text.splitlines(), f"{path.name}: missing {line}"
        (state_dir,) = [v for v in unit_lines(path, "Environment") if v.startswith("SPKT_STATE_DIR=")]
        assert unit_lines(path, "ReadWritePaths") == [state_dir.split("=", 1)[1]], path.name
        if path.name.endswith("@.service"):
            assert "%i" in state_dir, f"{path.name}: instances must not share a state dir"
        assert unit_lines(path, "LimitNOFILE")
    assert "SPKT_API_PORT=%i" in unit_lines(PRODUCTION / "systemd" / "spkt-api@.service", "Environment")
    assert (PRODUCTION / "systemd" / "spkt.target").exists()
