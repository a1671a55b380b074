"""The cloud providers without a cloud: the registry, credential checks, specs and state, and the Owner's
creation over HTTPS pinned to the Node's own root certificate (a real Node served with TLS on loopback)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gridctl.sdk.errors import GridctlError
from providers import base, cloud_provider
from providers.aws.provider import AwsProvider
from providers.azure.provider import AzureProvider
from providers.base import DeploymentConflict, DeploymentRecord, DeploymentSpec, Feature
from providers.cloud_provider import CloudProvider, pinned_context, set_up_owner
from providers.gcp.provider import GcpProvider
from tests.live import free_port, wait_healthy

CLOUD_ENV = ("AWS_", "GOOGLE_", "CLOUDSDK_", "ARM_", "AZURE_")
PROVIDERS: dict[str, type[CloudProvider]] = {"aws": AwsProvider, "gcp": GcpProvider, "azure": AzureProvider}


def cloudless_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No cloud variable in the environment and an empty HOME (with an empty ``bin/``), returned."""
    for variable in list(os.environ):
        if variable.startswith(CLOUD_ENV):
            monkeypatch.delenv(variable)
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def bare_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No cloud credentials in the environment, an empty HOME, and a PATH without the Pulumi CLI."""
    home = cloudless_home(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", str(home / "bin"))
    return home


def install_fake_pulumi(home: Path) -> None:
    script = home / "bin" / "pulumi"
    script.write_text("#!/bin/sh\necho v3.0.0\n")
    script.chmod(0o755)


class TestRegistry:
    def test_every_cloud_is_registered_and_available_with_its_extra_installed(self) -> None:
        assert base.provider_names()[:1] == ["local"]
        available = base.available_providers()
        for name, provider_class in PROVIDERS.items():
            assert name in base.provider_names()
            assert available[name] is provider_class

    def test_a_cloud_whose_sdk_is_missing_does_not_appear(self, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
        real_find_spec = cloud_provider.importlib.util.find_spec
        monkeypatch.setattr(cloud_provider.importlib.util, "find_spec",
                            lambda name, *a: None if name == "pulumi_gcp" else real_find_spec(name, *a))
        monkeypatch.delitem(sys.modules, "providers.gcp.provider")
        assert "gcp" not in base.available_providers()
        with pytest.raises(GridctlError, match=r"pulumi_gcp not installed.*pip install 'gridctl\[gcp\]'"):
            base.get_provider("gcp", tmp_path)

    def test_clouds_support_every_feature(self, tmp_path: Path) -> None:
        for provider_class in PROVIDERS.values():
            provider = provider_class(tmp_path)
            assert [f for f in Feature if not provider.supports(f)] == []
            assert provider.supports(Feature.network)


class TestCredentialCheck:
    @pytest.mark.parametrize("cloud", sorted(PROVIDERS))
    def test_without_pulumi_or_credentials_the_reason_names_both(self, cloud: str, bare_machine: Path,
                                                                 tmp_path: Path) -> None:
        reason = PROVIDERS[cloud](tmp_path).check_credentials()
        assert reason and "Pulumi CLI is not installed" in reason
        assert f"no {dict(aws='AWS', gcp='Google Cloud', azure='Azure')[cloud]} credentials found" in reason

    @pytest.mark.parametrize(("cloud", "variable"), [("aws", "AWS_PROFILE"), ("aws", "AWS_ACCESS_KEY_ID"),
                                                     ("gcp", "GOOGLE_APPLICATION_CREDENTIALS"),
                                                     ("azure", "ARM_CLIENT_ID"), ("azure", "AZURE_CLIENT_ID")])
    def test_credentials_in_the_environment_make_it_ready(self, cloud: str, variable: str, bare_machine: Path,
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        install_fake_pulumi(bare_machine)
        monkeypatch.setenv(variable, "from-the-environment")
        # found; whether the cloud accepts them is identity_problem's question (tests/test_cli_deploy_cloud.py)
        assert PROVIDERS[cloud](tmp_path).credential_problem() is None

    @pytest.mark.parametrize(("cloud", "path"), [("aws", ".aws/credentials"), ("aws", ".aws/config"),
                                                 ("gcp", ".config/gcloud/application_default_credentials.json"),
                                                 ("azure", ".azure/msal_token_cache.json")])
    def test_credentials_in_the_usual_files_under_home_make_it_ready(self, cloud: str, path: str,
                                                                     bare_machine: Path, tmp_path: Path) -> None:
        install_fake_pulumi(bare_machine)
        (bare_machine / path).parent.mkdir(parents=True, exist_ok=True)
        (bare_machine / path).write_text("{}")
        assert PROVIDERS[cloud](tmp_path).credential_problem() is None
        reason = PROVIDERS[cloud](tmp_path).check_credentials()  # a file alone proves nothing: the cloud is asked
        assert reason and "did not accept these credentials" in reason

    def test_credentials_without_pulumi_is_still_not_ready(self, bare_machine: Path,
                                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("AWS_PROFILE", "default")
        reason = AwsProvider(tmp_path).check_credentials()
        assert reason and reason.startswith("the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/); ")
        assert "AWS did not accept these credentials" in reason  # a profile named, but none configured


class TestSpecs:
    def test_a_new_deployment_gets_the_clouds_default_region(self, tmp_path: Path) -> None:
        assert AwsProvider(tmp_path).spec_for("demo").region == "eu-west-1"
        assert GcpProvider(tmp_path).spec_for("demo").region == "europe-west1"
        assert AzureProvider(tmp_path).spec_for("demo").region == "westeurope"

    def test_a_redeploy_keeps_what_is_not_given_again(self, tmp_path: Path) -> None:
        provider = AwsProvider(tmp_path)
        remembered = DeploymentSpec(name="demo", region="us-east-2", workers=4, network=True,
                                    allow_cidr=["203.0.113.7/32"], domain="grid.example.org")
        (tmp_path / "demo").mkdir()
        DeploymentRecord(name="demo", provider="aws", url="", created_at="now", owner_email="o@example.org",
                         settings={"suffix": "abc123", "spec": provider._spec_state(remembered)}
                         ).save(tmp_path / "demo")
        spec = provider.spec_for("demo", workers=1, allow_cidr=None)
        assert (spec.region, spec.workers, spec.network, spec.allow_cidr, spec.domain) == (
            "us-east-2", 1, True, ["203.0.113.7/32"], "grid.example.org")

    def test_another_providers_deployment_of_the_same_name_is_a_conflict(self, tmp_path: Path) -> None:
        (tmp_path / "demo").mkdir()
        DeploymentRecord(name="demo", provider="local", url="http://127.0.0.1:1", created_at="now",
                         owner_email="o@example.org", settings={"port": 1}).save(tmp_path / "demo")
        with pytest.raises(DeploymentConflict, match="belongs to provider 'local'"):
            AwsProvider(tmp_path).spec_for("demo")

    def test_gcp_takes_its_project_from_gclouds_configuration(self, bare_machine: Path, tmp_path: Path) -> None:
        configurations = bare_machine / ".config" / "gcloud" / "configurations"
        configurations.mkdir(parents=True)
        (configurations / "config_default").write_text("[core]\nproject = from-gcloud\n")
        spec = GcpProvider(tmp_path).spec_for("demo", allow_cidr=["203.0.113.7/32"])
        settings = GcpProvider(tmp_path)._settings(spec, {"suffix": "abc123"},
                                                   cloud_provider.DeploymentSecrets.generate())
        assert settings.project == "from-gcloud" and spec.project == "from-gcloud"

    def test_gcp_without_a_project_says_how_to_give_one(self, bare_machine: Path, tmp_path: Path) -> None:
        spec = GcpProvider(tmp_path).spec_for("demo", allow_cidr=["203.0.113.7/32"])
        with pytest.raises(GridctlError, match="needs a project: --project, GOOGLE_CLOUD_PROJECT"):
            GcpProvider(tmp_path)._settings(spec, {"suffix": "abc123"}, cloud_provider.DeploymentSecrets.generate())

    def test_azure_generates_a_throwaway_admin_key_and_keeps_no_private_half(self, tmp_path: Path) -> None:
        state = AzureProvider(tmp_path).new_state(DeploymentSpec(name="demo"))
        assert state["admin_public_key"].startswith("ssh-rsa ") and len(state["suffix"]) == 6
        assert "PRIVATE" not in json.dumps(state)

    def test_ssh_needs_a_key(self, tmp_path: Path) -> None:
        spec = AwsProvider(tmp_path).spec_for("demo", allow_cidr=["203.0.113.7/32"], ssh_cidr=["198.51.100.0/24"])
        with pytest.raises(GridctlError, match="SSH needs a public key") as caught:
            AwsProvider(tmp_path)._settings(spec, {"suffix": "abc123"}, cloud_provider.DeploymentSecrets.generate())
        assert caught.value.code == "usage"


# --- the Owner over HTTPS, pinned to the Node's own CA ---------------------------------------------------------

def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None = None,
                 issuer_key: ec.EllipticCurvePrivateKey | None = None, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
        builder = builder.add_extension(x509.SubjectAlternativeName([loopback]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                                        critical=False)
        assert issuer_key is not None
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def make_ca(directory: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(name, key, ca=True)
    path = directory / f"{name}.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path, key, certificate


SERVE = """
import sys, uvicorn
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
settings = NodeSettings()
uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning",
            ssl_certfile=sys.argv[1], ssl_keyfile=sys.argv[2])
