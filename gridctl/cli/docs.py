"""Write ``docs/cli.md`` from the Typer app itself, so the reference cannot drift from the commands.

    python -m gridctl.cli.docs            # rewrite docs/cli.md
    python -m gridctl.cli.docs --check    # exit 1 if docs/cli.md is stale (tests/test_cli_docs.py does this)

Generated: every command's usage, its help text, its arguments and options with their env vars and defaults,
which commands ask for confirmation, the environment variables and the exit-code table (from
``gridctl.cli.exit_codes``, the one mapping from error code to exit code). Written here by hand: the section
introductions and the SDK overview at the end. A command no section claims lands in "Other commands", so a new
command is documented the moment it exists.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gridctl.cli import exit_codes

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

# (section title, introduction, command paths it holds: a path holds itself and every command under it)
SECTIONS: list[tuple[str, str, list[str]]] = [
    ("Deployments", """\
Deployments are made from this machine by a provider (`local`, and each cloud whose extra is installed:
`pip install 'gridctl[aws]'`, `'gridctl[gcp]'`, `'gridctl[azure]'`). Their state lives in
`$GRIDCTL_HOME/deployments/NAME/` (mode 0700), and each deploy saves a context named after the deployment.
""", ["deploy", "status", "destroy", "check", "workers"]),
    ("Logging in and contexts", """\
A context is a name, a Node's URL, a token and the email it belongs to, saved in `$GRIDCTL_HOME/contexts.yaml`
(mode 0600). `GRIDCTL_URL` and `GRIDCTL_TOKEN` override it (for CI).
""", ["login", "logout", "context"]),
    ("Users", """\
Need `manage_users` (and `manage_budgets` for budgets), except `users me`. JSON output is the Node's user:
`{id, email, full_name, role: {id, name}, capabilities, budget_epsilon, disabled, created_at, groups}`.
""", ["users"]),
    ("Roles", """\
JSON: `{id, name, description, capabilities, preset, user_count}`. Listing and showing need only a login;
changes need `edit_roles`, and nobody can grant a capability they do not hold. Preset roles (Owner,
Administrator, Compliance Officer, Data Scientist) cannot be changed or removed. The capabilities:
`triage_requests`, `manage_budgets`, `manage_users`, `manage_groups`, `edit_roles`, `upload_data`,
`manage_permissions`, `edit_settings`, `manage_infrastructure`, `view_statistics`.
""", ["roles"]),
    ("Groups", """\
Need `manage_groups`. JSON: `{id, name, description, created_at, member_count}`, plus `members: [{id, email}]`
for `show`, `add-member` and `remove-member`.
""", ["groups"]),
    ("API tokens", """\
Your own named tokens, for scripts and CI. JSON: `{id, name, created_at, expires_at, revoked_at,
last_used_at}`.
""", ["tokens"]),
    ("Audit log", "", ["audit"]),
    ("Tensors", """\
