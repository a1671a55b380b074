"""``gridctl jobs``: your training and statistics jobs (officers: everyone's), and job quotas."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption

app = typer.Typer(help="List, show and cancel jobs; read and set job quotas.", no_args_is_help=True)

COLUMNS = ["id", "kind", "state", "progress", "planned_epsilon", "attempts", "created_at", "error"]
LAYER_COLUMNS = ["index", "layer", "args", "output_shape", "parameters"]


def _row(job: dict[str, Any]) -> dict[str, Any]:
    eps = job.get("planned_epsilon")
    return {**job, "progress": f"{job['progress']:.0%}", "planned_epsilon": "none (not DP)" if eps is None
            else f"{eps:.4g}", "error": (job.get("error") or "")[:60]}


@app.command("list")
def list_jobs(
    all_users: Annotated[bool, typer.Option("--all", help="Every user's jobs (needs triage_requests).")] = False,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state (queued, running, succeeded, "
                                                  "failed, cancelled).", show_default=False)] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """Your jobs, newest first."""
    page = common.connect(output).jobs.list(all_users=all_users, state=state, limit=limit, offset=offset)
    if console.output() is console.Output.json:
        console.emit(page)
        return
    console.emit([_row(j) for j in page["items"]], columns=COLUMNS)


@app.command("show")
def show(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The job's id.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """One job: state, progress, settings, planned cost, the spec as a layer table (metrics for officers)."""
    job = common.connect(output).jobs[job_id].data
    if console.output() is console.Output.json:
        console.emit(job)
        return
    console.emit(_row(job), title=f"Job {job['id']}")
    if job.get("layers"):
        console.emit(job["layers"], columns=LAYER_COLUMNS, title="Model")
    if job.get("metrics"):
        console.emit(job["metrics"], columns=["epoch", "loss", "accuracy"], title="Metrics (officers only)")


@app.command("cancel")
def cancel(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The job's id.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Cancel a queued or running job."""
    job = common.connect(output).jobs.cancel(job_id).data
    console.message(f"job {job['id']}: cancellation requested")
    console.emit(_row(job), columns=COLUMNS)


@app.command("quota")
def quota(
    user: Annotated[str, typer.Argument(help="A user's id or email.", show_default=False)],
    concurrent: Annotated[int | None, typer.Option("--concurrent", min=0, help="Jobs queued or running at once.",
                                                   show_default=False)] = None,
    per_day: Annotated[int | None, typer.Option("--per-day", min=0, help="Jobs submitted in 24 hours.",
                                                show_default=False)] = None,
    run_time: Annotated[int | None, typer.Option("--run-time", min=1, help="A job's run-time limit, seconds.",
                                                 show_default=False)] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the Node's defaults.")] = False,
    output: OutputOption = None,
) -> None:
    """Show a user's job quotas, or set them (administrators: manage_users)."""
    jobs = common.connect(output).jobs
    if reset or concurrent is not None or per_day is not None or run_time is not None:
        current = jobs.quota(user)
        own = current["custom"]

        def keep(key: str, new: int | None) -> int | None:
            return None if reset else new if new is not None else (current[key] if own[key] else None)

        found = jobs.set_quota(user, max_concurrent=keep("max_concurrent", concurrent),
                               max_per_day=keep("max_per_day", per_day),
                               max_run_seconds=keep("max_run_seconds", run_time))
    else:
        found = jobs.quota(user)
    console.emit(found)