"""


class TlsNode:
    def __init__(self, url: str, ca: Path, setup_token: str) -> None:
        self.url, self.ca, self.setup_token = url, ca, setup_token


@pytest.fixture(scope="module", name="tls_node")
def tls_node_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNode]:
    """A real Node behind TLS on loopback, its certificate signed by its own CA, its setup token provisioned
    in the state dir before the first start (as a cloud machine's bootstrap does)."""
    directory = tmp_path_factory.mktemp("tls-node")
    ca_path, ca_key, ca_cert = make_ca(directory, "node-root")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate("127.0.0.1", server_key, ca_cert.subject, ca_key, ca=False)
    (directory / "server.crt").write_bytes(server_cert.public_bytes(serialization.Encoding.PEM)
                                           + ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    state = directory / "state"
    state.mkdir(mode=0o700)
    setup_token = "gsetup_provisioned-by-the-operator-0123456789"
    (state / "setup-token").write_text(setup_token + "\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRID_NODE_")}
    env.update(GRID_NODE_STATE_DIR=str(state), GRID_NODE_PORT=str(port), GRID_NODE_RAY_ENABLED="false")
    log = directory / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", SERVE, str(directory / "server.crt"),
                                    str(directory / "server.key")], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # Health over TLS: wait_healthy uses plain httpx, so point it at the pinned CA through SSL_CERT_FILE.
        os.environ["SSL_CERT_FILE"] = str(ca_path)
        try:
            wait_healthy(f"https://127.0.0.1:{port}", process, log, timeout=60)
        finally:
            del os.environ["SSL_CERT_FILE"]
        yield TlsNode(f"https://127.0.0.1:{port}", ca_path, setup_token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class TestOwnerSetupOverPinnedTls:
    def test_a_certificate_from_another_ca_is_refused_before_the_setup_token_is_sent(
        self, tls_node: TlsNode, tmp_path: Path
    ) -> None:
        other_ca, _, _ = make_ca(tmp_path, "someone-else")
        with pytest.raises(GridctlError) as caught:
            set_up_owner(tls_node.url, verify=pinned_context(other_ca), setup_token=tls_node.setup_token,
                         email="owner@example.org", password="a long password 1")
        assert caught.value.code == "connection_failed" and "CERTIFICATE_VERIFY_FAILED" in caught.value.message

    def test_the_public_cas_do_not_vouch_for_the_nodes_own_ca(self, tls_node: TlsNode) -> None:
        with pytest.raises(GridctlError, match="CERTIFICATE_VERIFY_FAILED"):
            set_up_owner(tls_node.url, verify=True, setup_token=tls_node.setup_token, email="owner@example.org",
                         password="a long password 1")

    def test_creates_the_owner_with_the_provisioned_token_and_returns_a_working_api_token(
        self, tls_node: TlsNode
    ) -> None:
        pinned = pinned_context(tls_node.ca)
        token = set_up_owner(tls_node.url, verify=pinned, setup_token=tls_node.setup_token,
                             email="owner@example.org", password="a long password 1")
        me = httpx.get(f"{tls_node.url}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"},
                       verify=pinned)
        assert me.status_code == 200 and me.json()["email"] == "owner@example.org"
        tokens = httpx.get(f"{tls_node.url}/api/v1/tokens", headers={"Authorization": f"Bearer {token}"},
                           verify=pinned).json()
        names = [t["name"] for t in (tokens["items"] if isinstance(tokens, dict) else tokens)]
        assert names == ["gridctl-cli"]  # the login session was revoked; only the named token is left
        with pytest.raises(GridctlError) as again:  # the setup token worked once
            set_up_owner(tls_node.url, verify=pinned, setup_token=tls_node.setup_token, email="x@example.org",
                         password="a long password 2")
        assert again.value.code == "forbidden"

    def test_the_pinned_context_trusts_exactly_the_given_root(self, tls_node: TlsNode) -> None:
        context = pinned_context(tls_node.ca)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "node-root"),),)]


