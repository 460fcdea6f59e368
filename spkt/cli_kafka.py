"""`spkt kafka ...`: run the embedded Apache Kafka broker (or check an external cluster).

The main CLI mounts this with ``app.add_typer(kafka_app, name="kafka")``.
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from deploy.kafka.broker import KafkaCluster, KafkaError, recorded_brokers
from spkt.settings import get_settings

kafka_app = typer.Typer(
    help="The embedded Apache Kafka broker: start, stop, status. "
    "With SPKT_KAFKA_BOOTSTRAP set, an existing cluster is used and nothing is started.",
    no_args_is_help=True,
)

out = Console()
err = Console(stderr=True)

BROKERS_HELP = "Number of nodes (1, or 3 for a replicated cluster). Default: as created in the data folder, else 1."


def _cluster(brokers: Optional[int]) -> KafkaCluster:
    settings = get_settings()
    if brokers is None:
        return KafkaCluster.from_data(settings)
    if brokers < 1:
        err.print("[red]--brokers must be at least 1[/red]")
        raise typer.Exit(2)
    return KafkaCluster(settings, brokers=brokers)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    raise typer.Exit(code)


@kafka_app.command()
def up(brokers: Optional[int] = typer.Option(None, "--brokers", "-b", help=BROKERS_HELP)) -> None:
    """Start the broker(s) unless running, and wait until they answer."""
    cluster = _cluster(brokers)
    try:
        cluster.up(console=err)
    except KafkaError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    if cluster.embedded:
        pids = ", ".join(str(p) for p in cluster.pids())
        out.print(f"Kafka is up at {cluster.bootstrap} (pid {pids}); data in {cluster.data}", highlight=False)
    else:
        out.print(f"External Kafka at {cluster.bootstrap} is ready.", highlight=False)


@kafka_app.command()
def down(brokers: Optional[int] = typer.Option(None, "--brokers", "-b", help=BROKERS_HELP)) -> None:
    """Stop the embedded broker(s): TERM, then KILL after SPKT_KAFKA_STOP_TIMEOUT_S."""
    cluster = _cluster(brokers)
    if not cluster.embedded:
        out.print(f"Kafka is external ({cluster.bootstrap}); nothing to stop.", highlight=False)
        return
    try:
        with err.status("Stopping Kafka …") if err.is_terminal else nullcontext():
            stopped = cluster.down()
    except KafkaError as exc:
        _fail(str(exc))
    if stopped:
        out.print(f"Stopped Kafka (pid {', '.join(map(str, stopped))}).", highlight=False)
    else:
        out.print("Kafka was not running.")


@kafka_app.command()
def status(brokers: Optional[int] = typer.Option(None, "--brokers", "-b", help=BROKERS_HELP)) -> None:
    """Show each node: port, pid, whether it runs and is ready. Exit code 1 unless all are ready."""
    cluster = _cluster(brokers)
    settings = cluster.settings
    ready_ids = cluster.broker_ids(timeout_s=5.0)
    if not cluster.embedded:
        ok = bool(ready_ids)
        state = "[green]ready[/green]" if ok else "[red]not answering[/red]"
        out.print(f"External Kafka at {cluster.bootstrap}: {state} ({len(ready_ids)} broker(s))")
        raise typer.Exit(0 if ok else 1)
    table = Table(title=f"Kafka {settings.kafka_version} · {cluster.bootstrap}", title_justify="left")
    table.add_column("node", justify="right")
    table.add_column("port", justify="right")
    table.add_column("pid", justify="right")
    table.add_column("alive")
    table.add_column("ready")
    all_ready = True
    for node in cluster.status():
        ready = node.alive and node.node_id in ready_ids
        all_ready &= ready
        table.add_row(
            str(node.node_id),
            str(node.port),
            str(node.pid) if node.pid is not None else "-",
            "[green]yes[/green]" if node.alive else "[red]no[/red]",
            "[green]yes[/green]" if ready else "[red]no[/red]",
        )
    out.print(table)
    recorded = recorded_brokers(settings)
    if recorded is not None and recorded != cluster.brokers:
        err.print(f"note: the data folder {cluster.data} holds a {recorded}-node cluster", highlight=False)
    raise typer.Exit(0 if all_ready else 1)



@kafka_app.command()
def fetch() -> None:
    """Download the broker's jars from Maven Central into the cache (once; later runs reuse them)."""
    from deploy.kafka.broker import JarDownloadError, ensure_jars

    settings = get_settings()
    if not settings.embedded_kafka:
        out.print(f"Kafka is external ({settings.kafka_bootstrap}); nothing to fetch.", highlight=False)
        return
    try:
        path = ensure_jars(settings, console=err)
    except JarDownloadError as exc:
        _fail(str(exc))
    out.print(f"Kafka {settings.kafka_version} jars in {path}", highlight=False)
