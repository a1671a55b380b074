"""`gridctl deploy aws|gcp|azure`, `gridctl workers scale`, `gridctl status`, `gridctl destroy aws|gcp|azure` and
`gridctl check`, driven through a fake StackRunner.

The fake replaces ``providers.cloud_provider.make_runner`` (the one seam between providers and Pulumi) and
records what the real runner would have been asked: the project, stack, backend, stack config, the program, and
each operation. The program is the real inline Pulumi program: tests read the settings it was built from, and
run it under Pulumi's mocks to compare what it declares. The Owner's creation is faked except in one test,
where it runs for real against a Node served over TLS on loopback (tests/test_providers.py's fixture).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from providers import cloud_provider
from providers.aws.provider import AwsProvider
from providers.azure.provider import AzureProvider
from providers.cloud import CloudSettings
from providers.gcp.provider import GcpProvider
from providers.stack import DeclaredResource, ProgressEvent, StackOutcome, plan
from tests.clitools import Gridctl
from tests.cloud_checks import fake_build, text
from tests.test_providers import cloudless_home, install_fake_pulumi, tls_node_fixture  # noqa: F401  (a fixture)

OPERATOR = "203.0.113.7/32"
CLOUDS = ("aws", "gcp", "azure")
PROVIDER_CLASSES = {"aws": AwsProvider, "gcp": GcpProvider, "azure": AzureProvider}
_real_make_runner = cloud_provider.make_runner
_real_wait = cloud_provider.wait_until_healthy
_real_associate = cloud_provider.associate_with_network


# --- the fake runner ---------------------------------------------------------------------------------------

@dataclass
class FakeRunner:
    """Same interface as providers.stack.StackRunner; ``backend`` plays the stack's state."""

    backend: FakeBackend
    project: str
    stack: str
    state_dir: Path
    program: Callable[[], None]
    backend_url: str | None
    config: dict[str, str]
    secrets_provider: str | None = None

    @property
    def settings(self) -> CloudSettings:
        """The settings the program was built from (``build(settings)`` closes over them)."""
        cells = [cell.cell_contents for cell in self.program.__closure__ or ()]
        return next(value for value in cells if isinstance(value, CloudSettings))

    def _record(self, operation: str) -> None:
        self.backend.calls.append((operation, self))

    def preview(self, on_progress: Any = None) -> StackOutcome:
        self._record("preview")
        for kind in ("vpc", "bucket"):
            on_progress(ProgressEvent("step", f"create {kind}", action="create", resource_type=f"fake:{kind}",
                                      resource_name=f"{self.stack}-{kind}"))
        return StackOutcome("preview", changes={"create": 2})

    def up(self, on_progress: Any = None) -> StackOutcome:
        self._record("up")
        if on_progress:
            on_progress(ProgressEvent("step", "create", action="create", resource_type="fake:vpc",
                                      resource_name=f"{self.stack}-vpc"))
        existed = self.stack in self.backend.stacks
        outputs = {"url": self.backend.url, "node_public_ip": "192.0.2.10", "bucket": f"bucket-{self.stack}",
                   "workers": self.settings.workers, "region": self.settings.region}
        if self.settings.network:  # as the programs export it
            outputs["network_url"] = self.backend.network_url
        self.backend.stacks[self.stack] = outputs
        return StackOutcome("up", changes={"update" if existed else "create": 1}, outputs=dict(outputs))

    def destroy(self, on_progress: Any = None, *, remove_stack: bool = True) -> StackOutcome:
        self._record("destroy")
        self.backend.stacks.pop(self.stack, None)
        return StackOutcome("destroy", changes={"delete": 46})

    def outputs(self) -> dict[str, Any]:
        self._record("outputs")
        return dict(self.backend.stacks.get(self.stack, {}))


@dataclass
class FakeBackend:
    url: str = "https://192.0.2.10"
    network_url: str = "https://192.0.2.11"
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, FakeRunner]] = field(default_factory=list)

    associations: list[dict[str, Any]] = field(default_factory=list)

    def make_runner(self, **kwargs: Any) -> FakeRunner:
        return FakeRunner(backend=self, **kwargs)

    def associate(self, **kwargs: Any) -> cloud_provider.Association:
        self.associations.append(kwargs)
        return cloud_provider.Association(node_id=1, network_id=1, already=len(self.associations) > 1)

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]

    def last(self, operation: str) -> FakeRunner:
        return next(runner for op, runner in reversed(self.calls) if op == operation)


def fixed_build(out_dir: Path) -> Any:
    """providers.build.operator_build's stand-in: the fixed files of tests/cloud_checks.py, copied to ``out_dir``."""
    import shutil
    from dataclasses import replace

    out_dir.mkdir(parents=True, exist_ok=True)
    build = fake_build()
    wheel = shutil.copy(build.wheel_path, out_dir / Path(build.wheel_path).name)
    constraints = shutil.copy(build.constraints_path, out_dir / "constraints.txt")
    return replace(build, wheel_path=str(wheel), constraints_path=str(constraints))


@dataclass
class OwnerSetups:
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, url: str, **kwargs: Any) -> str:
        self.calls.append({"url": url, **kwargs})
        return f"gtok_fake_{len(self.calls)}"


@pytest.fixture
def ca_pem(tmp_path: Path) -> bytes:
    from tests.test_providers import make_ca

    path, _, _ = make_ca(tmp_path, "fake-node-root")
    return path.read_bytes()


@pytest.fixture
def network_ca_pem(tmp_path: Path) -> bytes:
    from tests.test_providers import make_ca

    path, _, _ = make_ca(tmp_path, "fake-network-root")
    return path.read_bytes()


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An operator's machine: no cloud variables, an empty HOME; GRIDCTL_HOME inside it."""
    home = cloudless_home(tmp_path, monkeypatch)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-project")
    return home


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, machine: Path, ca_pem: bytes, network_ca_pem: bytes) -> FakeBackend:
    fake = FakeBackend()
    monkeypatch.setattr(cloud_provider, "make_runner", fake.make_runner)
    monkeypatch.setattr(cloud_provider, "require_pulumi", lambda: None)
    # The tree under test changes while tests run: a fixed build keeps one deployment's build one build.
    monkeypatch.setattr(cloud_provider, "operator_build", fixed_build)
    monkeypatch.setattr(cloud_provider, "wait_until_healthy", lambda url, verify, timeout: None)
    monkeypatch.setattr(cloud_provider, "is_healthy", lambda url, verify, timeout=5.0: True)
    roots = {"node": ca_pem, "network": network_ca_pem}
    for provider_class in PROVIDER_CLASSES.values():
        monkeypatch.setattr(provider_class, "fetch_root_certificate",
                            lambda self, settings, outputs, role="node": roots[role])
    monkeypatch.setattr(cloud_provider, "operator_cidr", lambda timeout=10.0: OPERATOR)
    # The fake stack's addresses lead nowhere: the join is recorded here, and made for real in
    # TestTheNodeJoinsItsNetwork against a live Node and a live Network.
    monkeypatch.setattr(cloud_provider, "associate_with_network", fake.associate)
    return fake


