"""What the AWS, GCP and Azure providers share: a deployment is one Pulumi stack run by a ``StackRunner``.

Each cloud's ``provider.py`` subclasses :class:`CloudProvider` with its names, its stack configuration, its
credential check and how to fetch the API's TLS root certificate from the deployment's bucket. Everything
else is here, once:

- ``deploy``: the settings are built from the spec plus what the deployment already has (its random
  ``suffix``, its generated secrets, Azure's throwaway admin key), saved *before* ``pulumi up`` so that a
  failed update can still be destroyed; after the update the Owner is created over HTTPS with the setup token
  the Node adopted at first start, the connection pinned to the root certificate the Node published.
- ``preview``, ``destroy``, ``status``, ``scale_workers``: the same stack, through the same runner; scaling
  changes only the Worker count in the settings, so only the Worker pool changes.
- ``plan``: the program under Pulumi's mocks, offline.

State directory of a cloud deployment (mode 0700)::

    deployment.json    the DeploymentRecord; settings: the spec, suffix, admin key, outputs, owner_created
    secrets.json       the generated secrets (setup token, Ray token, database password), owner-only
    tls-root.crt       the Node's TLS root certificate, pinned (without --domain)
    build/             the gridctl wheel and constraints the machines install (providers/build.py)
    pulumi/            the Pulumi workspace and, by default, the stack's file backend
    pulumi-passphrase  encrypts the stack's secrets (providers/stack.py)

The runner is made by :func:`make_runner`, the one seam tests replace with a fake of the same interface.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import ssl
import tempfile
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from gridctl.sdk.errors import GridctlError
from providers.base import (
    DeploymentConflict,
    DeploymentRecord,
    DeploymentSpec,
    DeploymentStatus,
    DeployResult,
    Feature,
    PlannedChange,
    Provider,
    ProviderError,
    generate_password,
    make_private_dir,
    utc_timestamp,
    write_state_file,
)
from providers.build import MachineBuild, operator_build
from providers.cloud import CloudSettings, DeploymentSecrets, new_suffix

if TYPE_CHECKING:
    from providers.stack import DeclaredResource, ProgressCallback, ProgressEvent, StackOutcome, StackRunner

PROJECT = "gridctl"  # the Pulumi project of every deployment; the stack is named after the deployment
SECRETS_FILE = "secrets.json"
TLS_ROOT_FILE = "tls-root.crt"
NETWORK_TLS_ROOT_FILE = "network-tls-root.crt"  # the Network machine's own CA (--network), pinned
BUILD_DIR = "build"
BOOT_LOG_LINES = 40  # of the machine's console shown when the Node does not come up
CLI_TOKEN_NAME = "gridctl-cli"  # noqa: S105  (the name of the context's API token, not a secret)
# A new machine installs its packages (Ray, gridctl) before the Node answers: minutes, not seconds.
START_TIMEOUT = float(os.environ.get("GRIDCTL_CLOUD_START_TIMEOUT", "1500"))
POLL_SECONDS = 10.0
# Shown in a plan when no --allow-cidr was given: a plan never calls out to learn the operator's address.
PLACEHOLDER_CIDR = "192.0.2.1/32"  # TEST-NET-1 (RFC 5737)
PLACEHOLDER_PROJECT = "your-gcp-project"
CHECKIP_URL = "https://checkip.amazonaws.com"
# The spec fields a deployment remembers, so that a later deploy changes only what the operator gives.
REMEMBERED = ("region", "workers", "instance_type", "worker_instance_type", "database", "network", "allow_cidr",
              "ssh_cidr", "ssh_public_key", "domain", "project", "backend_url", "secrets_provider", "owner_email")


def require_modules(cloud: str, *modules: str) -> None:
    """Raise ImportError (so the registry hides the provider) when a module of the cloud's extra is missing.

    ``find_spec`` looks without importing: listing providers never pays for a cloud SDK's import.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(f"{', '.join(missing)} not installed (the '{cloud}' extra)")


def make_runner(
    *,
    project: str,
    stack: str,
    state_dir: Path,
    program: Callable[[], None],
    backend_url: str | None,
    config: Mapping[str, str],
    secrets_provider: str | None = None,
) -> StackRunner:
    """The runner of one deployment's stack: the one seam between providers and Pulumi (tests replace it).

    Refuses before anything is written when the Pulumi CLI is missing, saying how to install it.
    """
    from providers.stack import StackRunner

    require_pulumi()
    return StackRunner(project=project, stack=stack, state_dir=state_dir, program=program,
                       backend_url=backend_url, config=config, secrets_provider=secrets_provider)


def require_pulumi() -> None:
    """Raise ``PulumiMissing`` (how to install it) unless the Pulumi CLI can run here. Tests that replace
    :func:`make_runner` replace this too."""
    from providers.stack import PulumiMissing, pulumi_cli_missing

    if pulumi_cli_missing():
        raise PulumiMissing


