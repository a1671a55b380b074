"""The one seam between gridctl and Pulumi: :class:`StackRunner` and :func:`plan`.

``StackRunner`` drives the Pulumi Automation API with an inline program: one stack per deployment, state
in a local file backend under the deployment's state directory (``<state_dir>/pulumi/``) encrypted with a
passphrase generated once and kept owner-only beside it, or in any backend URL the operator gives
(``s3://...``, ``gs://...``, ``azblob://...``, Pulumi Cloud). Progress is handed to a callback as
:class:`ProgressEvent`s; the CLI renders them with Rich. Tests replace the whole runner with a fake.

``plan`` runs a program offline under Pulumi's mocks and returns the resources it declares, so an operator
can read what a deploy would create before having credentials or the Pulumi CLI.

Pulumi is imported inside the functions that need it: importing this module costs nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from providers.base import ProviderError, make_private_dir, write_state_file

PASSPHRASE_FILE = "pulumi-passphrase"  # noqa: S105  (a file name, not a secret)
PULUMI_DIR = "pulumi"
INSTALL_HINT = (
    "the Pulumi CLI is not installed (gridctl drives it for cloud deployments): install it with "
    "'curl -fsSL https://get.pulumi.com | sh' or 'brew install pulumi/tap/pulumi' "
    "(see https://www.pulumi.com/docs/install/), then check that 'pulumi version' works in this shell"
)


class PulumiMissing(ProviderError):
    def __init__(self) -> None:
        super().__init__(INSTALL_HINT, code="unavailable")


class StackFailed(ProviderError):
    def __init__(self, operation: str, detail: str) -> None:
        super().__init__(f"pulumi {operation} failed: {detail}")


def pulumi_cli_missing() -> str | None:
    """``None`` when the Pulumi CLI can be run; otherwise how to install it."""
    return None if shutil.which("pulumi") else INSTALL_HINT


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a preview, update or destroy, as the CLI shows it."""

    kind: str  # "step" (a resource starts), "done" (it finished), "failed", "diagnostic", "summary"
    message: str
    action: str | None = None  # create, update, replace, delete, same, ...
    resource_type: str | None = None
    resource_name: str | None = None
    severity: str | None = None  # for diagnostics: info, warning, error


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass
class StackOutcome:
    """What a preview, update or destroy did: change counts by action and the stack's outputs."""

    operation: str  # "preview", "up", "destroy"
    changes: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


def _name_from_urn(urn: str | None) -> str | None:
    return urn.rsplit("::", 1)[-1] if urn else None


def to_progress(event: Any) -> ProgressEvent | None:
    """Translate an Automation API ``EngineEvent`` into a :class:`ProgressEvent` (``None``: not shown)."""
    if event.resource_pre_event is not None:
        meta = event.resource_pre_event.metadata
        if meta.op == "same":
            return None
        return ProgressEvent(
            "step",
            f"{meta.op} {meta.type} {_name_from_urn(meta.urn)}",
            action=str(meta.op),
            resource_type=meta.type,
            resource_name=_name_from_urn(meta.urn),
        )
    if event.res_outputs_event is not None:
        meta = event.res_outputs_event.metadata
        if meta.op == "same":
            return None
        return ProgressEvent(
            "done",
            f"{meta.op} {meta.type} {_name_from_urn(meta.urn)} done",
            action=str(meta.op),
            resource_type=meta.type,
            resource_name=_name_from_urn(meta.urn),
        )
    if event.res_op_failed_event is not None:
        meta = event.res_op_failed_event.metadata
        return ProgressEvent(
            "failed",
            f"{meta.op} {meta.type} {_name_from_urn(meta.urn)} failed",
            action=str(meta.op),
            resource_type=meta.type,
            resource_name=_name_from_urn(meta.urn),
        )
    if event.diagnostic_event is not None:
        diag = event.diagnostic_event
        if diag.ephemeral or not diag.message.strip():
            return None
        return ProgressEvent(
            "diagnostic", diag.message.strip(), severity=diag.severity, resource_name=_name_from_urn(diag.urn)
        )
    if event.summary_event is not None:
        changes = dict(event.summary_event.resource_changes or {})
        text = ", ".join(f"{count} {op}" for op, count in sorted(changes.items())) or "no changes"
        return ProgressEvent("summary", text)
    return None