@pytest.fixture
def owner_setups(monkeypatch: pytest.MonkeyPatch) -> OwnerSetups:
    fake = OwnerSetups()
    monkeypatch.setattr(cloud_provider, "set_up_owner", fake)
    return fake


@pytest.fixture
def gridctl(machine: Path) -> Gridctl:
    return Gridctl(home=machine / "gridctl")


def network_never_answers(backend: FakeBackend) -> Callable[[str, Any, float], None]:
    """A ``wait_until_healthy`` under which the Node answers and the Network machine never does."""
    from providers.base import ProviderError

    def node_only(url: str, verify: Any, timeout: float) -> None:
        if url == backend.network_url:
            raise ProviderError("the Network did not answer")

    return node_only


def contexts(gridctl: Gridctl) -> dict[str, Any]:
    path = gridctl.home / "contexts.yaml"
    return yaml.safe_load(path.read_text()) if path.exists() else {"contexts": {}, "current": None}


def state_dir(gridctl: Gridctl, name: str = "demo") -> Path:
    return gridctl.home / "deployments" / name


def deploy(gridctl: Gridctl, cloud: str, *args: str) -> Any:
    return gridctl.json("deploy", cloud, "--name", "demo", "--yes", *args)


def declared(cloud: str, runner: FakeRunner) -> list[DeclaredResource]:
    """What the program handed to the runner declares, under Pulumi's mocks (as the real runner would run it)."""
    module = importlib.import_module(f"providers.{cloud}.program")
    settings = runner.settings
    computed = module.offline_outputs(settings) if cloud == "gcp" else module.offline_outputs
    return plan(runner.program, project=runner.project, stack=runner.stack, calls=module.offline_calls(settings),
                computed=computed, redact=False)


# --- deploy ------------------------------------------------------------------------------------------------