class TestStateFiles:
    def test_secrets_are_kept_owner_only(self, tmp_path: Path) -> None:
        provider = AwsProvider(tmp_path)
        base.make_private_dir(tmp_path / "demo")
        secrets = cloud_provider.DeploymentSecrets.generate()
        provider._save_secrets("demo", secrets)
        path = tmp_path / "demo" / cloud_provider.SECRETS_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert provider._load_secrets("demo") == secrets


class TestOperatorBuild:
    """Issue 12, What to build 1: the wheel and constraints of the running gridctl (providers/build.py)."""

    @pytest.fixture(scope="class")
    def built(self, tmp_path_factory: pytest.TempPathFactory) -> Any:
        from providers.build import operator_build

        return operator_build(tmp_path_factory.mktemp("build"))

    def test_the_wheel_holds_the_node_the_cli_and_the_templates_with_a_valid_record(self, built: Any) -> None:
        import base64
        import hashlib
        import importlib.metadata
        import zipfile

        from providers.build import sha256_file

        assert built.version == importlib.metadata.version("gridctl")
        assert built.wheel_sha256 == sha256_file(Path(built.wheel_path))
        with zipfile.ZipFile(built.wheel_path) as wheel:
            names = wheel.namelist()
            assert {"grid_runtime/node/__main__.py", "gridctl/cli/app.py", "providers/build.py",
                    "templates/cloud-init/node.yaml.j2"} <= set(names)
            assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
            dist_info = f"gridctl-{built.version}.dist-info"
            metadata = wheel.read(f"{dist_info}/METADATA").decode()
            assert "Name: gridctl" in metadata and f"Version: {built.version}" in metadata
            assert "gridctl = gridctl.cli.app:main" in wheel.read(f"{dist_info}/entry_points.txt").decode()
            record = wheel.read(f"{dist_info}/RECORD").decode().splitlines()
            assert len(record) == len(names)
            for line in record:
                name, digest, size = line.rsplit(",", 2)
                if name.endswith("RECORD"):
                    continue
                data = wheel.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == (f"sha256={expected}", len(data)), name
            # reproducible: fixed dates, sorted members, so the same source gives the same sha256
            assert {info.date_time for info in wheel.infolist()} == {(1980, 1, 1, 0, 0, 0)}
            assert names[:-1] == sorted(names[:-1]) and names[-1] == f"{dist_info}/RECORD"

    def test_pip_installs_the_wheel(self, built: Any, tmp_path: Path) -> None:
        target = tmp_path / "site"
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                               "--target", str(target), built.wheel_path], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert (target / "grid_runtime" / "node" / "__main__.py").is_file()
        assert (target / f"gridctl-{built.version}.dist-info" / "METADATA").is_file()

    def test_the_constraints_pin_the_tree_with_cpu_torch(self, built: Any) -> None:
        import importlib.metadata

        text = Path(built.constraints_path).read_text()
        pins = dict(line.split("==", 1) for line in text.splitlines() if line and not line.startswith("#")
                    and "==" in line)
        assert pins["torch"].endswith("+cpu")
        for name in ("fastapi", "ray", "sqlalchemy", "opacus", "s3fs"):
            assert pins[name].split(";")[0].strip() == importlib.metadata.version(name), name
        assert "gridctl" not in pins  # the wheel itself comes by path, never by name

    @pytest.mark.parametrize(("lock", "expected"), [
        ("torch==2.13.0\n", "torch==2.13.0+cpu\n"),
        ("torch==2.13.0+cpu\n", "torch==2.13.0+cpu\n"),
        ("torch==2.13.0 ; sys_platform == 'linux'\n", "torch==2.13.0+cpu ; sys_platform == 'linux'\n"),
        ("torch==2.13.0 \\\n    --hash=sha256:aa\n    --hash=sha256:bb\nnumpy==2.0 \\\n    --hash=sha256:cc\n",
         "torch==2.13.0+cpu\nnumpy==2.0 \\\n    --hash=sha256:cc\n"),
    ])
    def test_torch_is_pinned_to_its_cpu_build(self, lock: str, expected: str) -> None:
        from providers.build import cpu_torch

        assert cpu_torch(lock) == expected


