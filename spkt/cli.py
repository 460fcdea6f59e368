"""`spkt`: the one command-line entry point (run the system, its broker, topics, tokens, schemas)."""
from __future__ import annotations

import re
import signal
import sys
import time
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from spkt.cli_dlq import dlq_app
from spkt.cli_kafka import kafka_app
from spkt.settings import get_settings

app = typer.Typer(help="SPKT Dispatch: incident dispatch and TKP coordination on Apache Kafka.",
                  no_args_is_help=True, add_completion=False)
topics_app = typer.Typer(help="The Kafka topic catalogue.", no_args_is_help=True)
schemas_app = typer.Typer(help="The event contracts (JSON Schema files in schemas/json).", no_args_is_help=True)
verify_app = typer.Typer(help="Check that a record still holds (hash chains).", no_args_is_help=True)
notify_app = typer.Typer(help="Notifications: templates.", no_args_is_help=True)
projection_app = typer.Typer(help="The read model (the API's database).", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(dlq_app, name="dlq")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(verify_app, name="verify")
app.add_typer(notify_app, name="notify")
app.add_typer(projection_app, name="projection")

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1):
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    raise typer.Exit(code)


# --- the whole system -------------------------------------------------------------------------
@app.command()
def up(
    demo: bool = typer.Option(False, "--demo", help="Load Jakarta demo units and generate a steady flow."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Return once everything is ready."),
) -> None:
    """Start the broker (unless external), the topics, every service, the projection and the API."""
    from deploy.kafka import KafkaError
    from deploy.stack import StackError, start_system

    settings = get_settings()
    started = time.monotonic()
    last = [""]

    def progress(text: str) -> None:
        if text != last[0]:
            err.print(f"  {text}", highlight=False)
            last[0] = text

    try:
        stack = start_system(settings, demo=demo, console=err, on_progress=progress)
    except (KafkaError, StackError, RuntimeError) as exc:
        _fail(str(exc))
    elapsed = time.monotonic() - started
    out.print(f"\n[bold green]SPKT Dispatch is running[/bold green] (ready in {elapsed:.1f} s)")
    out.print(f"  API        {settings.api_url}/api/v1   docs: {settings.api_url}/docs", highlight=False)
    out.print(f"  Kafka      {settings.bootstrap}", highlight=False)
    out.print(f"  Read model {settings.db_url}", highlight=False)
    out.print(f"  Logs       {stack.log_dir}", highlight=False)
    from services.api.auth import Role, mint

    console_token = mint(settings, sub="console", role=Role.dispatcher, ttl_s=12 * 3600)
    out.print(f"  Console    {settings.api_url}/console/#token={console_token}", highlight=False)
    out.print(f"  Field unit {settings.api_url}/console/unit   (token: ./spkt.sh token --role field_unit --unit ID)",
              highlight=False)
    out.print("  A token:   ./spkt.sh token --role dispatcher", highlight=False)
    if demo:
        out.print("  Demo:      Jakarta units move and reports arrive; see GET /api/v1/units", highlight=False)
    if detach:
        out.print("Stop everything with: ./spkt.sh down")
        return
    out.print("Press Ctrl-C to stop everything.")

    def interrupt(*_):
        raise KeyboardInterrupt

    # Also SIGINT: a shell starting us in the background would have it ignored.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    try:
        while stack.supervisord_pid():
            time.sleep(1)
        err.print("supervisord is gone; stopping")
    except KeyboardInterrupt:
        err.print("\nstopping …")
    _down(settings)


def _down(settings) -> None:
    from deploy.stack import stop_system

    services, broker = stop_system(settings)
    out.print(f"services stopped ({len(services)} processes)")
    if broker:
        out.print(f"Kafka stopped ({len(broker)} broker processes)")


@app.command()
def down() -> None:
    """Stop every process `spkt up` started, and the embedded broker."""
    _down(get_settings())


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Every process (state, pid, log), each worker's readiness (why not), consumer lag and last progress.

    Exit code 0 when everything runs and is ready, 3 when something is not ready, 1 when nothing runs."""
    from deploy.health import as_json as report_json, status_report, status_rows
    from deploy.stack import Stack

    settings = get_settings()
    processes = Stack(settings, demo=True).processes()
    if not processes:
        if as_json:
            print(report_json({"running": False, "services": []}))
        else:
            out.print("not running")
        raise typer.Exit(1)
    report = status_report(settings, processes)
    if as_json:
        print(report_json({"running": True, **report}))
    else:
        table = Table("process", "state", "pid", "ready", "lag", "last progress", "log")
        for row in status_rows(report):
            table.add_row(*row)
        out.print(table)
        broker = report["broker"]
        if not broker["reachable"]:
            err.print(f"[bold red]broker {broker['bootstrap']} not reachable[/bold red]: {broker['error']} "
                      "(consumer lag unknown)", highlight=False)
    # For scripts and probes: 0 everything running and ready, 3 running but not all of it ready.
    if not all_ready(report):
        raise typer.Exit(STATUS_UNREADY)


STATUS_UNREADY = 3


def all_ready(report: dict) -> bool:
    """Every process running (and, where it reports readiness, ready) and the broker reachable."""
    return report["broker"]["reachable"] and all(
        s["state"] == "RUNNING" and s.get("ready", True) for s in report["services"])


@app.command()
def run(name: str = typer.Argument(..., help="intake | dispatch | tkp | notify | projection | api | demo")) -> None:
    """Run one process in the foreground (this is how `spkt up` starts each of them)."""
    from spkt.runner import PROCESSES, run as run_process

    if name not in PROCESSES:
        _fail(f"unknown process {name!r}; one of: {', '.join(PROCESSES)}", 2)
    run_process(name)


# --- tokens -----------------------------------------------------------------------------------
def _parse_ttl(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", text.strip())
    if not match:
        raise typer.BadParameter("use seconds or a number with s, m, h or d (e.g. 8h)")
    return int(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


@app.command()
def token(
    role: str = typer.Option(..., "--role", help="call_taker | dispatcher | field_unit | supervisor | "
                                                 "command_center | admin"),
    unit: Optional[str] = typer.Option(None, "--unit", help="unit_id (required for field_unit)"),
    jurisdiction: Optional[str] = typer.Option(None, "--jurisdiction", help="e.g. a Polres code"),
    ttl: str = typer.Option("8h", "--ttl", help="lifetime, e.g. 30m, 8h, 1d"),
    sub: Optional[str] = typer.Option(None, "--sub", help="who the token is for (default: the role)"),
) -> None:
    """Print a signed token for the running deployment."""
    from services.api.auth import Role, mint

    try:
        parsed = Role(role)
    except ValueError:
        _fail(f"unknown role {role!r}; one of: {', '.join(r.value for r in Role)}", 2)
    try:
        print(mint(get_settings(), sub=sub or (unit or role), role=parsed, unit_id=unit, jurisdiction=jurisdiction,
                   ttl_s=_parse_ttl(ttl)))
    except ValueError as exc:
        _fail(str(exc), 2)


# --- topics -----------------------------------------------------------------------------------
@topics_app.command("create")
def topics_create() -> None:
    """Create every topic of the catalogue that the cluster lacks."""
    from deploy.topics import create_topics

    try:
        outcome = create_topics(get_settings())
    except Exception as exc:
        _fail(f"could not create topics on {get_settings().bootstrap}: {exc}")
    for name, state in outcome.items():
        out.print(f"{state:8} {name}", highlight=False)


@topics_app.command("list")
def topics_list(markdown: bool = typer.Option(False, "--markdown", help="Print the table for docs/topics.md.")) -> None:
    """The catalogue: name, key, partitions, retention, producers, consumers, event types."""
    from spkt.catalogue import catalogue_rows, markdown_table

    rows = catalogue_rows(get_settings())
    if markdown:
        print(markdown_table(rows), end="")
        return
    table = Table(*rows[0].keys(), title="Kafka topics", title_justify="left")
    for row in rows:
        table.add_row(*row.values())
    out.print(table)


# --- schemas ----------------------------------------------------------------------------------
@schemas_app.command("generate")
def schemas_generate() -> None:
    """Write schemas/json from the models (refuses a change that would break older readers)."""
    from schemas.contracts import generate

    try:
        for path in generate():
            out.print(f"wrote {path}", highlight=False)
    except ValueError as exc:
        _fail(str(exc))


@schemas_app.command("check")
def schemas_check() -> None:
    """Compare the models with the committed schema files."""
    from schemas.contracts import check_all

    bad = {t: p for t, p in check_all().items() if p}
    for event_type, problems in bad.items():
        for problem in problems:
            err.print(f"{event_type}: {problem}", highlight=False)
    if bad:
        raise typer.Exit(1)
    out.print("all event schemas match their committed files")


# --- verify -----------------------------------------------------------------------------------
@verify_app.command("incident")
def verify_incident(incident_id: str = typer.Argument(..., help="the incident id")) -> None:
    """Recompute the incident's hash chains (timeline, TKP records) from the read model: say
    whether they hold and, if not, where they break. Exit code 1 when broken."""
    from services.projection.tables import Incident, prepare
    from services.projection.verify import incident_chains

    sessions = prepare(get_settings().db_url)
    with sessions() as session:
        if session.get(Incident, incident_id) is None:
            _fail(f"kejadian {incident_id} tidak ditemukan di {get_settings().db_url}", 2)
        result = incident_chains(session, incident_id)
    for name in ("timeline", "tkp"):
        part = result[name]
        if part["valid"]:
            out.print(f"{name:9} utuh ({part['checked']} catatan)", highlight=False)
        else:
            out.print(f"{name:9} RUSAK pada catatan ke-{part['broken_at'] + 1} ({part['record_id']}): "
                      f"{part['reason']}", highlight=False)
    if not result["valid"]:
        raise typer.Exit(1)


# --- projection -------------------------------------------------------------------------------
@projection_app.command("rebuild")
def projection_rebuild(into: Optional[str] = typer.Option(
        None, "--into", help="SQLAlchemy URL of a fresh database (default: the configured one, if empty)")) -> None:
    """Replay every read-model topic from Kafka into a fresh database (the live projection goes on)."""
    from services.projection.rebuild import NotEmpty, run

    settings = get_settings()
    url = into or settings.db_url
    shown = {"at": 0.0}

    def progress(done: int, total: int) -> None:
        if time.monotonic() - shown["at"] > 1 or done == total:
            shown["at"] = time.monotonic()
            err.print(f"{done}/{total} events ({100 * done / max(1, total):.0f} %)", highlight=False)
    try:
        result = run(settings, url, progress)
    except NotEmpty as exc:
        _fail(str(exc), 2)
    except Exception as exc:
        _fail(f"rebuild failed: {exc}")
    out.print(f"{result.applied} events applied, {result.skipped} skipped, {result.unreadable} unreadable, "
              f"in {result.seconds:.1f} s into {url}", highlight=False)


# --- notify -----------------------------------------------------------------------------------
@notify_app.command("preview")
def notify_preview(template: str = typer.Argument(..., help="e.g. receipt, sp2hp, unit_assignment"),
                   language: str = typer.Option("id", "--lang", help="id | en"),
                   channel: str = typer.Option("sms", "--channel", help="sms | whatsapp | email | webhook"),
                   sensitive: bool = typer.Option(False, "--sensitive", help="as for a sensitive category")) -> None:
    """Render a template with its sample content, as the recipient would read it."""
    from services.notify.render import preview

    try:
        print(preview(template, language=language, channel=channel, sensitive=sensitive))
    except ValueError as exc:
        _fail(str(exc), 2)


@app.command()
def bench(
    names: Optional[list[str]] = typer.Argument(
        None, help="recommend | pipeline | positions | api | live | recovery | memory (all when none)"),
    quick: bool = typer.Option(False, "--quick", help="Smoke sizes, seconds each; publishes nothing."),
    keep: bool = typer.Option(False, "--keep", help="Keep the work folders (brokers, logs) for a look."),
    json_out: Optional[str] = typer.Option(None, "--json", help="Also write this run's report here."),
) -> None:
    """Run the benchmarks: a table of figures against their targets, JSON, and docs/performance.md."""
    from pathlib import Path

    from benchmarks.run import failed, run as run_benchmarks

    try:
        report = run_benchmarks(names, quick=quick, keep=keep, json_out=Path(json_out) if json_out else None)
    except ValueError as exc:
        _fail(str(exc), 2)
    if failed(report):
        raise typer.Exit(1)


@app.command()
def config() -> None:
    """The settings in force (environment variables SPKT_*)."""
    settings = get_settings()
    table = Table("variable", "value", "meaning")
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        shown = "(set)" if name == "jwt_secret" and value else str(value)
        table.add_row(f"SPKT_{name.upper()}", shown, field.description or "")
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
