"""AWS's machines rehearsed on this machine (providers/rehearsal.py): the Node, two Workers and the Network
machine (--network), as the AWS program renders them, each in its own network namespace, running the rendered
units with their users and sandboxing, Caddy in front, the operator's wheel, and moto's server as S3, Secrets
Manager and the instance metadata service. One rehearsal serves every test of the module (GCP's and Azure's
rehearse the same code without the Network machine)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from providers.rehearsal import PREFIX, Rehearsal, namespaces
from tests.rehearsal.conftest import RehearsalKit

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def aws(rehearsal_kit: RehearsalKit, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rehearsal]:
    started = time.monotonic()
    rehearsal = Rehearsal(cloud="aws", work_dir=tmp_path_factory.mktemp("gridrh-aws"), venv=rehearsal_kit.venv,
                          build=rehearsal_kit.build, say=lambda text: print(text), with_network=True)
    with rehearsal:
        yield rehearsal
    print(f"aws rehearsal: {time.monotonic() - started:.0f} s {rehearsal.timings}")
    assert not [name for name in namespaces() if name.startswith(rehearsal.tag)], "namespaces left behind"


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_every_address_is_inside_the_rehearsals_own_namespaces(aws: Rehearsal) -> None:
    assert aws.network is not None
    assert all(name.startswith(f"{PREFIX}") for name in aws.network.hosts.values())
    assert set(aws.network.hosts) == {"lan", "cloud", "operator", "node", "worker1", "worker2", "network"}
    assert set(aws.network.hosts.values()) <= set(namespaces())


def test_the_units_run_as_their_users_with_their_sandboxing(aws: Rehearsal) -> None:
    node = aws.machines[0]
    by_unit = {process.label: process.popen.pid for process in node.processes}
    assert set(by_unit) == {"ray-head.service", "grid-node.service", "caddy.service"}
    grid_node = _status(by_unit["grid-node.service"])
    service_uid = str(__import__("pwd").getpwnam(aws.service_user).pw_uid)
    assert grid_node["Uid"].split()[0] == service_uid
    assert grid_node["NoNewPrivs"] == "1"  # NoNewPrivileges=true
    assert _status(by_unit["ray-head.service"])["NoNewPrivs"] == "0"  # the head's unit does not ask for it
    caddy = _status(by_unit["caddy.service"])
    assert caddy["Uid"].split()[0] == str(__import__("pwd").getpwnam("caddy").pw_uid)
    assert int(caddy["CapAmb"], 16) == 1 << 10  # AmbientCapabilities=CAP_NET_BIND_SERVICE, nothing more
    # PrivateTmp and ProtectSystem=strict: the Node's /tmp is its own, and / is read-only for it.
    mounts = Path(f"/proc/{by_unit['grid-node.service']}/mounts").read_text().splitlines()
    assert any(line.split()[1] == "/tmp" and line.split()[0] == "tmpfs" for line in mounts)
    root = next(line for line in mounts if line.split()[1] == "/")
    assert "ro" in root.split()[3].split(",")
    writable = next(line for line in mounts if line.split()[1] == "/var/lib/gridctl")
    assert "rw" in writable.split()[3].split(",")


def test_the_owner_is_set_up_over_the_pinned_tls_root_and_nothing_else_is_trusted(aws: Rehearsal) -> None:
    assert aws.owner_token and aws.ca_file is not None and aws.url == "https://192.0.2.10"
    probe = ("import httpx, ssl, sys\n"
             "pinned = ssl.create_default_context(cadata=open(sys.argv[2]).read())\n"
             "print(httpx.get(sys.argv[1] + '/api/v1/health', verify=pinned).status_code)\n"
             "try:\n    httpx.get(sys.argv[1] + '/api/v1/health', verify=True)\n    print('public CAs: trusted')\n"
             "except httpx.ConnectError as exc:\n    print('public CAs:', 'CERTIFICATE_VERIFY_FAILED' in str(exc))\n")
    done = aws.operator([sys.executable, "-c", probe, aws.url, str(aws.ca_file)], env={"SSL_CERT_FILE": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["200", "public CAs: True"]


def test_a_dp_job_on_the_two_workers_reads_the_bucket_and_the_officer_approves_its_release(aws: Rehearsal) -> None:
    started = time.monotonic()
    stdout, stderr = aws.operator_watching(
        [sys.executable, "-m", "tests.rehearsal.operator_walk", aws.url, aws.owner_token, str(aws.ca_file)],
        "", 900, env={"PYTHONPATH": str(ROOT)})
    summary = json.loads(stdout.split("SUMMARY=", 1)[1])
    print(f"aws walk-through: {time.monotonic() - started:.0f} s")
    assert len(summary["workers"]) == 2
    assert summary["job_status"] == "succeeded", summary
    assert summary["weights"] and summary["release"]["fingerprint"]
    assert summary["epsilon"] > 0 and summary["budget"]["spent_epsilon"] > 0
    # The tensors the job read are in the emulated bucket (the Node's object store is S3 only).
    listing = aws.operator([sys.executable, "-c", "import boto3, sys; r = boto3.client('s3').list_objects_v2("
                            "Bucket=sys.argv[1]); print('\\n'.join(o['Key'] for o in r.get('Contents', [])))",
                            aws.bucket])
    keys = listing.stdout.split()
    assert any(key.startswith("gridctl/build/") for key in keys)
    assert len([key for key in keys if not key.startswith("gridctl/")]) >= 1, keys


# --- the Network machine (--network) ----------------------------------------------------------------------------

HEALTH_PROBE = ("import httpx, ssl, sys\n"
                "def health(root):\n"
                "    try:\n"
                "        return httpx.get(sys.argv[1] + '/api/v1/health', verify=root).status_code\n"
                "    except httpx.ConnectError as exc:\n"
                "        return 'CERTIFICATE_VERIFY_FAILED' if 'CERTIFICATE_VERIFY_FAILED' in str(exc) else str(exc)\n"
                "print(health(ssl.create_default_context(cadata=open(sys.argv[2]).read())))\n"
                "print(health(ssl.create_default_context(cadata=open(sys.argv[3]).read())))\n"
                "print(health(True))\n")


def test_the_network_machine_runs_its_units_and_answers_over_its_own_pinned_root_only(aws: Rehearsal) -> None:
    network = next(machine for machine in aws.machines if machine.role == "network")
    assert {process.label for process in network.processes} == {"grid-network.service", "caddy.service"}
    assert aws.network_url == "https://192.0.2.11" and aws.network_owner_token
    assert aws.network_ca_file is not None and aws.ca_file is not None
    done = aws.operator([sys.executable, "-c", HEALTH_PROBE, aws.network_url, str(aws.network_ca_file),
                         str(aws.ca_file)], env={"SSL_CERT_FILE": ""})
    assert done.returncode == 0, done.stderr
    # its own root: healthy; the Node's root and the public CAs: refused (a CA of its own, as in the cloud)
    assert done.stdout.split("\n")[:3] == ["200", "CERTIFICATE_VERIFY_FAILED", "CERTIFICATE_VERIFY_FAILED"]


def test_the_node_and_the_network_reach_each_others_443_from_their_public_addresses(aws: Rehearsal) -> None:
    """The programs let each machine's public address in on the other's 443 (tests/test_programs_network.py):
    the rehearsal's machines connect from exactly those addresses."""
    assert aws.network is not None
    probe = ("import socket, sys\n"
             "with socket.create_connection((sys.argv[1], 443), timeout=10) as s: print(s.getsockname()[0])\n")
    for role, target, source in (("node", "192.0.2.11", "192.0.2.10"), ("network", "192.0.2.10", "192.0.2.11")):
        done = subprocess.run(["ip", "netns", "exec", aws.network.hosts[role], sys.executable, "-c", probe, target],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == source


def test_the_node_joins_the_network_and_both_say_approved_once(aws: Rehearsal) -> None:
    first = aws.associate()
    assert first["already"] is False
    seen = aws.associations()
    assert [(a["network_url"], a["state"]) for a in seen["node"]] == [(aws.network_url, "approved")]
    assert [(a["node_url"], a["state"]) for a in seen["network"]] == [(aws.url, "approved")]
    assert seen["node"][0]["remote_id"] == seen["network"][0]["id"] == first["network_id"]
    again = aws.associate()  # a second deploy: nothing to do
    assert again == {**first, "already": True}
    assert len(aws.associations()["network"]) == 1
    # The Network reads the Node's statistics over the Node's own root, which the join gave it.
    probe = ("import httpx, ssl, sys\n"
             "r = httpx.get(sys.argv[1] + '/api/v1/nodes/' + sys.argv[2] + '/statistics', timeout=60,\n"
             "              headers={'Authorization': 'Bearer ' + sys.argv[3]},\n"
             "              verify=ssl.create_default_context(cadata=open(sys.argv[4]).read()))\n"
             "print(r.status_code, r.json().get('node', r.text[:200]))\n")
    done = aws.operator([sys.executable, "-c", probe, aws.network_url, str(first["network_id"]),
                         aws.network_owner_token, str(aws.network_ca_file)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "200", done.stdout