class StackRunner:
    """Preview, update, destroy and read one deployment's Pulumi stack.

    ``program`` is the inline Pulumi program (a function of no arguments declaring resources).
    ``config`` is stack configuration (``{"aws:region": "eu-west-1"}``). ``backend_url`` chooses where the
    state lives; by default a ``file://`` backend in ``<state_dir>/pulumi``.
    """

    def __init__(
        self,
        *,
        project: str,
        stack: str,
        state_dir: Path,
        program: Callable[[], None],
        backend_url: str | None = None,
        config: Mapping[str, str] | None = None,
        secrets_provider: str | None = None,
    ) -> None:
        self.project = project
        self.stack_name = stack
        self.state_dir = state_dir
        self.program = program
        self.work_dir = state_dir / PULUMI_DIR
        self.backend_url = backend_url or f"file://{self.work_dir / 'state'}"
        self.config = dict(config or {})
        #: A cloud KMS key URL (awskms://, gcpkms://, azurekeyvault://, hashivault://), or None for a passphrase
        #: kept owner-only in the state directory.
        self.secrets_provider = check_secrets_provider(secrets_provider)

    # -- the passphrase that encrypts the stack's secrets ---------------------------------------------------

    def passphrase(self) -> str:
        """The stack's secrets passphrase, generated once and kept owner-only in the state directory."""
        import secrets

        path = self.state_dir / PASSPHRASE_FILE
        if not path.exists():
            make_private_dir(self.state_dir)
            write_state_file(path, secrets.token_urlsafe(32) + "\n")
        return path.read_text().strip()

    # -- the Automation API --------------------------------------------------------------------------------

    def workspace_options(self) -> Any:
        """The Automation API's workspace options: the backend, and the secrets provider with what it needs
        (a passphrase only when no KMS key is given; a KMS key is used with the operator's cloud credentials)."""
        from pulumi import automation as auto

        env_vars = {"PULUMI_SKIP_UPDATE_CHECK": "true"}
        if self.secrets_provider is None:
            # Handed to each pulumi command, never put in this process's environment.
            env_vars["PULUMI_CONFIG_PASSPHRASE"] = self.passphrase()
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.work_dir),
            env_vars=env_vars,
            secrets_provider=self.secrets_provider or "passphrase",
            project_settings=auto.ProjectSettings(
                name=self.project, runtime="python", backend=auto.ProjectBackend(url=self.backend_url)
            ),
        )

    def _stack(self) -> Any:
        if pulumi_cli_missing():
            raise PulumiMissing
        from pulumi import automation as auto

        make_private_dir(self.work_dir)
        if self.backend_url.startswith("file://"):
            make_private_dir(Path(self.backend_url.removeprefix("file://")))
        options = self.workspace_options()
        try:
            stack = auto.create_or_select_stack(
                stack_name=self.stack_name, project_name=self.project, program=self.program, opts=options
            )
        except FileNotFoundError:
            raise PulumiMissing from None
        except auto.errors.CommandError as exc:
            raise StackFailed("stack select", _short(exc)) from None
        if self.config:
            stack.set_all_config({key: auto.ConfigValue(value=value) for key, value in self.config.items()})
        return stack

    def _run(self, operation: str, on_progress: ProgressCallback | None, call: Callable[[Any, Any], Any]) -> Any:
        stack = self._stack()
        from pulumi import automation as auto

        def on_event(event: Any) -> None:
            progress = to_progress(event)
            if progress is not None and on_progress is not None:
                on_progress(progress)

        try:
            return stack, call(stack, on_event)
        except auto.errors.CommandError as exc:
            raise StackFailed(operation, _short(exc)) from None

    def preview(self, on_progress: ProgressCallback | None = None) -> StackOutcome:
        _, result = self._run("preview", on_progress, lambda s, cb: s.preview(on_event=cb, color="never"))
        return StackOutcome("preview", changes=dict(result.change_summary or {}))

    def up(self, on_progress: ProgressCallback | None = None) -> StackOutcome:
        _, result = self._run("up", on_progress, lambda s, cb: s.up(on_event=cb, color="never"))
        changes = dict(result.summary.resource_changes or {})
        return StackOutcome("up", changes=changes, outputs={k: v.value for k, v in result.outputs.items()})

    def destroy(self, on_progress: ProgressCallback | None = None, *, remove_stack: bool = True) -> StackOutcome:
        stack, result = self._run("destroy", on_progress, lambda s, cb: s.destroy(on_event=cb, color="never"))
        if remove_stack:
            stack.workspace.remove_stack(self.stack_name)
        return StackOutcome("destroy", changes=dict(result.summary.resource_changes or {}))

    def outputs(self) -> dict[str, Any]:
        stack = self._stack()
        return {key: value.value for key, value in stack.outputs().items()}


SECRETS_PROVIDER_SCHEMES = ("awskms://", "gcpkms://", "azurekeyvault://", "hashivault://")


def check_secrets_provider(url: str | None) -> str | None:
    """``url`` if it names a KMS key Pulumi can encrypt the stack's secrets with; ``None`` stays ``None``."""
    if url is None:
        return None
    if not url.startswith(SECRETS_PROVIDER_SCHEMES) or len(url.split("://", 1)[1]) < 3:
        raise ProviderError(f"--secrets-provider {url!r}: give a KMS key URL starting with "
                            f"{', '.join(SECRETS_PROVIDER_SCHEMES)} (see docs/clouds/state.md)", code="usage")
    return url


def _short(exc: Exception) -> str:
    """The useful line of a Pulumi command error: its stderr's last error lines, not the whole transcript."""
    stderr = getattr(exc, "stderr", "") or str(exc)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return " | ".join((errors or lines)[-3:]) or type(exc).__name__