class TestConsoleOutput:
    """Issue 12, Measured 10: a Node that does not come up shows its console (EC2's is tested against moto in
    tests/test_cli_deploy_cloud.py)."""

    def test_gcp_reads_serial_port_1_of_the_node_instance(self, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
        from tests.cloud_checks import settings

        asked: list[tuple[str, dict[str, str]]] = []

        def get(url: str, headers: dict[str, str], timeout: float) -> httpx.Response:
            asked.append((url, headers))
            return httpx.Response(200, json={"contents": "cloud-init: bootstrap.py install failed\n"})

        monkeypatch.setattr(GcpProvider, "_token", staticmethod(lambda: "ya29.operator"))
        monkeypatch.setattr(httpx, "get", get)
        text = GcpProvider(tmp_path).console_output(settings(region="europe-west1"),
                                                    {"zone": "europe-west1-b", "node_instance": "demo-node-instance"})
        assert text == "cloud-init: bootstrap.py install failed\n"
        [(url, headers)] = asked
        assert url == ("https://compute.googleapis.com/compute/v1/projects/demo-project/zones/europe-west1-b/"
                       "instances/demo-node-instance/serialPort?port=1")
        assert headers["Authorization"] == "Bearer ya29.operator"

    def test_azure_reads_the_boot_diagnostics_serial_log(self, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
        import azure.identity

        from tests.cloud_checks import settings

        class Credential:
            def get_token(self, scope: str) -> Any:
                assert scope == "https://management.azure.com/.default"
                return type("Token", (), {"token": "eyJ.operator"})()

        posted: list[str] = []

        def post(url: str, headers: dict[str, str], timeout: float) -> httpx.Response:
            posted.append(url)
            return httpx.Response(200, json={"serialConsoleLogBlobUri": "https://diag.blob.example/log?sas"})

        monkeypatch.setattr(azure.identity, "DefaultAzureCredential", Credential)
        monkeypatch.setattr(httpx, "post", post)
        monkeypatch.setattr(httpx, "get", lambda url, timeout: httpx.Response(200, text="[  OK  ] grid-node\n"))
        spec = settings(region="westeurope", subscription="11111111-1111-1111-1111-111111111111")
        text = AzureProvider(tmp_path).console_output(spec, {"resource_group": "gridctl-demo", "node_vm": "demo-vm"})
        assert text == "[  OK  ] grid-node\n"
        assert posted == ["https://management.azure.com/subscriptions/11111111-1111-1111-1111-111111111111/"
                          "resourceGroups/gridctl-demo/providers/Microsoft.Compute/virtualMachines/demo-vm/"
                          "retrieveBootDiagnosticsData?api-version=2024-03-01"]


class TestConstraintsFromALock:
    def test_the_lock_wins_the_project_and_editables_are_dropped_and_torch_goes_cpu(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from providers import build

        (tmp_path / "constraints.txt").write_text(
            "# a lock\n-e file:///src/gridctl\ngridctl==0.0.1\nfastapi==0.1.0\ntorch==2.13.0\n")
        monkeypatch.setattr(build, "checkout_root", lambda: tmp_path)
        text = build.constraints_text("0.1.0.dev0")
        lines = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert "fastapi==0.1.0" in lines and "torch==2.13.0+cpu" in lines  # the lock's pins, not the installed
        assert not [line for line in lines if line.startswith(("-e", "gridctl"))]
        assert len([line for line in lines if line.startswith("fastapi==")]) == 1
        assert "ray==" in text  # what the lock lacks: the versions installed here
