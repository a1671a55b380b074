"""``gridctl audit``: read the append-only audit log (needs view_statistics)."""

from __future__ import annotations

from typing import Annotated

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption

COLUMNS = ["id", "at", "actor_email", "action", "target_type", "target_id", "client_address", "details"]


def audit(
    actor: Annotated[str | None, typer.Option(help="Only actions by this user (email or id).",
                                              show_default=False)] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. user.created.",
                                               show_default=False)] = None,
    target_type: Annotated[str | None, typer.Option(help="Only this kind of target, e.g. user.",
                                                    show_default=False)] = None,
    target_id: Annotated[str | None, typer.Option(help="Only this target id.", show_default=False)] = None,
    since: Annotated[str | None, typer.Option(help="From this time on (ISO 8601, e.g. 2025-01-31T12:00Z).",
                                              show_default=False)] = None,
    until: Annotated[str | None, typer.Option(help="Before this time (ISO 8601).", show_default=False)] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """Show the audit log, newest first, with filters.

    Needs view_statistics; times are ISO 8601. JSON: [{id, at, actor_id, actor_email, action, target_type,
    target_id, client_address, details}].
    """
    page = common.connect(output).audit.page(actor=actor, action=action, target_type=target_type,
                                             target_id=target_id, since=since, until=until, limit=limit,
                                             offset=offset)
    console.emit(page["items"], columns=COLUMNS)
    console.page_note(page)


def register(root: typer.Typer) -> None:
    root.command("audit")(audit)
