"""Issue 12: points no other test pins down (docs/clouds/issue-12-checks.md): two Measured items, driven like
tests/test_cli_deploy_cloud.py through its fake StackRunner, and the state page of What to build 5."""

from __future__ import annotations

from typing import Any

import pytest

from providers.stack import StackOutcome
from tests.clitools import Gridctl
from tests.test_cli_deploy_cloud import (  # noqa: F401  (backend, ca_pem, gridctl, machine, network_ca_pem, owner_setups: fixtures)
    FakeBackend,
    FakeRunner,
    OwnerSetups,
    backend,
    ca_pem,
    deploy,
    gridctl,
    machine,
    network_ca_pem,
    owner_setups,
)

SUBSCRIPTION = "33333333-3333-3333-3333-333333333333"


def test_a_managed_database_added_to_a_running_node_needs_a_new_node(
    gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups  # noqa: F811
) -> None:
    """Measured 9: cloud-init runs once, so --database managed on a running Node must not silently do nothing."""
    deploy(gridctl, "aws")
    refused = gridctl("deploy", "aws", "--name", "demo", "--yes", "--database", "managed")
    assert refused.exit_code == 6 and "--database changed" in refused.stderr and "--replace-node" in refused.stderr
    assert backend.operations() == ["up"]  # nothing ran
    deploy(gridctl, "aws", "--database", "managed", "--replace-node")
    assert backend.last("up").settings.managed_database is True


def test_the_azure_subscription_the_first_update_ran_in_is_kept(
    gridctl: Gridctl, backend: FakeBackend, owner_setups: OwnerSetups, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Measured 10: with no subscription named (az login's default one), the first update's is recorded."""
    up = FakeRunner.up

    def up_in_a_subscription(self: FakeRunner, on_progress: Any = None) -> StackOutcome:
        outcome = up(self, on_progress)
        outcome.outputs["subscription_id"] = SUBSCRIPTION  # what the program exports from getClientConfig
        return outcome

    monkeypatch.setattr(FakeRunner, "up", up_in_a_subscription)
    deploy(gridctl, "azure")
    assert "azure-native:subscriptionId" not in backend.last("up").config  # the first update: the CLI's default
    deploy(gridctl, "azure", "--allow-cidr", "198.51.100.0/24")  # however `az account set` moved on since
    assert backend.last("up").config["azure-native:subscriptionId"] == SUBSCRIPTION


def test_the_state_page_shows_deploys_the_cli_takes_with_a_bucket_and_a_kms_key() -> None:
    """What to build 5 (documented): every deploy docs/clouds/state.md shows parses with this CLI's options,
    gives a bucket backend and a KMS key the stack runner accepts, and the variables it names are those options'."""
    import shlex
    from pathlib import Path

    from gridctl.cli import docs
    from providers.stack import check_secrets_provider

    commands = {path: command for path, command, _ctx in docs.commands()}
    page = (Path(__file__).resolve().parent.parent / "docs" / "clouds" / "state.md").read_text()
    block = page.split("```sh\n", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    shown = [shlex.split(line) for line in block.splitlines() if line.strip()]
    assert sorted(words[2] for words in shown) == ["aws", "azure", "gcp"]
    for words in shown:
        command = commands[" ".join(words[:3])]
        given = command.make_context(" ".join(words[:3]), words[3:]).params  # an unknown option raises here
        assert given["backend_url"].split("://")[0] in ("s3", "gs", "azblob")
        assert check_secrets_provider(given["secrets_provider"]) == given["secrets_provider"]
        envvars = {param.name: param.envvar for param in command.params}
        assert (envvars["backend_url"], envvars["secrets_provider"]) == (
            "GRIDCTL_PULUMI_BACKEND", "GRIDCTL_PULUMI_SECRETS_PROVIDER")
        assert "`GRIDCTL_PULUMI_BACKEND`" in page and "`GRIDCTL_PULUMI_SECRETS_PROVIDER`" in page