A tensor is named by its id. JSON: `{id, name, description, shape, dtype, size_bytes, sha256, visibility, tags,
columns, uploader_id, created_at, level}`, where `level` is **your** effective level on it (`search`,
`compute`, `download` or `deny`; see [Permissions](#permissions)). Uploading needs `upload_data`; changing or
deleting a tensor needs to be its uploader (with `upload_data`) or to hold `manage_permissions`. Uploads and
downloads show a progress bar on stderr when it is a terminal (never in JSON mode).
""", ["tensors"]),
    ("Datasets", """\
A dataset is a named collection of tensors, each under a role (`features`, `labels`...), named by name or id.
JSON: `{id, name, description, tags, visibility, bounds, owner_id, created_at, members: [{role, tensor_id,
name, dtype, shape}], level}`. Creating needs `upload_data` and tensors you uploaded; changing needs to be the
dataset's owner or to hold `manage_permissions`.
""", ["datasets"]),
    ("Permissions", """\
Levels, each including the ones before: `search` (see the metadata) < `compute` (use it in jobs and
statistics) < `download` (get the raw data); `deny` means nothing beyond search. A user's level on a tensor is
decided by the most specific rule: a grant to the user on the tensor, to the user on a dataset holding it, to
one of their groups on the tensor, to one of their groups on such a dataset, and finally the tensor's
visibility (public: `download`, private: `search`). Among several grants at the same step a deny wins,
otherwise the highest level. JSON of a grant: `{id, subject_type, subject_id, subject_name, target_type,
target_id, level, created_by, created_at, updated_at}`.
""", ["permissions"]),
    ("Requests", """\
One kind of record for everything someone asks an officer for: `access` (a higher level on a tensor or
dataset), `release` (download a result or a private tensor: the SDK's `get()`; see [privacy.md](privacy.md))
and `budget` (more ε). States: `pending` → `approved` | `denied` | `withdrawn` (by the requester) |
`expired`; some are created directly as `auto_approved` or `auto_denied`. A decided request never changes: a
second decision exits 6 naming its state. Anyone may file requests and see their own; officers
(`triage_requests`) see all and decide them, but never their own. JSON: `{id, kind, state, requester_id,
requester_email, target_type, target_id, payload, reason, created_at, expires_at, decided_at, decided_by,
decision_note}`, plus `events: [{from_state, to_state, actor_id, note, at}]` for one request. Tables name the
target (`dataset cohort`, `tensor weights`) where the Node lets you see its name.
""", ["requests"]),
    ("Privacy budget", """\
JSON of `gridctl budget`: the Node's budget (`budget_epsilon`, `spent_epsilon`, `simple_sum_epsilon`,
`remaining_epsilon`, `ceiling_epsilon` where the Node reports it, `events`, `delta`, `rdp_order`...) plus
`ledger`, the last privacy events. In the SDK: `node.budget()` and `node.budget_ledger()`.
""", ["budget"]),
    ("Jobs", """\
Training and statistics jobs run on the Workers; see [jobs.md](jobs.md). Submitting is done from the SDK
(`node.train(...)`, `node.jobs.statistic(...)`); the CLI follows them.
""", ["jobs"]),
]

INTRO = """\
# The gridctl CLI

<!-- Generated by `python -m gridctl.cli.docs` from the Typer app; do not edit by hand.
     tests/test_cli_docs.py fails when this file is stale. -->

`gridctl` deploys Nodes and administers them. Every command talks to a Node through the Python SDK
(`gridctl.connect`), so anything the CLI does a script can do too (see [the SDK](#the-python-sdk)).
`gridctl COMMAND --help` shows the same text as each command's section below.

## Conventions

- **Output.** Every command takes `--output table|json` (`-o`, env `GRIDCTL_OUTPUT`). Tables are for
  people: numbers rounded (ε to four significant digits), times to the second, names instead of ids where
  the Node says them, long text wrapped (never cut) to the terminal's width. JSON is the Node's own data, at
  full precision, for scripts. **Every list command prints a JSON array of items**; when a table shows one
  page of a longer list, a note on stderr says how many rows there are (`--limit`, `--offset`). Deletions
  print `{"removed": KIND, "ref": REF}`. Messages, warnings, errors, prompts and secrets shown once go to
  **stderr**, so stdout stays parseable.
- **Text is printed as text.** Whatever a user or the Node wrote (names, reasons, descriptions, error
  messages) is printed literally, never read as markup; control characters, escape sequences and bidi
  overrides are shown as visible escapes (`\\x1b`, `\\u202e`) and never reach the terminal. JSON escapes them
  too (`\\u001b`).
- **Names.** A user is named by email or id; a role, a group or a dataset by name or id (names are never all
  digits); a tensor, a request and a job by id.
- **Selecting a Node.** `gridctl login` and `gridctl deploy local` save a *context* (a name, the Node's URL,
  a token, the email) in `$GRIDCTL_HOME/contexts.yaml` (default `~/.config/gridctl`, mode 0600) and make it
  current. `--context NAME` (env `GRIDCTL_CONTEXT`) picks another saved context for one command.
  **`GRIDCTL_URL` and `GRIDCTL_TOKEN` override the context** (for CI: create a token with
  `gridctl tokens create ci`, store it as a secret, set both variables).
- **Passwords** not given as options are prompted for on stderr, hidden (twice when setting one). They and
  tokens never appear in output, error messages or JSON, except a new API token's secret, shown once.
- **Errors** are one line on stderr (`error: ...`), never a traceback (`GRIDCTL_DEBUG=1` shows one for
  unexpected failures), and the exit code says what kind of failure it was (below).
"""

ENVIRONMENT = [  # variables read outside any option (the options' own are collected from the app)
    ("GRIDCTL_URL", "the Node's URL, instead of the context's"),
    ("GRIDCTL_TOKEN", "the token to use (a session or API token), instead of the context's"),
    ("GRIDCTL_HOME", "where contexts and local deployments are kept (default `~/.config/gridctl`)"),
    ("GRIDCTL_CLOUD_START_TIMEOUT", "seconds a cloud deploy waits for a new Node to publish its certificate and "
                                    "answer (default 1500)"),
    ("GRIDCTL_LOCAL_START_TIMEOUT", "seconds `deploy local` waits for the Node to answer (default 90)"),
    ("GRIDCTL_LOCAL_WORKER_TIMEOUT", "seconds a local Worker may take to join (default 120)"),
    ("GRIDCTL_DEBUG", "`1`: show the traceback of an unexpected error"),
]

SDK = """\
## The Python SDK

The CLI is a thin layer over the SDK; scripts can use it directly:

```python
import gridctl

node = gridctl.connect("http://127.0.0.1:8470", email="owner@localhost", password="...")
# or: gridctl.connect(url, token=os.environ["GRIDCTL_TOKEN"])
node.users.create("ada@example.com", "a long password", role="Data Scientist", budget_epsilon=3.0)
node.groups.create("cohort-a")
node.groups.add_member("cohort-a", "ada@example.com")
ci = node.tokens.create("ci")["token"]      # the secret, once
events = node.audit.list(action="user.created")
node.budget()                                # your ε: spent, simple sum, remaining, cap (user=...: anyone's)
node.budget_ledger(limit=10)["items"]        # your last privacy events
node.logout()
```

Sub-APIs: `node.users` (`list`, `page`, `get`, `me`, `create`, `update`, `disable`, `enable`, `remove`,
`set_budget`, `reset_password`, `change_password`, `transfer_ownership`), `node.roles` (`list`, `get`,
`create`, `update`, `remove`), `node.groups` (`list`, `page`, `get`, `create`, `update`, `remove`,
`add_member`, `remove_member`), `node.tokens` (`create`, `list`, `revoke`), `node.audit` (`list`, `page`);
`node.budget(user=None)`, `node.budget_ledger(user=None, limit=, offset=)`; `node.login(email, password)`,
`node.logout()`, `node.health()`. Errors are `gridctl.sdk.errors.GridctlError` with `.code` (the Node's error
code) and `.status` (HTTP status; 0 when the Node was not reached), and subclasses to catch one kind:
`Unauthorized`, `Forbidden`, `NotFound`, `AlreadyExists`, `Conflict`, `InvalidInput`, `RateLimited`,
`ServerError`, `ConnectionFailed`, `NotConfigured`.

### Data in the SDK

```python
import gridctl
from gridctl.sdk.data import AccessDenied

node = gridctl.connect(url, token=os.environ["GRIDCTL_TOKEN"])
hits = node.search("cohort", tags=["clinical"])      # TensorPointers, each with your .level; hits.total
x = hits[0]                                           # or node.tensors[12]
x.level                                               # 'search'
try:
    x.get()
except AccessDenied as exc:                           # the Node's message: the level needed, yours, how to ask
    print(exc.needed, exc.have, exc)
request = x.request_access("download", "to reproduce the baseline")
request.refresh().status                              # 'pending' -> 'approved' | 'denied' (reason: .decision_note)
tensor = x.get()                                      # a torch.Tensor, verified against its sha256
request.withdraw()                                    # while it is pending

ptr = node.tensors.upload(torch.randn(100, 3), name="weights", tags=["demo"])   # or a file path; private
ds = node.datasets.create("demo", {"features": ptr})                             # node.datasets["demo"]
ds["features"]                                        # a TensorPointer
node.permissions.grant("compute", user="ada@example.com", dataset="demo")
node.permissions.explain(tensor=ptr.id, user="ada@example.com")   # {level, rule, grant_id, explanation}
node.requests.list(status="pending", kind="access")
node.requests.approve(7, note="ok"); node.requests.deny(8, "too broad")
```

Data sub-APIs: `node.search(text, tags=, any_tag=, dataset=, visibility=, dtype=, shape=, sort=, limit=,
offset=)`; `node.tensors` (`[ID]`, `get`, `list`, `page`, `search`, `search_page`, `upload`, `upload_page`,
`download`, `update`, `set_visibility`, `tag`, `untag`, `remove`); `node.datasets` (`[REF]`, `get`, `list`,
`page`, `create`, `create_from_csv`, `update`, `add`, `remove_member`, `set_bounds`, `remove`);
`node.permissions` (`grant`, `list`, `page`, `find`, `revoke`, `explain`); `node.requests` (`[ID]`, `get`,
`list`, `page`, `ask_access`, `ask_release`, `ask_budget`, `wait`, `approve`, `deny`, `withdraw`). A
`TensorPointer` has `get()`, `download(path)`, `request_access(level, reason)`, `explain()`, `refresh()`,
`tag()`, `untag()`, `update()`, `delete()`; a `DatasetPointer` has `[role]`, `roles`, `get()` (every member),
`request_access`, `explain`, `refresh`; a `Request` has `id`, `status`, `kind`, `level`, `reason`,
`decision_note`, `events`, `refresh()`, `wait()`, `withdraw()`, `approve()`, `deny()`. Uploads and downloads
stream (never the whole file in memory) and take `progress=callable(done, total)`. torch and safetensors are
imported only by `get()` and tensor uploads. A download whose sha256 does not match raises
`gridctl.sdk.transfer.ChecksumMismatch` and keeps nothing.
"""


# --- walking the app ------------------------------------------------------------------------------------

def commands() -> Iterator[tuple[str, Any, Any]]:
    """Every runnable command as ``("gridctl users add", command, context)``, in ``--help`` order."""
    import typer.main
    from typer._click import Context

    from gridctl.cli.app import app

    root = typer.main.get_command(app)
    yield from _walk(root, Context(root, info_name="gridctl"), "gridctl")


def _walk(command: Any, ctx: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    from typer._click import Context

    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _walk(sub, Context(sub, info_name=name, parent=ctx), f"{path} {name}")
    else:
        yield path, command, ctx


def _options(command: Any, ctx: Any) -> list[Any]:
    return [p for p in command.get_params(ctx) if "--help" not in p.opts and not getattr(p, "hidden", False)]


def asks_first(command: Any, ctx: Any) -> bool:
    """Commands that ask for confirmation are exactly those that take ``--yes``."""
    return any("--yes" in p.opts for p in _options(command, ctx))


def _metavar(param: Any, ctx: Any) -> str:
    if getattr(param, "is_flag", False):
        return ""
    if param.metavar:
        return str(param.metavar)
    shown = param.display_type(ctx).strip("<>")
    if "|" in shown and "[" not in shown:
        return shown
    return str(param.name).upper()


def _default(param: Any) -> str:
    default = param.default
    if default is None or default is False or default == [] or default == "" or callable(default):
        return ""
    if "(default:" in (getattr(param, "help", None) or ""):
        return ""
    return f"`{default.value if hasattr(default, 'value') else default}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _help(command: Any) -> str:
    return inspect.cleandoc(command.help or "").strip()


def _section_of(path: str) -> str:
    words = path.split()[1:]
    for title, _intro, prefixes in SECTIONS:
        if any(words[: len(p.split())] == p.split() for p in prefixes):
            return title
    return "Other commands"


def render_command(path: str, command: Any, ctx: Any) -> str:
    usage = " ".join(command.get_usage(ctx).removeprefix("Usage: ").split())
    lines = [f"### {path}", "", f"`{usage}`", "", _help(command), ""]
    params = _options(command, ctx)
    arguments = [p for p in params if p.param_type_name == "argument"]
    options = [p for p in params if p.param_type_name == "option"]
    if arguments:
        lines += ["| argument | description |", "|---|---|"]
        for param in arguments:
            name = _metavar(param, ctx).strip("[]") or str(param.name).upper()
            optional = "" if param.required else " (optional)"
            lines.append(f"| `{name}`{optional} | {_cell(getattr(param, 'help', None) or '')} |")
        lines.append("")
    if options:
        lines += ["| option | env | default | description |", "|---|---|---|---|"]
        for param in options:
            flags = ", ".join(param.opts)
            if param.secondary_opts:
                flags += " / " + ", ".join(param.secondary_opts)
            metavar = _metavar(param, ctx)
            shown = f"`{flags}{' ' + metavar if metavar else ''}`"
            envvar = f"`{param.envvar}`" if param.envvar else ""
            lines.append(f"| {shown} | {envvar} | {_default(param)} | {_cell(getattr(param, 'help', None) or '')} |")
        lines.append("")
    if asks_first(command, ctx):
        lines += ["Asks for confirmation first; `--yes` skips the question. Without a terminal to ask on it "
                  "refuses (exit 2) and changes nothing.", ""]
    return "\n".join(lines)


def _exit_code_table() -> str:
    lines = ["## Exit codes", "", "| code | meaning | error codes |", "|---|---|---|"]
    for code, meaning in sorted(exit_codes.MEANING.items()):
        errors = ", ".join(f"`{c}`" for c, value in exit_codes.BY_CODE.items() if value == code)
        lines.append(f"| {code} | {meaning} | {errors} |")
    by_status: dict[int, list[str]] = {}
    for status, code in sorted(exit_codes.BY_STATUS.items()):
        by_status.setdefault(code, []).append(str(status))
    statuses = "; ".join(f"{', '.join(s)} {'give' if len(s) > 1 else 'gives'} {code}" for code, s in by_status.items())
    lines += ["", f"An error code not in this table gets the exit code of its HTTP status: {statuses}; 5xx gives "
              f"{exit_codes.SERVER}; anything else {exit_codes.ERROR}.", ""]
    return "\n".join(lines)


def _environment(found: list[tuple[str, Any, Any]]) -> str:
    lines = ["## Environment variables", "", "| variable | effect |", "|---|---|"]
    rows = dict(ENVIRONMENT)
    by_var: dict[str, list[str]] = {}
    for path, command, ctx in found:
        for param in _options(command, ctx):
            for var in [param.envvar] if isinstance(param.envvar, str) else (param.envvar or []):
                by_var.setdefault(var, []).append(f"`{path}` `{param.opts[0]}`")
    by_var.setdefault("GRIDCTL_CONTEXT", []).insert(0, "`gridctl --context`")
    for var, uses in sorted(by_var.items()):
        shown = uses if len(uses) <= 3 else [*uses[:2], f"and {len(uses) - 2} more commands"]
        rows.setdefault(var, "the option " + ", ".join(shown))
    for var, effect in rows.items():
        lines.append(f"| `{var}` | {effect} |")
    return "\n".join([*lines, ""])


def _confirmations(found: list[tuple[str, Any, Any]]) -> str:
    asking = [path for path, command, ctx in found if asks_first(command, ctx)]
    return "\n".join([
        "## Confirmations", "",
        "These commands ask before they change anything: "
        + ", ".join(f"`{p}`" for p in asking) + ". The question goes to stderr and the answer is read from "
        "stdin; `--yes` (`-y`) skips it. Without an answer (no terminal, input closed) they refuse with exit "
        "code 2 and change nothing; answering no exits 1. `gridctl deploy local --workers N` asks only when N "
        "is fewer than the Workers running (it names those it would stop); `gridctl destroy local` asks "
        "whenever something is running or `--purge` is given.", "",
    ])


def render() -> str:
    found = list(commands())
    parts = [INTRO, _confirmations(found), _exit_code_table(), _environment(found)]
    titles = [title for title, _intro, _prefixes in SECTIONS] + ["Other commands"]
    intros = {title: intro for title, intro, _prefixes in SECTIONS}
    for title in titles:
        members = [(path, command, ctx) for path, command, ctx in found if _section_of(path) == title]
        if not members:
            continue
        parts.append(f"## {title}\n")
        if intros.get(title):
            parts.append(intros[title])
        parts.extend(render_command(path, command, ctx) for path, command, ctx in members)
    parts.append(SDK)
    text = "\n".join(parts)
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        if not DOCS.exists() or DOCS.read_text() != text:
            print(f"{DOCS} is stale: run 'python -m gridctl.cli.docs'", file=sys.stderr)
            return 1
        return 0
    DOCS.write_text(text)
    print(f"wrote {DOCS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
