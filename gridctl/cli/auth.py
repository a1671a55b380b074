"""``gridctl login``, ``gridctl logout`` and ``gridctl context``: which Node the CLI talks to, as whom.

A login saves a context (a name, the Node's URL, the session token, the email) in the owner-only
contexts file and makes it current. Tokens are never printed.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from gridctl.cli import common, console
from gridctl.cli.common import OutputOption
from gridctl.sdk.errors import GridctlError, NotConfigured

context_app = typer.Typer(help="List, select and show saved contexts (Node URL + login).",
                          no_args_is_help=True)

CONTEXT_COLUMNS = ["current", "name", "url", "email", "deployment", "logged_in"]


def default_context_name(url: str) -> str:
    """``host:port`` of the Node's URL (just the host when the URL has no port)."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def login(
    url: Annotated[str, typer.Argument(help="The Node's URL, e.g. http://127.0.0.1:8000.", show_default=False)],
    email: Annotated[str, typer.Option(envvar="GRIDCTL_EMAIL", help="Your email.", show_default=False)],
    password: Annotated[str | None, typer.Option(envvar="GRIDCTL_PASSWORD",
                                                 help="Your password; prompted for (hidden, on stderr) when not "
                                                 "given.", show_default=False)] = None,
    context_name: Annotated[str | None, typer.Option(help="Name of the saved context (default: HOST:PORT).",
                                                     show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Log in to a Node and save it as the current context.

    The password is prompted for (hidden, on stderr) when not given. The session token is saved in a context
    named --context-name (default: the URL's HOST:PORT), never printed. JSON: {context, url, email, user_id,
    expires_at}.
    """
    from gridctl.cli.contexts import Context, ContextFile
    from gridctl.sdk.node import Node

    common.use_output(output)
    with Node(url) as node:  # a malformed URL fails before the password is asked
        session = node.login(email, common.secret("Password") if password is None else password)
        name = context_name or default_context_name(node.url)
        saved = ContextFile.load()
        previous = saved.contexts.get(name)
        saved.put(Context(name=name, url=node.url, token=session["token"], email=email,
                          deployment=previous.deployment if previous else ""))
    console.message(f"logged in to {node.url} as {email}; context {name!r} is now current")
    if console.output() is console.Output.json:
        console.emit({"context": name, "url": node.url, "email": email, "user_id": session["user_id"],
                      "expires_at": session["expires_at"]})


def logout(output: OutputOption = None) -> None:
    """Log out: revoke the session token on the Node and forget it.

    The context is removed, except one that 'gridctl deploy' made: that keeps its URL for 'gridctl login'. If the
    Node cannot be reached, the context is forgotten anyway and a warning says the token was not revoked.
    """
    from gridctl.cli.contexts import ContextFile
    from gridctl.sdk.node import Node

    common.use_output(output)
    saved = ContextFile.load()
    name = common.selected_context() or saved.current
    context = saved.contexts.get(name or "")
    if context is None:
        raise NotConfigured(f"no context named {name!r}" if name else "not logged in: there is no current context")
    revoked = False
    if context.token:
        try:
            with Node(context.url, token=context.token) as node:
                node.logout()
            revoked = True
        except GridctlError as exc:
            # The token may already be expired or revoked, or the Node gone: forget it all the same.
            console.message(f"warning: could not revoke the token on {context.url}: {exc.message}")
    if context.deployment:
        context.token = ""
        saved.put(context, make_current=False)
    else:
        saved.remove(context.name)
    console.message(f"logged out of {context.url} (context {context.name!r})")
    if console.output() is console.Output.json:
        console.emit({"context": context.name, "url": context.url, "revoked": revoked})


def _row(context: Any, current: str | None) -> dict[str, Any]:
    return {"current": context.name == current, "name": context.name, "url": context.url,
            "email": context.email, "deployment": context.deployment or None, "logged_in": bool(context.token)}


@context_app.command("list")
def context_list(output: OutputOption = None) -> None:
    """List saved contexts (never their tokens)."""
    from gridctl.cli.contexts import ContextFile

    common.use_output(output)
    saved = ContextFile.load()
    console.emit([_row(c, saved.current) for c in saved.contexts.values()], columns=CONTEXT_COLUMNS)


@context_app.command("use")
def context_use(
    name: Annotated[str, typer.Argument(help="A context from 'gridctl context list'.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Make a saved context the current one."""
    from gridctl.cli.contexts import ContextFile

    common.use_output(output)
    saved = ContextFile.load()
    if name not in saved.contexts:
        raise NotConfigured(f"no context named {name!r}; see 'gridctl context list'")
    saved.current = name
    saved.save()
    console.message(f"context {name!r} is now current")
    if console.output() is console.Output.json:
        console.emit(_row(saved.contexts[name], name))


@context_app.command("show")
def context_show(
    name: Annotated[str | None, typer.Argument(help="A saved context (default: the one in use).",
                                               show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Show the context in use (or NAME): which Node and which login; GRIDCTL_URL/GRIDCTL_TOKEN win.

    source says where it comes from: context, or GRIDCTL_URL when the environment overrides it.
    """
    import os

    from gridctl.cli.contexts import ContextFile

    common.use_output(output)
    saved = ContextFile.load()
    name = name or common.selected_context()
    env_url, env_token = os.environ.get("GRIDCTL_URL"), os.environ.get("GRIDCTL_TOKEN")
    if name is None and env_url:
        console.emit({"current": True, "name": None, "url": env_url, "email": None, "deployment": None,
                      "logged_in": bool(env_token), "source": "GRIDCTL_URL"}, columns=[*CONTEXT_COLUMNS, "source"])
        return
    context = saved.contexts.get(name or saved.current or "")
    if context is None:
        raise NotConfigured(f"no context named {name!r}; see 'gridctl context list'" if name else
                            "no current context: run 'gridctl login URL' or 'gridctl deploy local'")
    console.emit({**_row(context, saved.current), "source": "context"}, columns=[*CONTEXT_COLUMNS, "source"])


@context_app.command("remove")
def context_remove(
    name: Annotated[str, typer.Argument(help="A saved context.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Forget a saved context without contacting its Node (use 'gridctl logout' to revoke the token)."""
    from gridctl.cli.contexts import ContextFile

    common.use_output(output)
    saved = ContextFile.load()
    if name not in saved.contexts:
        raise NotConfigured(f"no context named {name!r}; see 'gridctl context list'")
    saved.remove(name)
    common.removed("context", name)


def register(root: typer.Typer) -> None:
    root.command("login")(login)
    root.command("logout")(logout)
    root.add_typer(context_app, name="context")
