"""Azure's machines rehearsed on this machine (providers/rehearsal.py): the Node and two Workers, as the Azure
program renders them, each in its own network namespace, running the rendered units with their users and
sandboxing, Caddy in front, the operator's wheel, Azurite as Blob storage (over TLS, by the storage account's real
name, with OAuth bearer tokens: the Node's adlfs and the bootstrap's plain HTTP calls), and
providers/cloud_fakes.py as IMDS (the managed identity's tokens) and Key Vault. One rehearsal serves every test of
the module."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.rehearsal import CLOUD_ADDRESS, NETNS_ETC, PREFIX, WORKER_ADDRESSES, AzureSide, Rehearsal, namespaces
from tests.rehearsal.conftest import RehearsalKit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]
NODE_ADDRESS = "10.42.1.10"


@pytest.fixture(scope="module")
def azure(rehearsal_kit: RehearsalKit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    started = time.monotonic()
    rehearsal = Rehearsal(cloud="azure", work_dir=tmp_path_factory.mktemp("gridrh-azure"), venv=rehearsal_kit.venv,
                          build=rehearsal_kit.build, say=lambda text: print(text))
    with rehearsal:
        yield rehearsal
    print(f"azure rehearsal: {time.monotonic() - started:.0f} s {rehearsal.timings}")
    assert not [name for name in namespaces() if name.startswith(rehearsal.tag)], "namespaces left behind"
    assert not [path for path in NETNS_ETC.glob(f"{rehearsal.tag}-*")], "/etc/netns files left behind"


def _side(azure: Rehearsal) -> AzureSide:
    assert isinstance(azure.side, AzureSide)
    return azure.side


def _imds_requests(azure: Rehearsal) -> list[tuple[str, str]]:
    """(client address, path) of every request the fake IMDS and Key Vault answered."""
    lines = (azure.work_dir / "cloud.log").read_text(errors="replace").splitlines()
    return [(parts[0], parts[2]) for parts in (line.split(" ", 2) for line in lines)
            if len(parts) == 3 and parts[0].count(".") == 3 and parts[1] in ("GET", "POST", "PUT")]


def test_the_machines_reach_the_storage_account_by_its_name_over_tls(azure: Rehearsal) -> None:
    side = _side(azure)
    assert azure.network is not None and all(name.startswith(PREFIX) for name in azure.network.hosts.values())
    assert set(azure.network.hosts.values()) <= set(namespaces())
    assert side.host.endswith(".blob.core.windows.net")
    for role in ("node", "worker1", "worker2", "operator"):
        hosts = (NETNS_ETC / azure.network.hosts[role] / "hosts").read_text()
        assert f"{CLOUD_ADDRESS} {side.host} " in hosts
    # From a Worker, with the machine's own trust store: the account's name, its certificate, and OAuth required.
    probe = ("import ssl, sys, urllib.request, urllib.error\n"
             "try:\n    urllib.request.urlopen(f'https://{sys.argv[1]}/tensors?restype=container', timeout=20)\n"
             "except urllib.error.HTTPError as exc:\n    print(exc.code)\n")
    argv = azure.machines[1].command(["python3", "-c", probe, side.host])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                          env={"SSL_CERT_FILE": AzureSide.BUNDLE, "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() in ("401", "403"), done.stderr  # TLS verified; no anonymous access


def test_every_machine_took_its_managed_identitys_tokens_from_imds(azure: Rehearsal) -> None:
    requests = _imds_requests(azure)
    for address in (NODE_ADDRESS, *WORKER_ADDRESSES):
        tokens = [path for client, path in requests if client == address and "/identity/oauth2/token" in path]
        assert any("storage.azure.com" in path for path in tokens), (address, requests)
        assert any("vault.azure.net" in path for path in tokens), (address, requests)
    node_secrets = {path for client, path in requests if client == NODE_ADDRESS and path.startswith("/vault/")}
    worker_secrets = {path for client, path in requests if client == WORKER_ADDRESSES[1] and path.startswith("/vault/")}
    assert len(node_secrets) >= 2 and len(worker_secrets) == 1 and "ray-token" in next(iter(worker_secrets))


def test_the_units_run_as_their_users(azure: Rehearsal) -> None:
    node = azure.machines[0]
    assert [process.label for process in node.processes] == ["ray-head.service", "grid-node.service",
                                                             "caddy.service"]
    grid_node = next(process.popen.pid for process in node.processes if process.label == "grid-node.service")
    status = Path(f"/proc/{grid_node}/status").read_text()
    uid = str(__import__("pwd").getpwnam(azure.service_user).pw_uid)
    assert f"\nUid:\t{uid}\t" in status and "\nNoNewPrivs:\t1\n" in status
    for worker in azure.machines[1:]:
        assert [process.label for process in worker.processes] == ["ray-worker.service"]


def test_the_owner_is_set_up_over_the_pinned_tls_root(azure: Rehearsal) -> None:
    assert azure.owner_token and azure.ca_file is not None and azure.url == "https://192.0.2.10"
    probe = ("import httpx, ssl, sys\n"
             "pinned = ssl.create_default_context(cadata=open(sys.argv[2]).read())\n"
             "print(httpx.get(sys.argv[1] + '/api/v1/health', verify=pinned).status_code)\n")
    done = azure.operator([sys.executable, "-c", probe, azure.url, str(azure.ca_file)], env={"SSL_CERT_FILE": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"


def test_a_dp_job_on_the_two_workers_reads_the_container_and_the_officer_approves_its_release(
    azure: Rehearsal,
) -> None:
    started = time.monotonic()
    stdout, _ = azure.operator_watching(
        [sys.executable, "-m", "tests.rehearsal.operator_walk", azure.url, azure.owner_token, str(azure.ca_file)],
        "", 900, env={"PYTHONPATH": str(ROOT)})
    summary = json.loads(stdout.split("SUMMARY=", 1)[1])
    print(f"azure walk-through: {time.monotonic() - started:.0f} s")
    assert len(summary["workers"]) == 2
    assert summary["job_status"] == "succeeded", summary
    assert summary["weights"] and summary["release"]["fingerprint"]
    assert summary["epsilon"] > 0 and summary["budget"]["spent_epsilon"] > 0
    # The tensors the job read are in Azurite's container (az://, through adlfs), beside the build and the root.
    keys = azure.bucket_keys()
    assert any(key.startswith("gridctl/build/") for key in keys) and "gridctl/tls-root.crt" in keys
    assert [key for key in keys if key.startswith("tensors/")], keys
    assert not [key for key in keys if key.startswith(".tmp/")], keys