def operator_cidr(timeout: float = 10.0) -> str:
    """This machine's public address as a /32: the API's default ingress."""
    import ipaddress

    import httpx

    try:
        address = httpx.get(CHECKIP_URL, timeout=timeout).text.strip()
        return f"{ipaddress.ip_address(address)}/32"
    except (httpx.HTTPError, ValueError):
        raise ProviderError(f"could not learn this machine's public address from {CHECKIP_URL}; "
                            "give the API's allowed addresses with --allow-cidr", code="usage") from None


def any_env(names: Sequence[str]) -> str | None:
    """The first of ``names`` set (non-empty) in the environment."""
    return next((name for name in names if os.environ.get(name)), None)


def home_file(*parts: str) -> Path:
    return Path(os.path.expanduser("~")).joinpath(*parts)


class CloudProvider(Provider):
    """A cloud target driven through Pulumi. Subclasses set the class attributes and the four hooks."""

    unsupported: ClassVar[Mapping[Feature, str]] = {}
    #: The cloud's ``config.py`` module (names and defaults such as ``DEFAULT_REGION``, no Pulumi).
    config: ClassVar[ModuleType]

    def __init__(self, deployments_dir: Path) -> None:
        super().__init__(deployments_dir)
        #: Where progress goes (the CLI renders it); ``None``: nowhere.
        self.on_progress: ProgressCallback | None = None

    @property
    def program_module(self) -> str:
        """The module whose ``build(settings)``, ``plan(settings)`` and ``CLOUD_INIT`` make the Pulumi program
        (providers/cloud_program.py): ``providers/<name>/program.py``."""
        return f"providers.{self.name}.program"

    @property
    def default_region(self) -> str:
        return str(self.config.DEFAULT_REGION)

    # --- the hooks each cloud implements -----------------------------------------------------------------

    @abstractmethod
    def credential_problem(self) -> str | None:
        """``None`` when credentials for this cloud are found in the environment or the usual files."""

    @abstractmethod
    def stack_config(self, settings: CloudSettings) -> dict[str, str]:
        """Pulumi stack configuration (``aws:region``...)."""

    @abstractmethod
    def fetch_root_certificate(self, settings: CloudSettings, outputs: Mapping[str, Any],
                               role: str = "node") -> bytes | None:
        """The TLS root certificate the ``role`` machine (the Node, or the Network) published to the
        deployment's bucket; ``None`` while it is not there yet."""

    def extra_settings(self, spec: DeploymentSpec, state: Mapping[str, Any], *, offline: bool) -> dict[str, Any]:
        """Cloud-only ``CloudSettings`` fields (GCP's project, Azure's admin key)."""
        return {}

    def identity_problem(self) -> str | None:
        """``None`` when the cloud's identity API accepts this machine's credentials (STS, ADC, Azure AD);
        otherwise what it answered. Called by ``gridctl check`` after :meth:`credential_problem`."""
        return None

    def console_output(self, settings: CloudSettings, outputs: Mapping[str, Any]) -> str | None:
        """The Node machine's console (serial) output, read with the operator's credentials; ``None`` when the
        cloud has none yet."""
        return None

    def remember_outputs(self, record: DeploymentRecord, outputs: Mapping[str, Any]) -> None:
        """Keep what the first update learnt (Azure's subscription) in the record."""

    def new_state(self, spec: DeploymentSpec) -> dict[str, Any]:
        """What a new deployment generates once and keeps (besides its secrets)."""
        return {"suffix": new_suffix()}

    # --- credentials ------------------------------------------------------------------------------------

    def check_credentials(self) -> str | None:
        """What keeps this machine from deploying here: no Pulumi CLI, no credentials, or credentials the cloud's
        identity API refuses (it is called: a config file alone proves nothing)."""
        from providers.stack import pulumi_cli_missing

        pulumi = "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/)"
        credentials = self.credential_problem()
        identity = None if credentials else self.identity_problem()
        problems = [problem for problem in (pulumi if pulumi_cli_missing() else None, credentials, identity)
                    if problem]
        return "; ".join(problems) or None

    # --- specs, settings and state ------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return DeploymentRecord.path(self.state_dir(name)).exists()

    def spec_for(self, name: str, **given: Any) -> DeploymentSpec:
        """The spec of a deploy of ``name``: the options given (not ``None``) over what the deployment already
        has, over the defaults. A re-deploy changes only what the operator gives again."""
        remembered: dict[str, Any] = {}
        if self.exists(name):
            remembered = dict(self.record(name).settings.get("spec", {}))
        values: dict[str, Any] = {"region": self.default_region}
        values.update({key: value for key, value in remembered.items() if key in REMEMBERED})
        values.update({key: value for key, value in given.items() if value is not None})
        return DeploymentSpec(name=name, **values)

    def settings(self, name: str) -> CloudSettings:
        """The settings the deployment was last deployed with, its build included."""
        record = self.record(name)
        spec = DeploymentSpec(name=name, **record.settings["spec"])
        return self._settings(spec, record.settings, self._load_secrets(name), build=self.recorded_build(record))

    def recorded_build(self, record: DeploymentRecord) -> MachineBuild | None:
        """The build the deployment's machines run (``None`` for a deployment made before builds were shipped)."""
        values = record.settings.get("build")
        return MachineBuild.from_record(values) if values else None

    def _settings(self, spec: DeploymentSpec, state: Mapping[str, Any], secrets: DeploymentSecrets, *,
                  offline: bool = False, build: MachineBuild | None = None) -> CloudSettings:
        try:
            return CloudSettings.from_spec(
                spec, secrets=secrets, suffix=state["suffix"], worker_instance_type=spec.worker_instance_type,
                ssh_cidrs=tuple(spec.ssh_cidr), ssh_public_key=spec.ssh_public_key, domain=spec.domain, build=build,
                **self.extra_settings(spec, state, offline=offline))
        except ValueError as exc:
            raise ProviderError(str(exc), code="usage") from None

    def _fresh_build(self, name: str, work_dir: Path) -> tuple[MachineBuild, MachineBuild]:
        """The running gridctl built into ``work_dir``: (that build, the same build at its place in the
        deployment's state directory, where :meth:`_keep_build` moves it once the deploy goes ahead)."""
        built = operator_build(work_dir)
        final_dir = self.state_dir(name) / BUILD_DIR
        return built, MachineBuild(
            version=built.version, wheel_sha256=built.wheel_sha256, constraints_sha256=built.constraints_sha256,
            wheel_path=str(final_dir / Path(built.wheel_path).name),
            constraints_path=str(final_dir / Path(built.constraints_path).name))

    @staticmethod
    def _keep_build(built: MachineBuild, final: MachineBuild) -> None:
        final_dir = Path(final.wheel_path).parent
        make_private_dir(final_dir)
        for stale in final_dir.iterdir():
            if stale.is_file():
                stale.unlink()
        shutil.copyfile(built.wheel_path, final.wheel_path)
        shutil.copyfile(built.constraints_path, final.constraints_path)

    def _load_secrets(self, name: str) -> DeploymentSecrets:
        path = self.state_dir(name) / SECRETS_FILE
        return DeploymentSecrets(**json.loads(path.read_text()))

    def _save_secrets(self, name: str, secrets: DeploymentSecrets) -> None:
        write_state_file(self.state_dir(name) / SECRETS_FILE, json.dumps(asdict(secrets), indent=2) + "\n")

    @staticmethod
    def _spec_state(spec: DeploymentSpec) -> dict[str, Any]:
        names = {f.name for f in fields(DeploymentSpec)}
        return {key: getattr(spec, key) for key in REMEMBERED if key in names}

    def _runner(self, settings: CloudSettings, record: DeploymentRecord | None = None,
                spec: DeploymentSpec | None = None) -> StackRunner:
        remembered = record.settings.get("spec", {}) if record else {}
        backend = spec.backend_url if spec else remembered.get("backend_url")
        secrets_provider = spec.secrets_provider if spec else remembered.get("secrets_provider")
        program = importlib.import_module(self.program_module).build(settings)
        return make_runner(project=PROJECT, stack=settings.name, state_dir=self.state_dir(settings.name),
                           program=program, backend_url=backend, config=self.stack_config(settings),
                           secrets_provider=secrets_provider)

    def node_user_data_digest(self, settings: CloudSettings) -> str:
        """A digest of the Node's user-data (its address aside): when it changes, only a new machine runs it."""
        program = importlib.import_module(self.program_module)
        text = program.CLOUD_INIT.user_data("node", settings, "0.0.0.0")  # noqa: S104
        return hashlib.sha256(text.encode()).hexdigest()

    def _check_node_replacement(self, record: DeploymentRecord, settings: CloudSettings,
                                spec: DeploymentSpec) -> None:
        """A changed user-data replaces the Node's machine, and with it the data on its disk: only when asked."""
        before = record.settings.get("node_user_data_sha256")
        if before is None or before == self.node_user_data_digest(settings) or spec.replace_node:
            return
        was = self.recorded_build(record)
        now = settings.build
        reasons = []
        if was is None or now is None or was.wheel_sha256 != now.wheel_sha256:
            reasons.append(f"gridctl {now.version if now else '?'} (wheel sha256 "
                           f"{now.wheel_sha256[:12] if now else '?'}) instead of "
                           f"{was.version if was else 'an older build'}"
                           f"{f' ({was.wheel_sha256[:12]})' if was else ''}")
        before_spec = record.settings["spec"]
        for option, key in (("--domain", "domain"), ("--database", "database"), ("--ssh-key", "ssh_public_key"),
                            ("--ssh-cidr", "ssh_cidr")):
            if before_spec.get(key) != getattr(spec, key):
                reasons.append(f"{option} changed")
        raise DeploymentConflict(
            f"this deploy changes what the Node's machine boots ({'; '.join(reasons) or 'its cloud-init'}): cloud-init "
            "runs once, so it takes effect only on a new machine, and replacing the Node loses the data on its disk "
            "(the SQLite database, its setup). Run it again with --replace-node to replace the machine, or deploy "
            "with the gridctl and options that made it")

    def _progress(self, event: ProgressEvent) -> None:
        if self.on_progress is not None:
            self.on_progress(event)

    def _say(self, message: str) -> None:
        from providers.stack import ProgressEvent

        self._progress(ProgressEvent("diagnostic", message, severity="info"))

    # --- plan and preview ---------------------------------------------------------------------------------

    def plan(self, spec: DeploymentSpec) -> list[DeclaredResource]:
        """The resources a deploy of ``spec`` declares, computed offline under Pulumi's mocks: no credentials,
        no Pulumi CLI, nothing written. Secret values are shown as ``[secret]``."""
        self.require(*spec.requested_features())
        if self.exists(spec.name):
            record = self.record(spec.name)
            state: Mapping[str, Any] = record.settings
            secrets = self._load_secrets(spec.name)
        else:
            state, secrets = self.new_state(spec), DeploymentSecrets.generate()
        if not spec.allow_cidr:
            spec.allow_cidr = [PLACEHOLDER_CIDR]
        plan_program: Callable[[CloudSettings], list[DeclaredResource]] = importlib.import_module(
            self.program_module).plan
        with tempfile.TemporaryDirectory(prefix="gridctl-build-") as work_dir:
            build = operator_build(Path(work_dir))
            settings = self._settings(spec, state, secrets, offline=True, build=build)
            return plan_program(settings)

    def preview(self, spec: DeploymentSpec) -> list[PlannedChange]:
        """What ``deploy(spec)`` would change, as Pulumi's preview of the stack sees it. Writes nothing but the
        runner's workspace (a new deployment's secrets are generated in memory and forgotten)."""
        self.require(*spec.requested_features())
        if self.exists(spec.name):
            record = self.record(spec.name)
            self._check_unchanged(record, spec)
            state: Mapping[str, Any] = record.settings
            secrets = self._load_secrets(spec.name)
        else:
            record, state, secrets = None, self.new_state(spec), DeploymentSecrets.generate()
        changes: list[PlannedChange] = []

        def collect(event: ProgressEvent) -> None:
            if event.kind == "step" and event.action and event.resource_type and event.resource_name:
                changes.append(PlannedChange(event.action, event.resource_type, event.resource_name))
            self._progress(event)

        with tempfile.TemporaryDirectory(prefix="gridctl-build-") as work_dir:
            settings = self._settings(spec, state, secrets, build=operator_build(Path(work_dir)))
            self._runner(settings, record, spec).preview(collect)
        return changes

    # --- deploy -------------------------------------------------------------------------------------------

    def _check_unchanged(self, record: DeploymentRecord, spec: DeploymentSpec) -> None:
        """Options that would move or rebuild every resource are refused on an existing deployment."""
        before = record.settings["spec"]
        for option, key in (("--region", "region"), ("--project", "project"), ("--backend-url", "backend_url"),
                            ("--secrets-provider", "secrets_provider")):
            if before.get(key) != getattr(spec, key):
                raise DeploymentConflict(
                    f"deployment {spec.name!r} was made with {option} {before.get(key)!r}; it cannot move to "
                    f"{getattr(spec, key)!r}: run 'gridctl destroy {self.name} --name {spec.name}' first")

    def deploy(self, spec: DeploymentSpec) -> DeployResult:
        self.require(*spec.requested_features())
        if not spec.allow_cidr:
            raise ProviderError("give the addresses the API may be reached from (--allow-cidr)", code="usage")
        state_dir = self.state_dir(spec.name)
        existing = self.exists(spec.name)
        if existing:
            record = self.record(spec.name)
            self._check_unchanged(record, spec)
            secrets = self._load_secrets(spec.name)
        else:
            if state_dir.exists() and any(state_dir.glob("*.json")):
                raise DeploymentConflict(f"{state_dir} holds files of another deployment; remove it first")
            record = DeploymentRecord(name=spec.name, provider=self.name, url="", created_at=utc_timestamp(),
                                      owner_email=spec.owner_email, settings=self.new_state(spec))
            secrets = DeploymentSecrets.generate()
        with tempfile.TemporaryDirectory(prefix="gridctl-build-") as work_dir:
            built, build = self._fresh_build(spec.name, Path(work_dir))
            settings = self._settings(spec, record.settings, secrets, build=build)
            if existing:
                self._check_node_replacement(record, settings, spec)
            runner = self._runner(settings, record, spec)  # refuses here, before anything is written, without Pulumi

            # Saved before the update: if it fails half-way, 'gridctl destroy' still knows the stack.
            make_private_dir(self.deployments_dir)
            make_private_dir(state_dir)
            self._keep_build(built, build)
        if not existing:
            self._save_secrets(spec.name, secrets)
        record.settings["spec"] = self._spec_state(spec)
        record.settings["build"] = build.as_record()
        record.settings["node_user_data_sha256"] = self.node_user_data_digest(settings)
        record.save(state_dir)

        outcome = runner.up(self._progress)
        self._remember_outputs(record, outcome)
        changed = any(count for action, count in outcome.changes.items() if action != "same")
        result = DeployResult(name=spec.name, provider=self.name, url=record.url,
                              state="created" if not existing else ("updated" if changed else "running"),
                              owner_email=record.owner_email, outputs=dict(outcome.outputs))
        if not record.settings.get("owner_created"):
            self._create_owner(result, spec, settings, outcome.outputs)
            record.owner_email = result.owner_email
            record.settings["owner_created"] = True
            record.save(state_dir)
            result.state = "created"
        if settings.network and not record.settings.get("network_owner_created"):
            try:
                self._create_network_owner(result, spec, settings, outcome.outputs)
            except GridctlError as exc:  # the Node's Owner (and its password, shown once) must still be reported
                result.outputs["network_setup"] = (f"the Network's Owner is not created yet: {exc.message}; run the "
                                                   "same deploy again to finish")
            else:
                record.settings["network_owner_created"] = True
                record.save(state_dir)
        elif not settings.network and record.settings.pop("network_owner_created", None):
            # The Network machine is gone (--no-network): a later --network boots a new one, with a new CA.
            (state_dir / NETWORK_TLS_ROOT_FILE).unlink(missing_ok=True)
            record.save(state_dir)
        tls_root = state_dir / TLS_ROOT_FILE
        if tls_root.exists():
            result.outputs["tls_root_certificate"] = str(tls_root)
        network_root = state_dir / NETWORK_TLS_ROOT_FILE
        if settings.network and network_root.exists():
            result.outputs["network_tls_root_certificate"] = str(network_root)
        return result

    def _remember_outputs(self, record: DeploymentRecord, outcome: StackOutcome) -> None:
        record.settings["outputs"] = dict(outcome.outputs)
        self.remember_outputs(record, outcome.outputs)
        record.url = str(outcome.outputs.get("url") or record.url)
        record.save(self.state_dir(record.name))

    def _create_owner(self, result: DeployResult, spec: DeploymentSpec, settings: CloudSettings,
                      outputs: Mapping[str, Any]) -> None:
        """Wait for the Node, pin its TLS root, create the Owner with the setup token, mint the CLI's token."""
        if settings.domain:
            address = outputs.get("node_public_ip") or "the Node's public address"
            self._say(f"create this DNS record now, if it does not exist yet: {dns_record(settings.domain, address)} "
                      f"(Caddy gets {settings.domain}'s certificate from Let's Encrypt once the name points there)")
        verify = self._trust(settings, outputs)
        self._say(f"waiting for the Node at {result.url} (its machine installs its software at first boot)...")
        try:
            wait_until_healthy(result.url, verify, timeout=START_TIMEOUT)
        except ProviderError as exc:
            raise ProviderError(exc.message + self.boot_log(settings, outputs)) from None
        password = spec.owner_password or generate_password()
        result.api_token = set_up_owner(result.url, verify=verify, setup_token=settings.secrets.setup_token,
                                        email=spec.owner_email, password=password)
        result.owner_email = spec.owner_email.strip().lower()
        result.owner_password = None if spec.owner_password else password
        result.owner_password_generated = spec.owner_password is None

    def _create_network_owner(self, result: DeployResult, spec: DeploymentSpec, settings: CloudSettings,
                              outputs: Mapping[str, Any]) -> None:
        """The same for the Network machine (--network): wait for it, pin its own CA's root, create its Owner
        (the Node's Owner's email) with the Network's setup token, mint a token for its context."""
        url = str(outputs.get("network_url") or "")
        if not url:
            raise ProviderError("the stack has no network_url output")
        verify = self._trust(settings, outputs, role="network")
        self._say(f"waiting for the Network at {url} (its machine installs its software at first boot)...")
        try:
            wait_until_healthy(url, verify, timeout=START_TIMEOUT)
        except ProviderError:
            raise ProviderError(
                f"the Network did not answer {url}/api/v1/health within {START_TIMEOUT:.0f}s") from None
        password = spec.owner_password or generate_password()
        result.network_api_token = set_up_owner(url, verify=verify, setup_token=settings.secrets.network_setup_token,
                                                email=spec.owner_email, password=password)
        result.network_owner_password = None if spec.owner_password else password

    def associate_network(self, name: str, *, node_token: str, network_token: str) -> str:
        """With --network: the deployment's Node joins its Network (the Node's ``POST /network/associations``
        as its Owner, ``node_token``) and the Network's Owner (``network_token``) approves the request, so that
        ``deploy --network`` ends with the two associated. Idempotent: an association already approved is left
        as it is. Never raises: returns a sentence for the deploy's report (what was done, or why not yet)."""
        try:
            record = self.record(name)
            outputs = record.settings.get("outputs") or {}
            network_url = str(outputs.get("network_url") or "")
            network_root = self.state_dir(name) / NETWORK_TLS_ROOT_FILE
            if not network_url or not network_root.exists():
                return "the Node is not associated with the Network yet: the Network is not set up; run the same " \
                       "deploy again to finish"
            node_root = self.state_dir(name) / TLS_ROOT_FILE
            domain = record.settings.get("spec", {}).get("domain")
            done = associate_with_network(
                node_url=record.url, node_verify=self._verify_for(name, record), node_token=node_token,
                network_url=network_url, network_verify=pinned_context(network_root), network_token=network_token,
                network_ca_pem=network_root.read_text(),
                # A Node with --domain has a certificate from a public CA: the Network needs no root for it.
                node_ca_pem=None if domain or not node_root.exists() else node_root.read_text())
        except GridctlError as exc:
            return (f"the Node is not associated with the Network yet: {exc.message}; run the same deploy again to "
                    "finish, or 'gridctl network join' by hand (docs/network.md)")
        if done.already:
            return (f"the Node is already associated with the Network (association {done.node_id} on the Node, "
                    f"{done.network_id} on the Network, approved): nothing to do")
        return (f"the Node joined the Network and the Network's Owner approved it (association {done.node_id} on "
                f"the Node, {done.network_id} on the Network)")

    def _trust(self, settings: CloudSettings, outputs: Mapping[str, Any],
               role: str = "node") -> ssl.SSLContext | bool:
        """How to verify the Node's certificate: the public CAs with a domain, else its own root, pinned. The
        Network's machine (``role`` "network") always has its own CA (--domain names the Node)."""
        if settings.domain and role == "node":
            return True
        path = self.state_dir(settings.name) / (NETWORK_TLS_ROOT_FILE if role == "network" else TLS_ROOT_FILE)
        machine = "Network" if role == "network" else "Node"
        if not path.exists():
            self._say(f"waiting for the {machine} to publish its TLS root certificate to the bucket...")
            deadline = time.monotonic() + START_TIMEOUT
            pem = self.fetch_root_certificate(settings, outputs, role)
            while pem is None:
                if time.monotonic() > deadline:
                    raise ProviderError(
                        f"the {machine} did not publish its TLS root certificate within {START_TIMEOUT:.0f}s; fix "
                        "what its console shows, then run the same deploy again"
                        + (self.boot_log(settings, outputs) if role == "node" else ""))
                time.sleep(POLL_SECONDS)
                pem = self.fetch_root_certificate(settings, outputs, role)
            write_state_file(path, pem.decode())
        return pinned_context(path)

    def boot_log(self, settings: CloudSettings, outputs: Mapping[str, Any]) -> str:
        """The tail of the Node machine's console, to append to an error (never raises: a failure says why)."""
        try:
            text = self.console_output(settings, outputs)
        except Exception as exc:  # noqa: BLE001  (any SDK error: the deploy's own error matters more)
            return f"\n(the Node's console output could not be read: {type(exc).__name__}: {exc})"
        if not text:
            return "\n(the Node's machine has no console output yet)"
        lines = text.rstrip().splitlines()[-BOOT_LOG_LINES:]
        return f"\nthe last {len(lines)} lines of the Node machine's console:\n" + "\n".join(lines)

    def _verify_for(self, name: str, record: DeploymentRecord) -> ssl.SSLContext | bool:
        path = self.state_dir(name) / TLS_ROOT_FILE
        if record.settings.get("spec", {}).get("domain") or not path.exists():
            return True
        return pinned_context(path)

    # --- the rest of the interface ------------------------------------------------------------------------

    def destroy(self, name: str, *, purge: bool = False) -> list[PlannedChange]:
        """Delete every cloud resource of the deployment (its bucket and database with their data), then its
        state directory. ``purge`` changes nothing more: a destroyed cloud deployment keeps nothing."""
        record = self.record(name)
        outcome = self._runner(self.settings(name), record).destroy(self._progress)
        deleted = sum(outcome.changes.values())
        shutil.rmtree(self.state_dir(name))
        return [PlannedChange("delete", "stack", name, f"{deleted} cloud resources deleted"),
                PlannedChange("delete", "directory", str(self.state_dir(name)), "secrets and state removed")]

    def status(self, name: str) -> DeploymentStatus:
        record = self.record(name)
        try:
            outputs = self._runner(self.settings(name), record).outputs()
        except ProviderError as exc:  # no Pulumi CLI here, or the backend unreachable: what was last recorded
            outputs = {**record.settings.get("outputs", {}), "note": f"last recorded outputs ({exc.message})"}
        url = str(outputs.get("url") or record.url)
        running = bool(outputs.get("url"))
        healthy = running and is_healthy(url, self._verify_for(name, record))
        build = self.recorded_build(record)
        version = f"{build.version} (wheel sha256 {build.wheel_sha256[:12]})" if build else None
        return DeploymentStatus(name=name, provider=self.name, url=url, running=running, healthy=healthy,
                                version=version,
                                processes=[{"role": "node", "pid": None, "alive": running,
                                            "address": outputs.get("node_public_ip")},
                                           {"role": "workers", "pid": None, "alive": running,
                                            "count": outputs.get("workers")},
                                           *([{"role": "network", "pid": None, "alive": running,
                                               "url": outputs["network_url"]}]
                                             if outputs.get("network_url") else [])],
                                outputs=dict(outputs))

    def scale_workers(self, name: str, count: int) -> DeploymentStatus:
        """Run the stack again with only the Worker count changed: only the Worker pool changes."""
        if count < 0:
            raise ProviderError("the Worker count must be 0 or more", code="usage")
        record = self.record(name)
        settings = self.settings(name).with_workers(count)
        # New Workers install the build the Node runs (kept in the state directory), not whatever this CLI is now.
        if settings.build is None or not settings.build.exists():
            raise ProviderError(f"the gridctl build deployment {name!r} runs is not in "
                                f"{self.state_dir(name) / BUILD_DIR} any more; run 'gridctl deploy {self.name} "
                                f"--name {name} --replace-node' to ship this CLI's build")
        outcome = self._runner(settings, record).up(self._progress)
        record.settings["spec"]["workers"] = count
        self._remember_outputs(record, outcome)
        outputs = dict(outcome.outputs)
        running = bool(outputs.get("url"))
        return DeploymentStatus(name=name, provider=self.name, url=record.url, running=running,
                                healthy=running and is_healthy(record.url, self._verify_for(name, record)),
                                processes=[{"role": "workers", "pid": None, "alive": running, "count": count}],
                                outputs=outputs)


