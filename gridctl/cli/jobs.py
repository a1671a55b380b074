"""``gridctl jobs``: your training and statistics jobs (officers: everyone's), and job quotas."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption

app = typer.Typer(help="List, show and cancel jobs; read and set job quotas.", no_args_is_help=True)

COLUMNS = ["id", "kind", "state", "progress", "dataset", "planned_epsilon", "created_at", "error"]
DETAIL_FIELDS = ["id", "kind", "state", "progress", "owner_id", "dataset", "inputs", "settings", "planned_epsilon",
                 "time_limit_seconds", "attempts", "worker", "created_at", "started_at", "finished_at", "result_id",
                 "error_code", "error", "error_detail"]
LAYER_COLUMNS = ["index", "layer", "args", "output_shape", "parameters"]


def _row(job: dict[str, Any], names: common.Names | None = None) -> dict[str, Any]:
    """A job for a table: progress in percent, its dataset by name, ε rounded, the error's first line."""
    eps = job.get("planned_epsilon")
    dataset = job.get("dataset_id")
    return {**job, "progress": f"{float(job.get('progress') or 0):.0%}",
            "planned_epsilon": "none (not DP)" if eps is None else eps,
            "dataset": names.dataset(dataset) if names else dataset,
            "inputs": {role: (i.get("name") or i.get("tensor_id")) if isinstance(i, dict) else i
                       for role, i in (job.get("inputs") or {}).items()},
            "error": (job.get("error") or "").splitlines()[0] if job.get("error") else None}


@app.command("list")
def list_jobs(
    all_users: Annotated[bool, typer.Option("--all", help="Every user's jobs (needs triage_requests).")] = False,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state (queued, running, succeeded, "
                                                  "failed, cancelled).", show_default=False)] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """Your jobs, newest first.

    With state, progress, the dataset, planned ε and errors; --all shows every user's (needs triage_requests).
    JSON: the list of jobs.
    """
    node = common.connect(output)
    page = node.jobs.list(all_users=all_users, state=state, limit=limit, offset=offset)
    names = common.Names(node)
    rows = [] if console.output() is console.Output.json else [_row(j, names) for j in page["items"]]
    console.emit_items(page["items"], rows=rows, columns=COLUMNS, page=page)


@app.command("show")
def show(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The job's id.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """One job: state, progress, settings, planned cost, the spec as a layer table (metrics for officers).

    The layer table has each layer's output shape and parameter count; the per-epoch metrics, computed on private
    data, are shown to officers only.
    """
    node = common.connect(output)
    job = node.jobs[job_id].data
    if console.output() is console.Output.json:
        console.emit(job)
        return
    row = _row(job, common.Names(node))
    console.emit(row, columns=[f for f in DETAIL_FIELDS if f in row], title=f"Job {job['id']}")
    if job.get("layers"):
        console.emit(job["layers"], columns=LAYER_COLUMNS, title="Model")
    if job.get("metrics"):
        console.emit(job["metrics"], columns=list(dict.fromkeys(k for m in job["metrics"] for k in m)),
                     title="Metrics (officers only)")


@app.command("cancel")
def cancel(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The job's id.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Cancel a queued or running job.

    Yours, or any as an officer; its Ray task is cancelled and the job ends cancelled.
    """
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
    """Show a user's job quotas, or set them (administrators: manage_users).

    Unset figures follow the Node's defaults (GRID_NODE_JOB_MAX_CONCURRENT, GRID_NODE_JOB_MAX_PER_DAY,
    GRID_NODE_JOB_MAX_RUN_SECONDS).
    """
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