class TestDeploy:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_runs_the_clouds_program_on_a_stack_named_after_the_deployment(
        self, cloud: str, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        region = {"aws": "us-east-2", "gcp": "us-central1", "azure": "eastus"}[cloud]
        deploy(gridctl, cloud, "--region", region, "--workers", "3", "--allow-cidr", OPERATOR)
        assert backend.operations() == ["up"]
        runner = backend.last("up")
        assert (runner.project, runner.stack, runner.state_dir) == ("gridctl", "demo", state_dir(gridctl))
        assert runner.backend_url is None  # the file backend under the state dir (StackRunner's default)
        settings = runner.settings
        assert (settings.name, settings.region, settings.workers, settings.allow_cidrs) == (
            "demo", region, 3, (OPERATOR,))
        assert runner.program.__qualname__ == "build.<locals>.program"
        assert runner.program.__module__ == f"providers.{cloud}.program"
        expected_config = {
            "aws": {"aws:region": "us-east-2"},
            "gcp": {"gcp:project": "demo-project", "gcp:region": "us-central1"},
            "azure": {"azure-native:location": "eastus"},
        }[cloud]
        assert runner.config == expected_config

    def test_defaults_are_secure_and_cheap(self, gridctl: Gridctl, backend: FakeBackend,
                                           owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "aws")
        settings = backend.last("up").settings
        assert settings.allow_cidrs == (OPERATOR,)  # this machine's address only
        assert (settings.ssh_cidrs, settings.ssh_public_key, settings.workers) == ((), None, 0)
        assert (settings.managed_database, settings.network, settings.region) == (False, False, "eu-west-1")

    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_network_sets_up_the_networks_owner_over_its_pinned_ca_and_saves_its_context(
        self, cloud: str, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        result = deploy(gridctl, cloud, "--network", "--owner-email", "Admin@Example.org")
        settings = backend.last("up").settings
        assert settings.network
        node_setup, network_setup = owner_setups.calls
        assert node_setup["setup_token"] == settings.secrets.setup_token
        assert network_setup["url"] == "https://192.0.2.11" and network_setup["email"] == "Admin@Example.org"
        assert network_setup["setup_token"] == settings.secrets.network_setup_token != settings.secrets.setup_token
        # pinned to the Network's own root, not the Node's
        assert network_setup["verify"].get_ca_certs()[0]["subject"] == ((("commonName", "fake-network-root"),),)
        assert result["network_owner_password"] == network_setup["password"] != result["owner_password"]
        network_root = state_dir(gridctl) / "network-tls-root.crt"
        assert (result["network_url"], result["network_context"], result["network_tls_root_certificate"]) == (
            "https://192.0.2.11", "demo-network", str(network_root))
        assert network_root.read_text().startswith("-----BEGIN CERTIFICATE-----")
        saved = contexts(gridctl)
        assert saved["current"] == "demo"  # the Node's context stays current
        assert saved["contexts"]["demo-network"] == {"url": "https://192.0.2.11", "token": "gtok_fake_2",
                                                     "email": "admin@example.org", "deployment": cloud,
                                                     "ca_file": str(network_root)}
        # ... and the Node joins the Network with its Owner's token, the Network's Owner approving it; the join
        # carries the Network's pinned root and the Node's own (it has no --domain)
        [join] = backend.associations
        assert (join["node_url"], join["node_token"], join["network_url"], join["network_token"]) == (
            "https://192.0.2.10", "gtok_fake_1", "https://192.0.2.11", "gtok_fake_2")
        assert join["network_ca_pem"] == network_root.read_text()
        assert join["node_ca_pem"] == (state_dir(gridctl) / "tls-root.crt").read_text() != join["network_ca_pem"]
        assert join["network_verify"].get_ca_certs()[0]["subject"] == ((("commonName", "fake-network-root"),),)
        assert "joined the Network" in result["network_association"]
        # a redeploy sets up neither Owner again; the association, already approved, is left as it is
        again = deploy(gridctl, cloud, "--network")
        assert len(owner_setups.calls) == 2 and "network_owner_password" not in again
        assert again["network_context"] == "demo-network"
        assert "already associated" in again["network_association"] and "nothing to do" in again["network_association"]

    def test_a_node_with_a_domain_sends_no_root_of_its_own(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, "gcp", "--network", "--domain", "grid.example.org")
        [join] = backend.associations
        assert join["node_ca_pem"] is None and join["node_verify"] is True  # a public CA's certificate
        assert join["network_ca_pem"] == (state_dir(gridctl) / "network-tls-root.crt").read_text()

    def test_a_network_whose_owner_is_not_set_up_is_not_joined_and_the_deploy_says_so(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cloud_provider, "wait_until_healthy", network_never_answers(backend))
        result = deploy(gridctl, "aws", "--network")
        assert backend.associations == []
        assert "not associated with the Network yet" in result["network_association"]
        monkeypatch.setattr(cloud_provider, "wait_until_healthy", lambda url, verify, timeout: None)
        again = deploy(gridctl, "aws")
        assert len(backend.associations) == 1 and "joined the Network" in again["network_association"]

    def test_without_network_nothing_of_it_is_reported(self, gridctl: Gridctl, backend: FakeBackend,
                                                       owner_setups: OwnerSetups) -> None:
        result = deploy(gridctl, "aws")
        assert len(owner_setups.calls) == 1 and backend.associations == []
        assert not {"network_url", "network_context", "network_owner_password", "network_association"} & set(result)
        assert "demo-network" not in contexts(gridctl)["contexts"]

    def test_a_network_that_fails_to_start_keeps_the_nodes_owner_and_is_finished_by_the_next_deploy(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(cloud_provider, "wait_until_healthy", network_never_answers(backend))
        result = deploy(gridctl, "gcp", "--network")
        assert [call["url"] for call in owner_setups.calls] == ["https://192.0.2.10"]
        assert result["owner_password"] and result["context"] == "demo"  # the Node's password is still shown
        assert "the Network's Owner is not created yet" in result["network_setup"]
        assert "run the same deploy again" in result["network_setup"] and result["network_context"] is None
        monkeypatch.setattr(cloud_provider, "wait_until_healthy", lambda url, verify, timeout: None)
        again = deploy(gridctl, "gcp")  # --network is remembered
        assert [call["url"] for call in owner_setups.calls] == ["https://192.0.2.10", "https://192.0.2.11"]
        assert again["network_context"] == "demo-network" and again["network_owner_password"]
        assert "owner_password" not in again

    def test_a_network_removed_then_added_again_gets_its_new_owner_and_root(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, "aws", "--network")
        network_root = state_dir(gridctl) / "network-tls-root.crt"
        assert network_root.exists()
        removed = deploy(gridctl, "aws", "--no-network")
        assert not backend.last("up").settings.network and not network_root.exists()
        assert "network_url" not in removed
        deploy(gridctl, "aws", "--network")  # a new machine: a new database, a new CA
        assert [call["url"] for call in owner_setups.calls] == [
            "https://192.0.2.10", "https://192.0.2.11", "https://192.0.2.11"]
        assert network_root.exists()

    def test_status_shows_the_networks_url(self, gridctl: Gridctl, backend: FakeBackend,
                                           owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "azure", "--network")
        [row] = gridctl.json("status")["deployments"]
        assert (row["url"], row["network_url"]) == ("https://192.0.2.10", "https://192.0.2.11")
        table = gridctl("status")
        assert table.exit_code == 0 and "https://192.0.2.11" in table.stdout

    def test_passes_every_option_to_the_program(self, gridctl: Gridctl, backend: FakeBackend,
                                                owner_setups: OwnerSetups, tmp_path: Path) -> None:
        key = tmp_path / "id.pub"
        key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator operator@laptop\n")
        deploy(gridctl, "aws", "--instance-type", "m6i.large", "--worker-instance-type", "g5.xlarge",
               "--database", "managed", "--allow-cidr", f"{OPERATOR},198.51.100.0/24",
               "--ssh-cidr", "198.51.100.0/24", "--ssh-key", str(key), "--domain", "grid.example.org",
               "--backend-url", "s3://operator-state", "--workers", "2")
        runner = backend.last("up")
        settings = runner.settings
        assert (settings.node_instance_type, settings.worker_instance_type) == ("m6i.large", "g5.xlarge")
        assert settings.managed_database and settings.domain == "grid.example.org"
        assert settings.allow_cidrs == (OPERATOR, "198.51.100.0/24")
        assert settings.ssh_cidrs == ("198.51.100.0/24",)
        assert settings.ssh_public_key == "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator operator@laptop"
        assert runner.backend_url == "s3://operator-state"

    def test_creates_the_owner_with_the_generated_setup_token_and_saves_a_context(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        result = deploy(gridctl, "aws", "--owner-email", "Admin@Example.org")
        settings = backend.last("up").settings
        [setup] = owner_setups.calls
        assert setup["url"] == "https://192.0.2.10" and setup["email"] == "Admin@Example.org"
        assert setup["setup_token"] == settings.secrets.setup_token and setup["setup_token"].startswith("gsetup_")
        assert setup["verify"].get_ca_certs()[0]["subject"] == ((("commonName", "fake-node-root"),),)  # pinned
        assert result["owner_password"] == setup["password"] and len(result["owner_password"]) >= 20
        assert (result["state"], result["url"], result["context"]) == ("created", "https://192.0.2.10", "demo")
        saved = contexts(gridctl)
        assert saved["current"] == "demo"
        assert saved["contexts"]["demo"] == {"url": "https://192.0.2.10", "token": "gtok_fake_1",
                                             "email": "admin@example.org", "deployment": "aws",
                                             "ca_file": str(state_dir(gridctl) / "tls-root.crt")}
        assert (state_dir(gridctl) / "tls-root.crt").read_text().startswith("-----BEGIN CERTIFICATE-----")

    def test_keeps_secrets_owner_only_and_out_of_the_record(self, gridctl: Gridctl, backend: FakeBackend,
                                                            owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "gcp", "--owner-password", "the owners password")
        settings = backend.last("up").settings
        secrets_file = state_dir(gridctl) / "secrets.json"
        assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
        assert oct(state_dir(gridctl).stat().st_mode & 0o777) == "0o700"
        assert json.loads(secrets_file.read_text())["ray_token"] == settings.secrets.ray_token
        record = (state_dir(gridctl) / "deployment.json").read_text()
        for secret in settings.secrets.values():
            assert secret not in record
        assert "the owners password" not in record

    def test_a_redeploy_keeps_suffix_secrets_and_options_and_does_not_set_up_the_owner_again(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, "azure", "--workers", "2", "--database", "managed")
        first = backend.last("up").settings
        result = deploy(gridctl, "azure", "--allow-cidr", "198.51.100.0/24")
        second = backend.last("up").settings
        assert (second.suffix, second.secrets, second.admin_public_key) == (
            first.suffix, first.secrets, first.admin_public_key)
        assert (second.workers, second.managed_database, second.allow_cidrs) == (2, True, ("198.51.100.0/24",))
        assert len(owner_setups.calls) == 1 and result["state"] == "updated"
        assert "owner_password" not in result
        assert contexts(gridctl)["contexts"]["demo"]["token"] == "gtok_fake_1"

    def test_a_redeploy_cannot_move_the_deployment_to_another_region(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, "aws", "--region", "eu-west-1")
        result = gridctl("deploy", "aws", "--name", "demo", "--region", "us-east-1", "--yes")
        assert result.exit_code == 6 and "cannot move" in result.stderr and "gridctl destroy aws" in result.stderr
        assert backend.operations() == ["up"]

    def test_without_yes_it_previews_asks_and_applies_on_yes(self, gridctl: Gridctl, backend: FakeBackend,
                                                             owner_setups: OwnerSetups) -> None:
        result = gridctl("deploy", "aws", "--name", "demo", input="y\n")
        assert result.exit_code == 0, result.stderr
        assert backend.operations() == ["preview", "up"]
        assert "demo-vpc" in result.stdout and "cost money" in result.stderr

    def test_without_yes_a_no_changes_nothing(self, gridctl: Gridctl, backend: FakeBackend,
                                              owner_setups: OwnerSetups) -> None:
        result = gridctl("deploy", "aws", "--name", "demo", input="n\n")
        assert result.exit_code == 1 and "cancelled" in result.stderr
        assert backend.operations() == ["preview"] and not (state_dir(gridctl) / "deployment.json").exists()

    def test_a_name_taken_by_a_local_deployment_is_a_conflict(self, gridctl: Gridctl, backend: FakeBackend,
                                                              owner_setups: OwnerSetups) -> None:
        directory = state_dir(gridctl)
        directory.mkdir(parents=True)
        (directory / "deployment.json").write_text(json.dumps({
            "name": "demo", "provider": "local", "url": "http://127.0.0.1:1", "created_at": "now",
            "owner_email": "o@example.org", "settings": {"port": 1}}))
        result = gridctl("deploy", "gcp", "--name", "demo", "--yes")
        assert result.exit_code == 6 and "belongs to provider 'local'" in result.stderr
        assert backend.calls == []

    def test_shows_progress_on_stderr_and_keeps_stdout_json(self, gridctl: Gridctl, backend: FakeBackend,
                                                            owner_setups: OwnerSetups) -> None:
        result = gridctl("deploy", "aws", "--name", "demo", "--yes", "--output", "json")
        assert "create fake:vpc demo-vpc" in result.stderr
        assert json.loads(result.stdout)["name"] == "demo"

    def test_a_private_key_is_refused_as_ssh_key(self, gridctl: Gridctl, backend: FakeBackend,
                                                 tmp_path: Path) -> None:
        key = tmp_path / "id"
        key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n")
        result = gridctl("deploy", "aws", "--name", "demo", "--ssh-key", str(key), "--ssh-cidr", OPERATOR, "--yes")
        assert result.exit_code == 2 and "private key" in result.stderr and backend.calls == []


class TestDeployWithoutPulumi:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_says_how_to_install_it_and_writes_nothing(self, cloud: str, gridctl: Gridctl, machine: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(cloud_provider, "operator_cidr", lambda timeout=10.0: OPERATOR)
        monkeypatch.setenv("PATH", str(machine / "bin"))  # the real make_runner, and no pulumi on PATH
        for args in ([], ["--yes"], ["--preview"]):
            result = gridctl("deploy", cloud, "--name", "demo", *args)
            assert result.exit_code == 1, result.stderr
            assert "the Pulumi CLI is not installed" in result.stderr and "get.pulumi.com" in result.stderr
        assert not state_dir(gridctl).exists()


class TestPreview:
    def test_lists_the_changes_and_changes_nothing(self, gridctl: Gridctl, backend: FakeBackend) -> None:
        rows = gridctl.json("deploy", "gcp", "--name", "demo", "--preview", "--workers", "2")
        assert rows == [{"action": "create", "type": "fake:vpc", "name": "demo-vpc"},
                        {"action": "create", "type": "fake:bucket", "name": "demo-bucket"}]
        assert backend.operations() == ["preview"]
        assert backend.last("preview").settings.workers == 2
        assert not (state_dir(gridctl) / "deployment.json").exists() and contexts(gridctl)["contexts"] == {}

    def test_of_an_existing_deployment_uses_its_secrets_and_suffix(self, gridctl: Gridctl, backend: FakeBackend,
                                                                    owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "aws")
        gridctl.json("deploy", "aws", "--name", "demo", "--preview", "--workers", "5")
        up, preview = backend.last("up").settings, backend.last("preview").settings
        assert (preview.suffix, preview.secrets, preview.workers) == (up.suffix, up.secrets, 5)


# --- --plan ------------------------------------------------------------------------------------------------

EXPECTED_IN_PLAN = {
    "aws": {("aws:ec2/vpc:Vpc", "demo-net-vpc"), ("aws:ec2/instance:Instance", "demo-node-instance"),
            ("aws:autoscaling/group:Group", "demo-workers-group"), ("aws:s3/bucket:Bucket", "demo-storage-bucket")},
    "gcp": {("gcp:compute/network:Network", "demo-net-vpc"), ("gcp:compute/instance:Instance", "demo-node-instance"),
            ("gcp:compute/instanceGroupManager:InstanceGroupManager", "demo-workers-group"),
            ("gcp:storage/bucket:Bucket", "demo-storage-bucket")},
    "azure": {("azure-native:network:VirtualNetwork", "demo-net-vnet"),
              ("azure-native:compute:VirtualMachine", "demo-node-vm"),
              ("azure-native:compute:VirtualMachineScaleSet", "demo-workers-vmss"),
              ("azure-native:storage:StorageAccount", "demo-storage-account")},
}


class TestPlan:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_prints_the_declared_resources_offline(self, cloud: str, gridctl: Gridctl, machine: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        def no_network(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("a plan must stay offline")

        monkeypatch.setattr(cloud_provider, "make_runner", no_network)
        monkeypatch.setattr(cloud_provider, "operator_cidr", no_network)
        monkeypatch.setattr(httpx, "get", no_network)
        monkeypatch.setenv("PATH", str(machine / "bin"))  # no Pulumi CLI, no credentials
        resources = gridctl.json("deploy", cloud, "--name", "demo", "--plan", "--workers", "2")
        declared_names = {(r["type"], r["name"]) for r in resources}
        assert EXPECTED_IN_PLAN[cloud] <= declared_names
        components = {r["component"] for r in resources}
        assert {"demo-net", "demo-node", "demo-workers", "demo-storage", "demo-secrets"} <= components
        assert "[secret]" in json.dumps(resources)  # the setup and Ray tokens are redacted
        assert "gsetup_" not in json.dumps(resources)
        assert "192.0.2.1/32" in json.dumps(resources)  # the placeholder for the operator's address
        assert not state_dir(gridctl).exists()  # nothing written

    def test_the_table_names_each_resource_and_its_component(self, gridctl: Gridctl, machine: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PATH", str(machine / "bin"))
        result = gridctl("deploy", "aws", "--name", "demo", "--plan", "--allow-cidr", OPERATOR)
        assert result.exit_code == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if "demo-workers-group" in line]
        assert lines and "demo-workers" in lines[0] and "aws:autoscaling/group:Group" in lines[0]
        assert "resources in" in result.stderr and "[secret]" in result.stderr
        assert "stand-in for your address" not in result.stderr


# --- scale, status, destroy --------------------------------------------------------------------------------

class TestScale:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_changes_only_the_worker_count_and_only_the_worker_pool(
        self, cloud: str, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, cloud, "--workers", "1", "--database", "managed")
        before = backend.last("up")
        result = gridctl.json("workers", "scale", "3", "--name", "demo")
        after = backend.last("up")
        assert backend.operations() == ["up", "up"] and after is not before
        assert after.settings == before.settings.with_workers(3)  # nothing else in the settings moved
        assert (after.stack, after.config, after.backend_url) == (before.stack, before.config, before.backend_url)
        assert (result["workers"], result["previous_workers"]) == (3, 1)
        assert len(owner_setups.calls) == 1  # scaling never touches the Owner

        old, new = declared(cloud, before), declared(cloud, after)
        changed = {(r.type, r.name, r.parent) for r in new} ^ {(r.type, r.name, r.parent) for r in old}
        changed |= {(r.type, r.name, r.parent) for r in new for o in old
                    if (o.type, o.name) == (r.type, r.name) and text(o) != text(r)}
        assert changed and {parent for _, _, parent in changed} == {"demo-workers"}

    def test_is_remembered_by_the_next_deploy(self, gridctl: Gridctl, backend: FakeBackend,
                                              owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "aws", "--workers", "1")
        gridctl.json("workers", "scale", "4", "--name", "demo")
        deploy(gridctl, "aws", "--allow-cidr", "198.51.100.0/24")
        assert backend.last("up").settings.workers == 4

    def test_an_unknown_deployment_is_not_found(self, gridctl: Gridctl, backend: FakeBackend) -> None:
        result = gridctl("workers", "scale", "2", "--name", "ghost")
        assert result.exit_code == 5 and "no deployment named 'ghost'" in result.stderr


class TestStatus:
    def test_reads_the_stacks_outputs_and_probes_the_node(self, gridctl: Gridctl, backend: FakeBackend,
                                                          owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "gcp", "--workers", "2")
        status = gridctl.json("status", "demo")
        [row] = status["deployments"]
        assert row["provider"] == "gcp" and row["url"] == "https://192.0.2.10"
        assert row["running"] is True and row["healthy"] is True and row["note"] is None
        assert backend.operations()[-1] == "outputs" and backend.last("outputs").stack == "demo"
        assert status["current_context"]["name"] == "demo"

    def test_an_unhealthy_node_is_reported(self, gridctl: Gridctl, backend: FakeBackend,
                                           owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch) -> None:
        deploy(gridctl, "aws")
        monkeypatch.setattr(cloud_provider, "is_healthy", lambda url, verify, timeout=5.0: False)
        [row] = gridctl.json("status", "demo")["deployments"]
        assert (row["running"], row["healthy"]) == (True, False)

    def test_without_pulumi_shows_the_last_recorded_outputs(self, gridctl: Gridctl, backend: FakeBackend,
                                                            owner_setups: OwnerSetups, machine: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
        deploy(gridctl, "aws")
        monkeypatch.setattr(cloud_provider, "make_runner", _real_make_runner)
        monkeypatch.setenv("PATH", str(machine / "bin"))
        provider = AwsProvider(gridctl.home / "deployments")
        status = provider.status("demo")
        assert status.running and status.url == "https://192.0.2.10"
        assert "last recorded outputs" in status.outputs["note"] and "Pulumi CLI" in status.outputs["note"]



class TestDestroy:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_destroys_the_stack_then_forgets_the_deployment_and_its_context(
        self, cloud: str, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, cloud)
        result = gridctl.json("destroy", cloud, "--name", "demo", "--yes")
        runner = backend.last("destroy")
        assert backend.operations() == ["up", "destroy"]
        assert (runner.stack, runner.state_dir, runner.config) == ("demo", state_dir(gridctl),
                                                                    backend.last("up").config)
        assert runner.settings == backend.last("up").settings
        assert result["destroyed"] and result["context_removed"]
        assert not state_dir(gridctl).exists() and "demo" not in contexts(gridctl)["contexts"]
        assert gridctl.json("status")["deployments"] == []

    def test_asks_first_and_refuses_without_a_terminal(self, gridctl: Gridctl, backend: FakeBackend,
                                                       owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "aws")
        refused = gridctl("destroy", "aws", "--name", "demo")
        assert refused.exit_code == 2 and "--yes" in refused.stderr
        declined = gridctl("destroy", "aws", "--name", "demo", input="n\n")
        assert declined.exit_code == 1 and "with all their data" in declined.stderr.replace("\n", " ")
        assert backend.operations() == ["up"] and state_dir(gridctl).exists()

    def test_another_clouds_deployment_is_a_conflict(self, gridctl: Gridctl, backend: FakeBackend,
                                                     owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "aws")
        result = gridctl("destroy", "gcp", "--name", "demo", "--yes")
        assert result.exit_code == 6 and "belongs to provider 'aws'" in result.stderr
        assert backend.operations() == ["up"]

    def test_an_unknown_deployment_is_not_found(self, gridctl: Gridctl, backend: FakeBackend) -> None:
        result = gridctl("destroy", "azure", "--name", "ghost", "--yes")
        assert result.exit_code == 5 and backend.calls == []


# --- gridctl check -----------------------------------------------------------------------------------------

def check_rows(gridctl: Gridctl, *targets: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = gridctl("check", *targets, "--output", "json")
    return result.exit_code, {row["provider"]: row for row in json.loads(result.stdout)}


@pytest.fixture
def sts_server(monkeypatch: pytest.MonkeyPatch) -> str:
    """moto's server on loopback, standing in for AWS STS: it answers GetCallerIdentity for any key."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def google_token_server() -> Any:
    """A loopback OAuth token endpoint for a service-account key: google-auth signs a JWT with the key and
    trades it here for an access token, as it would at oauth2.googleapis.com."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            seen.append(body)
            answer = json.dumps({"access_token": "ya29.test", "expires_in": 3600, "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.seen = seen  # type: ignore[attr-defined]
    yield server
    server.shutdown()


def service_account_key(path: Path, token_uri: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "demo-project", "private_key_id": "k1", "private_key": pem,
        "client_email": "deployer@demo-project.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri}))
    return path


class TestCheck:
    def test_without_pulumi_or_credentials_no_cloud_is_ready_each_says_why_and_it_exits_1(
        self, gridctl: Gridctl, machine: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PATH", str(machine / "bin"))
        code, rows = check_rows(gridctl)
        assert code == 1
        assert rows["local"]["ready"] is True and rows["local"]["reason"] is None
        for cloud in CLOUDS:
            assert rows[cloud]["ready"] is False
            assert "Pulumi CLI is not installed" in rows[cloud]["reason"]
            assert "credentials found" in rows[cloud]["reason"]

    def test_a_target_that_is_ready_exits_0(self, gridctl: Gridctl, machine: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PATH", str(machine / "bin"))
        assert check_rows(gridctl, "local") == (0, {"local": {"provider": "local", "ready": True, "reason": None}})

    def test_an_unknown_target_is_a_usage_error(self, gridctl: Gridctl, machine: Path) -> None:
        result = gridctl("check", "mars")
        assert result.exit_code == 2 and "unknown target 'mars'" in result.stderr

    def test_credentials_the_clouds_identity_apis_accept_make_every_cloud_ready(
        self, gridctl: Gridctl, machine: Path, monkeypatch: pytest.MonkeyPatch, sts_server: str,
        google_token_server: Any,
    ) -> None:
        install_fake_pulumi(machine)
        monkeypatch.setenv("PATH", str(machine / "bin"))
        # AWS: keys in the environment, STS played by moto's server
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOPERATOR")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        monkeypatch.setenv("AWS_ENDPOINT_URL", sts_server)
        # GCP: a service-account key whose token endpoint is on loopback
        token_uri = f"http://127.0.0.1:{google_token_server.server_port}/token"
        key = service_account_key(machine / "key.json", token_uri)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        # Azure: azure-identity's chain, which must be asked for an Azure Resource Manager token
        import azure.identity

        scopes: list[str] = []

        class Credential:
            def get_token(self, *asked: str, **_: Any) -> Any:
                scopes.extend(asked)
                return type("Token", (), {"token": "eyJ.test", "expires_on": 2**31})()

        monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
        monkeypatch.setenv("ARM_CLIENT_ID", "00000000-0000-0000-0000-000000000000")
        code, rows = check_rows(gridctl)
        assert code == 0, rows
        assert all(rows[cloud] == {"provider": cloud, "ready": True, "reason": None} for cloud in CLOUDS)
        assert google_token_server.seen and "assertion=" in google_token_server.seen[0]  # a signed JWT was traded
        assert scopes == ["https://management.azure.com/.default"]

    def test_a_config_file_the_identity_api_refuses_is_not_ready(
        self, gridctl: Gridctl, machine: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        install_fake_pulumi(machine)
        monkeypatch.setenv("PATH", str(machine / "bin"))
        (machine / ".aws").mkdir()
        (machine / ".aws" / "credentials").write_text("[default]\n")  # a file, but no key in it
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(machine / "missing-key.json"))
        code, rows = check_rows(gridctl, "aws", "gcp")
        assert code == 1
        assert rows["aws"]["ready"] is False
        assert rows["aws"]["reason"].startswith("AWS did not accept these credentials (sts get-caller-identity)")
        assert rows["gcp"]["reason"].startswith("Google Cloud did not accept these credentials")

    def test_with_pulumi_and_no_credential_at_all_each_cloud_says_how_to_log_in(
        self, gridctl: Gridctl, machine: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        install_fake_pulumi(machine)
        monkeypatch.setenv("PATH", str(machine / "bin"))
        code, rows = check_rows(gridctl, "gcp", "azure")
        assert code == 1
        assert rows["gcp"]["reason"].startswith("no Google Cloud credentials found")
        assert rows["azure"]["reason"].startswith("no Azure credentials found: run 'az login'")

    def test_a_cloud_without_its_extra_says_which_to_install(self, gridctl: Gridctl, machine: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
        from providers import base

        monkeypatch.setitem(base._REGISTRY, "azure", "providers.azure.missing_sdk:AzureProvider")
        code, rows = check_rows(gridctl, "azure")
        assert code == 1
        assert rows["azure"] == {"provider": "azure", "ready": False,
                                 "reason": "the 'azure' extra is not installed: pip install 'gridctl[azure]'"}

    def test_the_table_lists_every_target(self, gridctl: Gridctl, machine: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PATH", str(machine / "bin"))
        result = gridctl("check")
        assert result.exit_code == 1
        for cloud in ("local", *CLOUDS):
            assert cloud in result.stdout


# --- issue 12: the operator's build, changes that need a new Node, state, failures ----------------------------

def rebuild_with(monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    """From now on the CLI 'runs' another build: its wheel has ``content``."""
    import hashlib
    from dataclasses import replace

    def other_build(out_dir: Path) -> Any:
        build = fixed_build(out_dir)
        Path(build.wheel_path).write_bytes(content)
        return replace(build, wheel_sha256=hashlib.sha256(content).hexdigest())

    monkeypatch.setattr(cloud_provider, "operator_build", other_build)


class TestShippedBuild:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_the_program_ships_the_build_kept_in_the_state_dir_and_status_shows_it(
        self, cloud: str, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, cloud, "--workers", "1")
        build = backend.last("up").settings.build
        assert build is not None and Path(build.wheel_path).parent == state_dir(gridctl) / "build"
        assert build.exists() and oct((state_dir(gridctl) / "build").stat().st_mode & 0o777) == "0o700"
        record = json.loads((state_dir(gridctl) / "deployment.json").read_text())
        assert record["settings"]["build"]["wheel_sha256"] == build.wheel_sha256
        [row] = gridctl.json("status", "demo")["deployments"]
        assert row["version"] == f"{build.version} (wheel sha256 {build.wheel_sha256[:12]})"

    def test_scaling_ships_the_nodes_build_even_when_the_cli_changed(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deploy(gridctl, "gcp", "--workers", "1")
        first = backend.last("up").settings.build
        rebuild_with(monkeypatch, b"a newer gridctl\n")
        gridctl.json("workers", "scale", "3", "--name", "demo")
        assert backend.last("up").settings.build == first  # new Workers run what the Node runs

    def test_a_new_build_would_replace_the_node_so_it_is_refused_without_replace_node(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        deploy(gridctl, "aws")
        first = backend.last("up").settings.build
        rebuild_with(monkeypatch, b"a newer gridctl\n")
        refused = gridctl("deploy", "aws", "--name", "demo", "--yes")
        assert refused.exit_code == 6 and "--replace-node" in refused.stderr
        assert "loses the data on its disk" in refused.stderr and first.wheel_sha256[:12] in refused.stderr
        assert backend.operations() == ["up"]
        result = deploy(gridctl, "aws", "--replace-node")
        assert result["state"] == "updated" and backend.last("up").settings.build != first

    def test_a_domain_changes_the_nodes_boot_so_it_needs_replace_node_too(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        deploy(gridctl, "azure")
        refused = gridctl("deploy", "azure", "--name", "demo", "--yes", "--domain", "grid.example.org")
        assert refused.exit_code == 6 and "--domain changed" in refused.stderr
        deploy(gridctl, "azure", "--allow-cidr", "198.51.100.0/24")  # the Node boots the same: no question

    def test_the_plan_ships_a_real_build_of_this_gridctl(self, gridctl: Gridctl, machine: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PATH", str(machine / "bin"))
        resources = gridctl.json("deploy", "aws", "--name", "demo", "--plan")
        objects = {r["name"]: r["inputs"] for r in resources if r["type"] == "aws:s3/bucketObjectv2:BucketObjectv2"}
        assert objects["demo-build-wheel"]["key"].endswith("-py3-none-any.whl")
        assert objects["demo-build-wheel"]["source"]["file"].endswith(".whl")


class TestDomain:
    def test_deploy_prints_the_dns_record_to_create_before_waiting(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        result = gridctl("deploy", "gcp", "--name", "demo", "--yes", "--domain", "grid.example.org")
        assert result.exit_code == 0, result.stderr
        assert "grid.example.org. 300 IN A 192.0.2.10" in result.stderr


class TestFailures:
    @pytest.mark.parametrize("cloud", CLOUDS)
    def test_a_node_that_does_not_come_up_shows_its_console(
        self, cloud: str, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups,
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from providers.base import ProviderError

        def never(url: str, verify: Any, timeout: float) -> None:
            raise ProviderError(f"the Node did not answer {url}/api/v1/health within 1500s")

        asked: list[dict[str, Any]] = []

        def console(self: Any, settings: CloudSettings, outputs: dict[str, Any]) -> str:
            asked.append(dict(outputs))
            return "\n".join(f"cloud-init line {i}" for i in range(100)) + "\nbootstrap: refusing to install it\n"

        monkeypatch.setattr(cloud_provider, "wait_until_healthy", never)
        monkeypatch.setattr(PROVIDER_CLASSES[cloud], "console_output", console)
        result = gridctl("deploy", cloud, "--name", "demo", "--yes")
        assert result.exit_code == 1
        assert "did not answer" in result.stderr and "bootstrap: refusing to install it" in result.stderr
        assert "cloud-init line 99" in result.stderr and "cloud-init line 50" not in result.stderr  # the tail
        assert "cloud-init log" not in result.stderr  # no pointer at a log the operator cannot reach
        assert asked and asked[0]["node_public_ip"] == "192.0.2.10"

    def test_a_console_that_cannot_be_read_says_why_and_keeps_the_error(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from providers.base import ProviderError

        def never(url: str, verify: Any, timeout: float) -> None:
            raise ProviderError("the Node did not answer")

        monkeypatch.setattr(cloud_provider, "wait_until_healthy", never)
        result = gridctl("deploy", "aws", "--name", "demo", "--yes")  # no AWS credentials here: EC2 refuses
        assert result.exit_code == 1 and "the Node did not answer" in result.stderr
        assert "console output could not be read" in result.stderr or "no console output" in result.stderr

    def test_aws_reads_the_nodes_console_from_ec2(self, sts_server: str, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
        import boto3

        from tests.cloud_checks import settings

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAOPERATOR")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        monkeypatch.setenv("AWS_ENDPOINT_URL", sts_server)  # moto's server plays EC2 too
        ec2 = boto3.client("ec2", region_name="eu-west-1")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        text = AwsProvider(tmp_path).console_output(settings(), {"node_instance_id": instance})
        assert text  # moto answers with its stand-in console text
        assert AwsProvider(tmp_path).console_output(settings(), {}) is None


class TestPulumiFirst:
    def test_without_pulumi_deploy_says_so_before_calling_anything_outside(
        self, gridctl: Gridctl, machine: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Issue 10, Measured 6: no call to learn this machine's address before saying the CLI is missing."""
        def outside(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("called an outside service")

        monkeypatch.setattr(cloud_provider, "operator_cidr", outside)
        monkeypatch.setattr(httpx, "get", outside)
        monkeypatch.setenv("PATH", str(machine / "bin"))
        result = gridctl("deploy", "aws", "--name", "demo", "--yes")
        assert result.exit_code == 1 and "the Pulumi CLI is not installed" in result.stderr
        assert "outside service" not in result.stderr

    def test_the_plans_count_is_what_json_lists(self, gridctl: Gridctl, machine: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """Issue 10, Measured 6: the table said 46 resources while -o json listed 53 entries."""
        import re

        monkeypatch.setenv("PATH", str(machine / "bin"))
        table = gridctl("deploy", "aws", "--name", "demo", "--plan", "--workers", "2", "--allow-cidr", OPERATOR)
        listed = gridctl.json("deploy", "aws", "--name", "demo", "--plan", "--workers", "2", "--allow-cidr", OPERATOR)
        count = int(re.search(r"(\d+) resources in", table.stderr).group(1))
        assert count == len(listed) and all(r["type"].startswith("aws:") or r["type"].startswith("pulumi:")
                                            for r in listed)


class TestState:
    def test_a_bucket_backend_and_a_kms_key_reach_the_stack_and_are_remembered(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups
    ) -> None:
        key = "awskms://alias/gridctl-state?region=eu-west-1"
        deploy(gridctl, "aws", "--backend-url", "s3://operator-state", "--secrets-provider", key)
        assert (backend.last("up").backend_url, backend.last("up").secrets_provider) == ("s3://operator-state", key)
        deploy(gridctl, "aws", "--allow-cidr", "198.51.100.0/24")
        assert backend.last("up").secrets_provider == key
        gridctl.json("destroy", "aws", "--name", "demo", "--yes")
        assert backend.last("destroy").secrets_provider == key

    def test_another_kms_key_later_is_refused(self, gridctl: Gridctl, backend: FakeBackend,
                                              owner_setups: OwnerSetups) -> None:
        deploy(gridctl, "gcp", "--secrets-provider", "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k")
        result = gridctl("deploy", "gcp", "--name", "demo", "--yes", "--secrets-provider",
                         "gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/other")
        assert result.exit_code == 6 and "--secrets-provider" in result.stderr

    def test_the_azure_subscription_is_recorded_at_first_deploy(
        self, gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "11111111-1111-1111-1111-111111111111")
        deploy(gridctl, "azure")
        monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "22222222-2222-2222-2222-222222222222")  # the shell moved on
        deploy(gridctl, "azure", "--allow-cidr", "198.51.100.0/24")
        assert backend.last("up").config["azure-native:subscriptionId"] == "11111111-1111-1111-1111-111111111111"


# --- end to end, but for Pulumi: a real Node behind TLS --------------------------------------------------------

class TestDeployAgainstARealNode:
    def test_the_owner_is_created_over_pinned_tls_and_the_context_works(
        self, gridctl: Gridctl, backend: FakeBackend, tls_node: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        backend.url = tls_node.url
        for provider_class in PROVIDER_CLASSES.values():
            monkeypatch.setattr(provider_class, "fetch_root_certificate",
                                lambda self, settings, outputs, role="node": tls_node.ca.read_bytes())
        monkeypatch.setattr(cloud_provider, "wait_until_healthy", _real_wait)
        monkeypatch.setattr(cloud_provider.DeploymentSecrets, "generate",
                            classmethod(lambda cls: _secrets_with(tls_node.setup_token)))
        result = gridctl.json("deploy", "aws", "--name", "demo", "--yes", "--owner-email", "ops@example.org")
        assert result["state"] == "created" and result["url"] == tls_node.url
        token = contexts(gridctl)["contexts"]["demo"]["token"]
        pinned = cloud_provider.pinned_context(Path(result["tls_root_certificate"]))
        me = httpx.get(f"{tls_node.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"},
                       verify=pinned)
        assert me.status_code == 200 and me.json()["email"] == "ops@example.org"
        # The saved context pins the Node's root: the CLI's own commands reach it with no other setting.
        assert contexts(gridctl)["contexts"]["demo"]["ca_file"] == result["tls_root_certificate"]
        users = gridctl.json("users", "me")
        assert users["email"] == "ops@example.org"


# --- the Node joins its Network: a live Node and a live Network ---------------------------------------------------

@pytest.fixture(scope="module")
def live_network(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.networks import start_live_network

    network = start_live_network(tmp_path_factory.mktemp("deploy-network"), {
        "GRID_NETWORK_ALLOW_INSECURE_NODES": "true", "GRID_NETWORK_ALLOW_PRIVATE_NODES": "true"})
    yield network
    network.stop()


@pytest.fixture
def live_node(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Any:
    """A Node of its own per test (its name too: a Network refuses a second Node of the same name), allowed to
    reach a Network over http on loopback (the deployment's are https on public addresses)."""
    from tests.live import start_live_node

    node = start_live_node(tmp_path_factory.mktemp("deploy-node"), {
        "GRID_NODE_NAME": f"deployed-{request.node.name[-40:]}".replace("[", "-").replace("]", ""),
        "GRID_NODE_NETWORK_ALLOW_INSECURE": "true", "GRID_NODE_NETWORK_ALLOW_PRIVATE": "true"})
    yield node
    node.stop()


def bearer(node: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {node.owner_token}"}


class TestTheNodeJoinsItsNetwork:
    """``deploy --network`` ends with the Node associated with its Network, approved on both sides, through
    the two services' real APIs (only the stack and the machines are fakes: the URLs lead to a live Node and a
    live Network on loopback)."""

    @pytest.fixture
    def deployment(self, backend: FakeBackend, live_node: Any, live_network: Any,
                   monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
        backend.url, backend.network_url = live_node.url, live_network.url
        tokens = {live_node.url: live_node.owner_token, live_network.url: live_network.owner_token}
        monkeypatch.setattr(cloud_provider, "set_up_owner", lambda url, **kwargs: tokens[url])
        monkeypatch.setattr(cloud_provider, "associate_with_network", _real_associate)
        return live_node, live_network

    @staticmethod
    def states(node: Any, network: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        on_node = httpx.get(f"{node.api}/network/associations", headers=bearer(node), timeout=30)
        on_network = httpx.get(f"{network.api}/associations", headers=network.headers, timeout=30)
        assert on_node.status_code == 200 and on_network.status_code == 200
        return ([(a["network_url"], a["state"]) for a in on_node.json()],
                [(a["node_url"], a["state"]) for a in on_network.json() if a["node_url"] == node.url])

    def test_deploy_joins_and_approves_and_a_redeploy_changes_nothing(
        self, gridctl: Gridctl, deployment: tuple[Any, Any]
    ) -> None:
        node, network = deployment
        result = deploy(gridctl, "aws", "--network")
        assert "joined the Network and the Network's Owner approved it" in result["network_association"]
        assert self.states(node, network) == ([(network.url, "approved")], [(node.url, "approved")])
        again = deploy(gridctl, "aws", "--network")
        assert "already associated" in again["network_association"]
        assert self.states(node, network) == ([(network.url, "approved")], [(node.url, "approved")])

    def test_a_join_left_pending_is_approved_not_sent_again(
        self, gridctl: Gridctl, deployment: tuple[Any, Any]
    ) -> None:
        node, network = deployment
        joined = httpx.post(f"{node.api}/network/associations", headers=bearer(node), timeout=60,
                            json={"network_url": network.url, "node_url": node.url})
        assert joined.status_code == 201 and joined.json()["state"] == "pending"
        result = deploy(gridctl, "gcp", "--network")
        assert "approved it" in result["network_association"]
        assert self.states(node, network) == ([(network.url, "approved")], [(node.url, "approved")])

    def test_a_network_that_denied_the_node_is_reported_not_overridden(
        self, gridctl: Gridctl, deployment: tuple[Any, Any]
    ) -> None:
        node, network = deployment
        joined = httpx.post(f"{node.api}/network/associations", headers=bearer(node), timeout=60,
                            json={"network_url": network.url, "node_url": node.url}).json()
        denied = httpx.post(f"{network.api}/associations/{joined['remote_id']}/deny", headers=network.headers,
                            json={"note": "not this one"}, timeout=30)
        assert denied.status_code == 200, denied.text
        result = deploy(gridctl, "azure", "--network")
        assert "not associated with the Network yet" in result["network_association"]
        assert self.states(node, network)[1] == [(node.url, "denied")]


class TestTheJoinRequestOverHttps:
    """What the join sends to https URLs (the cloud's): the roots each side pins of the other. Both services are
    played by an httpx transport here; the live flow above runs over http on loopback, where no root is sent."""

    def test_it_carries_the_networks_root_and_the_nodes_then_approves_as_the_networks_owner(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: list[tuple[str, str, str, Any]] = []
        states = {"node": "pending"}

        def handler(request: httpx.Request) -> httpx.Response:
            body = json.loads(request.content) if request.content else None
            seen.append((request.method, str(request.url), request.headers["authorization"], body))
            route = (request.method, request.url.host, request.url.path)
            association = {"id": 7, "network_url": "https://192.0.2.11", "remote_id": 3, "state": states["node"]}
            answers: dict[tuple[str, str | None, str], Any] = {
                ("GET", "192.0.2.10", "/api/v1/network/associations"): [],
                ("POST", "192.0.2.10", "/api/v1/network/associations"): association,
                ("GET", "192.0.2.11", "/api/v1/associations"): [{"id": 3, "state": "pending"}],
                ("POST", "192.0.2.11", "/api/v1/associations/3/approve"): {"id": 3, "state": "approved"},
            }
            if route == ("POST", "192.0.2.10", "/api/v1/network/associations/7/sync"):
                states["node"] = "approved"
                return httpx.Response(200, json={"association": {**association, "state": "approved"},
                                                 "pushed": 0, "deleted": 0})
            return httpx.Response(200 if route in answers else 404, json=answers.get(route, {}))

        real_client = httpx.Client
        monkeypatch.setattr(httpx, "Client", lambda **kwargs: real_client(
            **kwargs, transport=httpx.MockTransport(handler)))
        done = _real_associate(node_url="https://192.0.2.10", node_verify=True, node_token="gtok_node",
                               network_url="https://192.0.2.11", network_verify=True, network_token="gtok_net",
                               network_ca_pem="NETWORK ROOT PEM", node_ca_pem="NODE ROOT PEM")
        assert done == cloud_provider.Association(node_id=7, network_id=3, already=False)
        join = next(body for method, url, _, body in seen if method == "POST" and url.endswith("/associations"))
        assert join == {"network_url": "https://192.0.2.11", "node_url": "https://192.0.2.10",
                        "network_ca_pem": "NETWORK ROOT PEM", "node_ca_pem": "NODE ROOT PEM"}
        tokens = {url.split("/api/v1")[1]: auth for _, url, auth, _ in seen}
        assert tokens["/network/associations"] == "Bearer gtok_node"  # the Node's Owner joins
        assert tokens["/associations/3/approve"] == "Bearer gtok_net"  # the Network's Owner approves
        assert tokens["/network/associations/7/sync"] == "Bearer gtok_node"


def _secrets_with(setup_token: str) -> Any:
    from providers.cloud import DeploymentSecrets

    return DeploymentSecrets(setup_token=setup_token, ray_token="r" * 64, database_password="p" * 32,
                             network_setup_token="gsetup_network")