def pulumi_version() -> str | None:
    """The installed Pulumi CLI's version, or ``None``."""
    if pulumi_cli_missing():
        return None
    done = subprocess.run(["pulumi", "version"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip() or None


# -- plan: the program offline, under Pulumi's mocks ----------------------------------------------------------


@dataclass(frozen=True)
class DeclaredResource:
    """A resource a program declares, with the inputs it passes (secret values redacted by ``plan``)."""

    type: str
    name: str
    inputs: dict[str, Any]
    custom: bool = True  # False for components (Node, WorkerPool, ...), which group the others
    parent: str | None = None  # the logical name of the component it belongs to
    # Logical names of the resources it waits for (explicit depends_on and the resources its inputs come from).
    dependencies: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()  # inputs whose change replaces the resource (a resource option)


MockCall = Callable[[Mapping[str, Any]], dict[str, Any]]


def _as_outputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs echoed as a resource's state. Pulumi fills outputs the state lacks from the inputs, so an
    input whose output has another shape must be reshaped here: Azure's user-assigned identities go in as a
    list of ids and come out as a map keyed by id."""
    identity = inputs.get("identity")
    if isinstance(identity, Mapping) and isinstance(identity.get("userAssignedIdentities"), list):
        inputs["identity"] = {**identity, "userAssignedIdentities": {i: {} for i in identity["userAssignedIdentities"]}}
    return inputs


REDACTED = "[secret]"


def _redact(value: Any, secret_values: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return REDACTED if any(secret in value for secret in secret_values) else value
    if isinstance(value, Mapping):
        return {key: _redact(item, secret_values) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item, secret_values) for item in value]
    return value


def plan(
    program: Callable[[], None],
    *,
    project: str,
    stack: str,
    calls: Mapping[str, MockCall] | None = None,
    secret_values: Iterable[str] = (),
    redact: bool = True,
    computed: Callable[[str, str, Mapping[str, Any]], dict[str, Any]] | None = None,
) -> list[DeclaredResource]:
    """Run ``program`` in this process under Pulumi's mocks and return the resources it declares, in order.

    Nothing leaves the machine: no cloud API, no Pulumi CLI. ``calls`` answers the program's data-source
    invokes by token (``aws:index/getAvailabilityZones:getAvailabilityZones``). Any input containing one of
    ``secret_values`` is replaced by ``[secret]`` unless ``redact`` is false (tests inspect the raw inputs).
    ``computed(type, name, inputs)`` supplies outputs the cloud would compute (an ARN, an e-mail address),
    so the program's derived values (policies naming ARNs) read as they would.
    """
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.settings import SETTINGS, set_root_resource
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    declared: list[DeclaredResource] = []
    parent_urns: dict[tuple[str, str], str] = {}  # (type, name) -> its parent's URN
    dependency_urns: dict[tuple[str, str], list[str]] = {}  # (type, name) -> the URNs it depends on
    replacements: dict[tuple[str, str], list[str]] = {}  # (type, name) -> its replace_on_changes
    answers = dict(calls or {})

    class Recorder(pulumi_mocks.Mocks):
        def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
            declared.append(
                DeclaredResource(type=args.typ, name=args.name, inputs=dict(args.inputs), custom=bool(args.custom))
            )
            # The mock's state echoes the inputs so outputs such as a bucket's name resolve.
            state = _as_outputs(dict(args.inputs))
            if computed is not None and args.custom:
                state.update(computed(args.typ, args.name, args.inputs))
            return (f"{args.name}-id" if args.custom else None), state

        def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
            answer = answers.get(args.token)
            if answer is None:
                raise ProviderError(f"plan: no offline answer for the data source {args.token}")
            return answer(dict(args.args)), []

    class Monitor(pulumi_mocks.MockMonitor):
        def RegisterResource(self, request: Any) -> Any:  # noqa: N802  (the gRPC method's name)
            parent_urns[(request.type, request.name)] = request.parent
            dependency_urns[(request.type, request.name)] = list(request.dependencies)
            replacements[(request.type, request.name)] = list(request.replaceOnChanges)
            return super().RegisterResource(request)

    recorder = Recorder()
    set_root_resource(None)  # type: ignore[arg-type]  # each plan declares its own stack
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=False, monitor=Monitor(recorder))
    SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(program))

    def parent_name(resource: DeclaredResource) -> str | None:
        urn = parent_urns.get((resource.type, resource.name)) or ""
        return None if not urn or "::pulumi:pulumi:Stack::" in urn else urn.rsplit("::", 1)[-1]

    secrets = tuple(s for s in secret_values if s)
    resources = [
        DeclaredResource(
            type=r.type,
            name=r.name,
            inputs=_redact(r.inputs, secrets) if redact else r.inputs,
            custom=r.custom,
            parent=parent_name(r),
            dependencies=tuple(sorted({urn.rsplit("::", 1)[-1]
                                       for urn in dependency_urns.get((r.type, r.name), [])})),
            replace_on_changes=tuple(replacements.get((r.type, r.name), [])),
        )
        for r in declared
    ]
    # Registration order depends on when outputs resolve; sort so a plan reads the same every time.
    return sorted(resources, key=lambda r: (r.parent or r.name, r.custom, r.type, r.name))
