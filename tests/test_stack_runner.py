"""The StackRunner seam without the Pulumi CLI: the install hint, the passphrase, progress events."""

from __future__ import annotations

import stat
from types import SimpleNamespace

import pytest

from providers.stack import INSTALL_HINT, ProgressEvent, PulumiMissing, StackRunner, plan, to_progress


def runner(tmp_path, **kwargs) -> StackRunner:
    return StackRunner(project="gridctl", stack="demo", state_dir=tmp_path / "demo", program=lambda: None, **kwargs)


def event(**parts) -> SimpleNamespace:
    fields = ("resource_pre_event", "res_outputs_event", "res_op_failed_event", "diagnostic_event", "summary_event")
    return SimpleNamespace(**{name: parts.get(name) for name in fields})


def step(op: str) -> SimpleNamespace:
    return SimpleNamespace(
        metadata=SimpleNamespace(
            op=op, type="aws:ec2/vpc:Vpc", urn="urn:pulumi:demo::gridctl::aws:ec2/vpc:Vpc::demo-net-vpc"
        )
    )


class TestWithoutThePulumiCli:
    def test_every_operation_says_how_to_install_it(self, tmp_path, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))
        for operation in ("preview", "up", "destroy", "outputs"):
            with pytest.raises(PulumiMissing) as caught:
                getattr(runner(tmp_path), operation)()
            assert "get.pulumi.com" in str(caught.value) and caught.value.code == "unavailable"
        assert "pulumi version" in INSTALL_HINT


class TestBackend:
    def test_defaults_to_a_file_backend_under_the_state_dir(self, tmp_path):
        assert runner(tmp_path).backend_url == f"file://{tmp_path / 'demo' / 'pulumi' / 'state'}"

    def test_takes_the_operators_backend_url(self, tmp_path):
        assert runner(tmp_path, backend_url="s3://my-state").backend_url == "s3://my-state"

    def test_the_passphrase_is_generated_once_and_kept_owner_only(self, tmp_path):
        first = runner(tmp_path).passphrase()
        assert len(first) >= 40 and runner(tmp_path).passphrase() == first
        path = tmp_path / "demo" / "pulumi-passphrase"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "demo").stat().st_mode) == 0o700


class TestSecretsProvider:
    """Issue 12, What to build 5: state that survives a lost laptop (a bucket backend, a KMS key)."""

    def test_by_default_a_passphrase_kept_in_the_state_dir_encrypts_the_secrets(self, tmp_path):
        options = runner(tmp_path).workspace_options()
        assert options.secrets_provider == "passphrase"
        assert options.env_vars["PULUMI_CONFIG_PASSPHRASE"] == runner(tmp_path).passphrase()

    @pytest.mark.parametrize("key", [
        "awskms://alias/gridctl-state?region=eu-west-1",
        "gcpkms://projects/p/locations/global/keyRings/gridctl/cryptoKeys/state",
        "azurekeyvault://gridctl-state.vault.azure.net/keys/state",
    ])
    def test_a_kms_key_replaces_the_passphrase_with_a_bucket_backend(self, tmp_path, key):
        options = runner(tmp_path, backend_url="s3://operator-state", secrets_provider=key).workspace_options()
        assert options.secrets_provider == key
        assert "PULUMI_CONFIG_PASSPHRASE" not in options.env_vars
        assert options.project_settings.backend.url == "s3://operator-state"
        assert not (tmp_path / "demo" / "pulumi-passphrase").exists()  # nothing to lose with the laptop

    def test_a_secrets_provider_that_is_not_a_kms_key_is_refused(self, tmp_path):
        with pytest.raises(Exception, match="give a KMS key URL") as caught:
            runner(tmp_path, secrets_provider="passphrase-in-my-head")
        assert caught.value.code == "usage"


class TestProgress:
    def test_a_resource_step_names_the_action_and_resource(self):
        progress = to_progress(event(resource_pre_event=step("create")))
        assert progress == ProgressEvent(
            "step",
            "create aws:ec2/vpc:Vpc demo-net-vpc",
            action="create",
            resource_type="aws:ec2/vpc:Vpc",
            resource_name="demo-net-vpc",
        )

    def test_unchanged_resources_are_not_shown(self):
        assert to_progress(event(resource_pre_event=step("same"))) is None

    def test_a_summary_counts_changes(self):
        progress = to_progress(event(summary_event=SimpleNamespace(resource_changes={"create": 3, "same": 2})))
        assert progress == ProgressEvent("summary", "3 create, 2 same")

    def test_diagnostics_keep_their_severity(self):
        diagnostic = SimpleNamespace(message="quota exceeded\n", severity="error", ephemeral=False, urn=None)
        assert to_progress(event(diagnostic_event=diagnostic)) == ProgressEvent(
            "diagnostic", "quota exceeded", severity="error"
        )


class TestPlan:
    def test_a_data_source_without_an_offline_answer_is_a_clear_error(self):
        import pulumi_aws as aws

        def program() -> None:
            aws.get_availability_zones_output()

        with pytest.raises(Exception, match="no offline answer for the data source aws:index/getAvailabilityZones"):
            plan(program, project="gridctl", stack="demo")
