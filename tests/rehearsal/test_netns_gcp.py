"""GCP's machines rehearsed on this machine (providers/rehearsal.py): the Node and two Workers, as the GCP
program renders them, each in its own network namespace, running the rendered units with their users and
sandboxing, Caddy in front, the operator's wheel, gcp-storage-emulator as Cloud Storage (the Node's gcsfs and the
bootstrap's plain HTTP calls), and providers/cloud_fakes.py as the metadata server (reached by its real name,
``metadata.google.internal``) and Secret Manager. One rehearsal serves every test of the module."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.rehearsal import METADATA_ADDRESS, NETNS_ETC, PREFIX, WORKER_ADDRESSES, Rehearsal, namespaces
from tests.rehearsal.conftest import RehearsalKit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]
NODE_ADDRESS = "10.42.1.10"


@pytest.fixture(scope="module")
def gcp(rehearsal_kit: RehearsalKit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    started = time.monotonic()
    rehearsal = Rehearsal(cloud="gcp", work_dir=tmp_path_factory.mktemp("gridrh-gcp"), venv=rehearsal_kit.venv,
                          build=rehearsal_kit.build, say=lambda text: print(text))
    with rehearsal:
        yield rehearsal
    print(f"gcp rehearsal: {time.monotonic() - started:.0f} s {rehearsal.timings}")
    assert not [name for name in namespaces() if name.startswith(rehearsal.tag)], "namespaces left behind"
    assert not [path for path in NETNS_ETC.glob(f"{rehearsal.tag}-*")], "/etc/netns files left behind"


def _cloud_requests(gcp: Rehearsal) -> list[tuple[str, str, str]]:
    """(client address, method, path) of every request the fake metadata server and Secret Manager answered."""
    lines = (gcp.work_dir / "cloud.log").read_text(errors="replace").splitlines()
    return [(parts[0], parts[1], parts[2]) for parts in (line.split(" ", 2) for line in lines)
            if len(parts) == 3 and parts[0].count(".") == 3 and parts[1] in ("GET", "POST", "PUT")]


def test_the_machines_find_the_metadata_server_by_its_name_inside_the_rehearsals_namespaces(gcp: Rehearsal) -> None:
    assert gcp.network is not None
    assert set(gcp.network.hosts) == {"lan", "cloud", "operator", "node", "worker1", "worker2"}
    assert all(name.startswith(PREFIX) for name in gcp.network.hosts.values())
    assert set(gcp.network.hosts.values()) <= set(namespaces())
    for role in ("node", "worker1", "worker2"):
        hosts = (NETNS_ETC / gcp.network.hosts[role] / "hosts").read_text()
        assert f"{METADATA_ADDRESS} metadata.google.internal metadata\n" in hosts
    assert not (NETNS_ETC / gcp.network.hosts["operator"]).exists()  # the operator is not on GCE
    # What a machine sees: the name resolves inside its namespace, as on a GCE image.
    resolve = gcp.machines[1].command(
        ["python3", "-c", "import socket; print(socket.gethostbyname('metadata.google.internal'))"])
    found = subprocess.run(resolve, capture_output=True, text=True, timeout=60, check=False)
    assert found.stdout.strip() == METADATA_ADDRESS, found.stderr


def test_the_bootstrap_and_gcsfs_took_the_service_accounts_token_from_the_metadata_server(gcp: Rehearsal) -> None:
    requests = _cloud_requests(gcp)
    token = "/computeMetadata/v1/instance/service-accounts/"
    machines = (NODE_ADDRESS, *WORKER_ADDRESSES)
    # bootstrap.py (install, secrets) on every machine: the default token, by the metadata server's name.
    for address in machines:
        assert (address, "GET", f"{token}default/token") in requests, address
    # google-auth (the Node's gcsfs) asks for the account's details first, then its token by e-mail.
    assert any(client == NODE_ADDRESS and path.startswith(f"{token}default/?recursive=true")
               for client, _, path in requests), requests
    # Secret Manager: the Node read its secrets; a Worker read the Ray token only.
    node_secrets = {path for client, _, path in requests if client == NODE_ADDRESS and ":access" in path}
    worker_secrets = {path for client, _, path in requests if client == WORKER_ADDRESSES[0] and ":access" in path}
    assert len(node_secrets) >= 2 and len(worker_secrets) == 1 and "ray-token" in next(iter(worker_secrets))


def test_the_units_run_as_their_users_with_their_sandboxing(gcp: Rehearsal) -> None:
    node = gcp.machines[0]
    by_unit = {process.label: process.popen.pid for process in node.processes}
    assert set(by_unit) == {"ray-head.service", "grid-node.service", "caddy.service"}
    status = dict(line.split(":", 1) for line in Path(f"/proc/{by_unit['grid-node.service']}/status")
                  .read_text().splitlines() if ":" in line)
    assert status["Uid"].split()[0] == str(__import__("pwd").getpwnam(gcp.service_user).pw_uid)
    assert status["NoNewPrivs"].strip() == "1"
    for worker in gcp.machines[1:]:
        assert [process.label for process in worker.processes] == ["ray-worker.service"]


def test_the_owner_is_set_up_over_the_pinned_tls_root(gcp: Rehearsal) -> None:
    assert gcp.owner_token and gcp.ca_file is not None and gcp.url == "https://192.0.2.10"
    assert gcp.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    probe = ("import httpx, ssl, sys\n"
             "pinned = ssl.create_default_context(cadata=open(sys.argv[2]).read())\n"
             "print(httpx.get(sys.argv[1] + '/api/v1/health', verify=pinned).status_code)\n")
    done = gcp.operator([sys.executable, "-c", probe, gcp.url, str(gcp.ca_file)], env={"SSL_CERT_FILE": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "200"


def test_a_dp_job_on_the_two_workers_reads_the_bucket_and_the_officer_approves_its_release(gcp: Rehearsal) -> None:
    started = time.monotonic()
    stdout, _ = gcp.operator_watching(
        [sys.executable, "-m", "tests.rehearsal.operator_walk", gcp.url, gcp.owner_token, str(gcp.ca_file)],
        "", 900, env={"PYTHONPATH": str(ROOT)})
    summary = json.loads(stdout.split("SUMMARY=", 1)[1])
    print(f"gcp walk-through: {time.monotonic() - started:.0f} s")
    assert len(summary["workers"]) == 2
    assert summary["job_status"] == "succeeded", summary
    assert summary["weights"] and summary["release"]["fingerprint"]
    assert summary["epsilon"] > 0 and summary["budget"]["spent_epsilon"] > 0
    # The tensors the job read are in the emulated bucket (gs://, through gcsfs), beside the build and the root.
    keys = gcp.bucket_keys()
    assert any(key.startswith("gridctl/build/") for key in keys) and "gridctl/tls-root.crt" in keys
    assert [key for key in keys if key.startswith("tensors/")], keys
    assert not [key for key in keys if key.startswith(".tmp/")], keys  # every write was renamed into place
    # A Worker's task read them with its own token: google-auth on a Worker asked the metadata server.
    assert any(client in WORKER_ADDRESSES and "/?recursive=true" in path for client, _, path in _cloud_requests(gcp))
