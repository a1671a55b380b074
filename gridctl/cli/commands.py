"""The CLI's top-level commands, in the order ``gridctl --help`` lists them, and the modules that build each.

``gridctl`` imports a command's modules only when that command is looked up (to run it, or for its own
``--help``): ``gridctl --help`` prints the summaries below and imports none of them, and ``gridctl users list``
imports ``gridctl.cli.users`` alone. Each module under ``gridctl/cli/`` defines ``app`` (a Typer, added as the
group of the command's name) or ``register(root)`` (which adds top-level commands to ``root``).

To add a command: its module, and one line here. tests/test_startup.py fails when a summary differs from the
command's own help, or when a module registers a top-level command this table does not list.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, MutableMapping
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typer._click import Command

# name: (modules under gridctl.cli that build it, in order; the one line `gridctl --help` shows for it)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    # deploy.py: deploy, status, destroy; clouds.py adds the cloud targets to deploy and destroy
    "deploy": (("deploy", "clouds"), "Deploy a Node: on this machine (local); clouds come with their extras."),
    "status": (("deploy",), "Deployments made from this machine (running, healthy, pid) and the current context."),
    "destroy": (("deploy", "clouds"), "Stop a deployment, and with --purge delete its data."),
    "check": (("clouds",), "Which targets this machine can deploy to now (extra installed, Pulumi CLI, "
                           "credentials), and why not."),
    # clouds.py defines the group and `scale`; workers.py adds list, add and remove to it
    "workers": (("clouds", "workers"), "The Workers of a deployment."),
    "login": (("auth",), "Log in to a Node and save it as the current context."),
    "logout": (("auth",), "Log out: revoke the session token on the Node and forget it."),
    "context": (("auth",), "List, select and show saved contexts (Node URL + login)."),
    "users": (("users",), "Manage users: add, list, update, disable, remove, set budgets."),
    "roles": (("roles",), "Manage roles: preset and custom sets of capabilities."),
    "groups": (("groups",), "Manage groups and their members."),
    "tokens": (("tokens",), "Manage your API tokens for scripts and CI."),
    "audit": (("audit",), "Show the audit log, newest first, with filters."),
    "tensors": (("tensors",), "Upload, search, download and manage tensors."),
    "datasets": (("datasets",), "Create and manage datasets: named collections of tensors."),
    "permissions": (("permissions",), "Grant, revoke, list and explain permissions on tensors and datasets."),
    "requests": (("requests",), "File, follow and decide requests (access, release, budget)."),
    "budget": (("budget",), "Your privacy budget: ε spent and remaining, the cap, and your last privacy events."),
    "jobs": (("jobs",), "List, show and cancel jobs; read and set job quotas."),
    "admin": (("admin",), "The Admin, the Node's web app: write it out for any static host."),
    "network": (("network",), "Networks: join one from a Node, and search every associated Node's catalogue."),
    "fl": (("fl",), "Federated learning: host processes that clients train on their own data, and be a client."),
}


def summary(name: str) -> str:
    return COMMANDS[name][1]


def build(name: str) -> Command:
    """The click command ``name``: imports its modules and converts their Typer apps (help in plain text)."""
    import typer
    import typer.main

    scratch = typer.Typer(rich_markup_mode=None, add_completion=False)
    scratch.callback()(_group)  # a group even when the modules add a single command
    for module_name in COMMANDS[name][0]:
        module = importlib.import_module(f"gridctl.cli.{module_name}")
        if hasattr(module, "register"):
            module.register(scratch)
        else:
            scratch.add_typer(module.app, name=module_name)
    group = typer.main.get_command(scratch)
    command = group.commands.get(name)  # type: ignore[attr-defined]
    if command is None:
        raise LookupError(f"gridctl.cli.commands: none of {COMMANDS[name][0]} defines the command {name!r}")
    _whole_summaries(command)
    quick_coercion(command)
    return command


def first_sentence(help_text: str) -> str:
    """What a command list shows for a command: the first sentence of its help, however long."""
    from typer._click.utils import make_default_short_help

    return make_default_short_help(help_text, max_length=100_000)


def _whole_summaries(command: Command) -> None:
    # click cuts a listed command's help to the terminal width with "..."; a whole sentence, wrapped, reads better.
    for sub in (getattr(command, "commands", None) or {}).values():
        if not sub.short_help and sub.help:
            sub.short_help = first_sentence(sub.help)
        _whole_summaries(sub)


def _group() -> None:
    """Scratch group."""


def quick_coercion(command: Any, *, subcommands: bool = True) -> None:
    """Give each parameter of ``command`` (and of its subcommands) a ``QuickCoercion``."""
    for param in getattr(command, "params", None) or []:
        _quick(param)
    if hasattr(command, "get_help_option") and "get_help_option" not in vars(command):
        typer_help_option = command.get_help_option

        def get_help_option(ctx: Any) -> Any:  # made on first use, for the context's -h/--help names
            return _quick(typer_help_option(ctx))

        command.get_help_option = get_help_option
    if subcommands:
        for sub in (getattr(command, "commands", None) or {}).values():
            quick_coercion(sub)


def _quick(param: Any) -> Any:
    if hasattr(param, "type_descriptor") and not isinstance(getattr(param, "_runtime_param", None), QuickCoercion):
        param._runtime_param = QuickCoercion()
    return param


class QuickCoercion:
    """A parameter's value coercion, as Typer does it, without Pydantic for values that need no conversion.

    Typer (0.29) coerces every parameter through a Pydantic TypeAdapter, built when the command runs even for
    a value left at None: importing Pydantic and building the adapters was a third of ``gridctl users list``.
    Here None, and a default already of its declared type (within its range), come back as Typer returns
    them; any other value (what a user typed, an environment variable) goes to Typer's own coercion, built on
    first need. tests/test_startup.py checks both against Typer's for every parameter of every command.
    """

    def __init__(self) -> None:
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:
            return () if param.multiple or param.nargs == -1 else None
        known, result = quick_value(value, param)
        if known:
            return result
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(param.type_descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")


def quick_value(value: Any, param: Any) -> tuple[bool, Any]:
    """``(True, what Typer's coercion returns)`` for the plain cases: a str for a str, a bool for a bool, an int
    or float default in range, a canonical decimal for an int in range, an Enum's exact value or member;
    ``(False, None)`` for anything else."""
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    if info.parser is not None or param.multiple or param.nargs != 1:
        return False, None
    annotation = descriptor.annotation
    if annotation is str or annotation is bool:
        return type(value) is annotation, value
    if annotation in (int, float):
        if annotation is int and type(value) is str and _CANONICAL_INT.fullmatch(value):
            value = int(value)
        if type(value) is not annotation:
            return False, None
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        return (low is None or value >= low) and (high is None or value <= high), value
    if isinstance(annotation, type) and issubclass(annotation, Enum) and info.case_sensitive:
        if isinstance(value, annotation):
            return True, value
        if type(value) is str:
            member = next((m for m in annotation if m.value == value), None)
            return member is not None, member
    return False, None


class LazyCommands(MutableMapping[str, "Command"]):
    """The root group's ``commands``: every name of ``COMMANDS`` (and any added), each built on first lookup."""

    def __init__(self, added: MutableMapping[str, Command] | None = None) -> None:
        self._built: dict[str, Command] = dict(added or {})
        self._names = list(COMMANDS) + [n for n in self._built if n not in COMMANDS]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)
            self._built[name] = build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self._names:
            self._names.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def is_built(self, name: str) -> bool:
        return name in self._built