def dns_record(domain: str, address: str) -> str:
    """The record that points ``domain`` at the Node, in zone-file form."""
    return f"{domain}. 300 IN A {address}"


# --- talking to the new Node over HTTPS ----------------------------------------------------------------------

def pinned_context(path: Path) -> ssl.SSLContext:
    """Trust exactly this root certificate (the Node's own CA), and nothing else."""
    context = ssl.create_default_context(cafile=None, capath=None, cadata=path.read_text())
    return context


def is_healthy(url: str, verify: ssl.SSLContext | bool, timeout: float = 5.0) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/api/v1/health", verify=verify, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_healthy(url: str, verify: ssl.SSLContext | bool, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not is_healthy(url, verify):
        if time.monotonic() > deadline:
            raise ProviderError(f"the Node did not answer {url}/api/v1/health within {timeout:.0f}s; fix what its "
                                "console shows, then run the same deploy again to finish")
        time.sleep(min(POLL_SECONDS, max(timeout / 10, 0.1)))


def set_up_owner(url: str, *, verify: ssl.SSLContext | bool, setup_token: str, email: str, password: str) -> str:
    """Create the Owner with the one-time setup token and return a named API token for the CLI's context."""
    import httpx

    from gridctl.sdk.errors import ConnectionFailed
    from gridctl.sdk.http import API_PREFIX, raise_for_error

    def call(client: httpx.Client, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = client.post(path, json=body)
        except httpx.TransportError as exc:
            raise ConnectionFailed(url, str(exc) or type(exc).__name__) from None
        raise_for_error(response)
        return response.json() if response.content else None

    with httpx.Client(base_url=url + API_PREFIX, verify=verify, timeout=30.0,
                      headers={"User-Agent": "gridctl"}) as client:
        call(client, "/setup", {"setup_token": setup_token, "email": email, "password": password})
        session = call(client, "/auth/login", {"email": email, "password": password})
        client.headers["Authorization"] = f"Bearer {session['token']}"
        created = call(client, "/tokens", {"name": CLI_TOKEN_NAME})
        call(client, "/auth/logout")  # the session was only needed to mint the named token
    return str(created["token"])


@dataclass(frozen=True)
class Association:
    """A Node's association with a Network, as both sides see it once approved."""

    node_id: int  # the association's id on the Node
    network_id: int  # and on the Network (the Node's ``remote_id``)
    already: bool  # it was approved before this call: nothing was done


def associate_with_network(*, node_url: str, node_verify: ssl.SSLContext | bool, node_token: str, network_url: str,
                           network_verify: ssl.SSLContext | bool, network_token: str, network_ca_pem: str | None,
                           node_ca_pem: str | None) -> Association:
    """Join the Node at ``node_url`` to the Network at ``network_url`` and approve it there.

    As the Node's administrator: the Node's associations are listed and its latest with this Network is taken up
    again (approved on both sides: nothing to do, so a second run changes nothing; pending: approved below; denied
    or ended: a decision left as it is, raised as ``Conflict``, as is an approval the Network does not know); else
    ``POST /network/associations`` with the Network's URL, the Node's own URL and the roots each side pins of the
    other (``network_ca_pem``: the Network's own CA, which the operator's CLI pinned; ``node_ca_pem``: the Node's,
    when it has no public certificate; sent only to an https URL). As the Network's administrator: the request
    (the Node's ``remote_id``) is approved if pending. The Node then asks the Network for its state
    (``POST /network/associations/{id}/sync``), so both say approved.
    Raises the SDK's typed errors (``GridctlError``)."""
    import httpx

    from gridctl.sdk.errors import Conflict, ConnectionFailed
    from gridctl.sdk.http import API_PREFIX, raise_for_error

    def call(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = client.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ConnectionFailed(str(client.base_url), str(exc) or type(exc).__name__) from None
        raise_for_error(response)
        return response.json() if response.content else None

    def client(url: str, verify: ssl.SSLContext | bool, token: str) -> httpx.Client:
        return httpx.Client(base_url=url + API_PREFIX, verify=verify, timeout=60.0,
                            headers={"User-Agent": "gridctl", "Authorization": f"Bearer {token}"})

    wanted = network_url.rstrip("/")
    with client(node_url, node_verify, node_token) as node, client(network_url, network_verify, network_token) as net:
        with_it = [a for a in call(node, "GET", "/network/associations")
                   if str(a["network_url"]).rstrip("/") == wanted]
        latest = with_it[-1] if with_it else None
        if latest is not None and latest["state"] == "approved":
            remote = {int(a["id"]): a for a in call(net, "GET", "/associations")}.get(int(latest["remote_id"]))
            if remote is None or remote["state"] != "approved":  # e.g. a Network machine made anew at that URL
                raise Conflict("conflict", f"the Node's association {latest['id']} says approved, but the Network "
                               f"{'has no such association' if remote is None else 'says ' + remote['state']}: "
                               f"end it on the Node ('gridctl network leave {latest['id']}') and deploy again")
            return Association(node_id=int(latest["id"]), network_id=int(latest["remote_id"]), already=True)
        if latest is not None and latest["state"] != "pending":  # a decision someone made: never undone here
            raise Conflict("conflict", f"the Node's association {latest['id']} with this Network is "
                           f"{latest['state']}; join again by hand if it should be ('gridctl network join "
                           f"{network_url}')")
        if latest is not None:
            joined = latest
        else:
            body: dict[str, Any] = {"network_url": network_url, "node_url": node_url}
            if network_ca_pem and network_url.startswith("https://"):
                body["network_ca_pem"] = network_ca_pem
            if node_ca_pem and node_url.startswith("https://"):
                body["node_ca_pem"] = node_ca_pem
            joined = call(node, "POST", "/network/associations", body)
        remote_id = int(joined["remote_id"])
        if joined["state"] != "approved":
            on_network = {int(a["id"]): a for a in call(net, "GET", "/associations")}
            request = on_network.get(remote_id)
            if request is None:
                raise Conflict("conflict", f"the Network has no association {remote_id}, which the Node's "
                               f"association {joined['id']} names")
            if request["state"] == "pending":
                call(net, "POST", f"/associations/{remote_id}/approve",
                     {"note": "approved by gridctl deploy: this deployment's own Node"})
            elif request["state"] != "approved":
                raise Conflict("conflict", f"the Network's association {remote_id} is {request['state']}: end it "
                               f"on the Node ('gridctl network leave {joined['id']}') and deploy again")
        synced = call(node, "POST", f"/network/associations/{joined['id']}/sync")
        state = synced["association"]["state"]
        if state != "approved":
            raise Conflict("conflict", f"the Network approved association {remote_id} but the Node's says {state}")
    return Association(node_id=int(joined["id"]), network_id=remote_id, already=False)
