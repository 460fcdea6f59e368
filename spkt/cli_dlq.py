"""`spkt dlq ...`: inspect the dead letters and re-drive their originals after a fix.

The main CLI mounts this with ``app.add_typer(dlq_app, name="dlq")``. The logic is in
services/dead_letters.py.
"""
from __future__ import annotations

from typing import List, NoReturn, Optional

import typer
from rich.console import Console
from rich.table import Table

from services import dead_letters as dl
from spkt.settings import get_settings

dlq_app = typer.Typer(
    help="Dead letters (spkt.dead-letters): what the services set aside, with the reason; re-drive after a fix.",
    no_args_is_help=True,
)

# Not wrapped at the terminal's width: lines go to scripts and logs whole.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

TOPIC_HELP = "Only dead letters of messages from this topic (e.g. spkt.reports)."
SERVICE_HELP = "Only dead letters set aside by this service (intake, dispatch, tkp, notify, projection)."


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/bold red] {message}", highlight=False)
    raise typer.Exit(code)


def _read(chosen: dl.Filter, limit: Optional[int] = None) -> tuple[list[dl.DeadLetter], int]:
    settings = get_settings()
    try:
        letters, unreadable = dl.read_dead_letters(settings.bootstrap)
    except Exception as exc:  # the broker away, the topic missing: say so, no traceback
        _fail(f"cannot read {dl.DEAD_LETTERS} at {settings.bootstrap}: {exc}")
    return dl.select(letters, chosen, limit), len(unreadable)


def _filter(topic: Optional[str], service: Optional[str], since: Optional[str],
            refs: Optional[List[str]] = None) -> dl.Filter:
    try:
        return dl.Filter(topic=topic, service=service, since=dl.parse_since(since) if since else None,
                         refs=frozenset(dl.parse_ref(r) for r in refs or ()))
    except ValueError as exc:
        _fail(str(exc), 2)


@dlq_app.command("list")
def list_(
    topic: Optional[str] = typer.Option(None, "--topic", "-t", help=TOPIC_HELP),
    service: Optional[str] = typer.Option(None, "--service", "-s", help=SERVICE_HELP),
    since: Optional[str] = typer.Option(None, "--since", help="Only those set aside since: 30m, 1h, 2d or an ISO time."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", min=0, help="Only the most recent N."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Each dead letter: when, which service, the original topic:partition:offset, the reason, the size."""
    letters, unreadable = _read(_filter(topic, service, since), limit)
    if as_json:
        for letter in letters:
            print(dl.json_line(letter))
        return
    table = Table(*dl.COLUMNS, show_lines=False)
    for letter in letters:
        table.add_row(*dl.row(letter))
    out.print(table)
    originals = len({letter.original for letter in letters})
    note = f"; {unreadable} records on the topic are not dead letters" if unreadable else ""
    out.print(f"{len(letters)} dead letters of {originals} messages{note}. "
              "Re-drive after a fix: spkt dlq replay --offset-of TOPIC:PARTITION:OFFSET", highlight=False)


@dlq_app.command()
def replay(
    topic: Optional[str] = typer.Option(None, "--topic", "-t", help=TOPIC_HELP),
    service: Optional[str] = typer.Option(None, "--service", "-s", help=SERVICE_HELP),
    since: Optional[str] = typer.Option(None, "--since", help="Only those set aside since: 30m, 1h, 2d or an ISO time."),
    offset_of: Optional[List[str]] = typer.Option(
        None, "--offset-of", help="The original message, as ORIGINAL_TOPIC:PARTITION:OFFSET (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be re-driven."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(False, "--force",
                               help="Also re-drive messages this version still cannot read (they will be set aside again)."),
) -> None:
    """Publish the original messages again, unchanged, with their keys, on their topics.

    Handlers are idempotent by event id: a consumer that had handled the message changes nothing."""
    if not (topic or service or since or offset_of):
        _fail("say which: --topic, --service, --since or --offset-of (all dead letters at once is rarely meant)", 2)
    chosen = _filter(topic, service, since, offset_of)
    letters, _ = _read(chosen)
    missing = sorted(str(r) for r in chosen.refs - {letter.original for letter in letters})
    if missing:
        err.print(f"[yellow]no dead letter for:[/yellow] {', '.join(missing)}", highlight=False)
    items = dl.plan_replay(letters, force=force)
    if not items:
        _fail("no dead letters match", 1)
    ready = [item for item in items if item.refused is None]
    for item in items:
        size = f"{item.size:,} bytes" + (" kept (cut)" if item.truncated else "")
        state = "[green]re-drive[/green]" if item.refused is None else f"[red]refused[/red]: {item.refused}"
        out.print(f"{item.original}  key={(item.key or b'-').decode('utf-8', 'replace')}  {size}  "
                  f"set aside by {', '.join(item.services)}  {state}", highlight=False)
        for reason in item.reasons:
            out.print(f"    {dl.shorten(reason, 160)}", highlight=False)
    if not ready:
        _fail("nothing to re-drive", 1)
    if dry_run:
        out.print(f"dry run: {len(ready)} of {len(items)} messages would be re-driven", highlight=False)
        return
    if not yes and not typer.confirm(f"Re-drive {len(ready)} messages?"):
        raise typer.Exit(1)
    settings = get_settings()
    done = 0
    try:
        for item, sent in dl.republish(settings.bootstrap, ready):
            done += 1
            out.print(f"re-driven {item.original} -> {sent}", highlight=False)
    except Exception as exc:
        _fail(f"after {done} of {len(ready)}: {exc}")
    refused = len(items) - len(ready)
    out.print(f"{done} messages re-driven" + (f", {refused} refused" if refused else "")
              + ". Consumers handle each event once (by its id): one that had handled it already changes nothing.",
              highlight=False)
