"""The Azure provider: a deployment is the stack of ``providers/azure/program.py`` (see
providers/cloud_provider.py).

Importing this module raises ImportError when the ``azure`` extra is missing, so the registry hides the provider.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from providers import cloud
from providers.azure import config
from providers.base import DeploymentRecord, DeploymentSpec, ProviderError
from providers.cloud import CloudSettings
from providers.cloud_provider import CloudProvider, any_env, home_file, require_modules

require_modules("azure", "pulumi", "pulumi_azure_native")

ARM_SCOPE = "https://management.azure.com/.default"


def azure_dir() -> Path:
    return Path(os.environ.get("AZURE_CONFIG_DIR") or home_file(".azure"))


def throwaway_public_key() -> str:
    """Azure refuses a Linux VM without an SSH key: a fresh RSA key whose private half is never kept (and no
    rule opens port 22 unless --ssh-cidr asks)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " gridctl-throwaway"


class AzureProvider(CloudProvider):
    name = "azure"
    config: ClassVar[ModuleType] = config

    def credential_problem(self) -> str | None:
        if any_env(config.CREDENTIAL_ENV):
            return None
        directory = azure_dir()
        if (directory / "msal_token_cache.json").is_file() or (directory / "azureProfile.json").is_file():
            return None
        return ("no Azure credentials found: run 'az login', or set ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID/"
                "ARM_SUBSCRIPTION_ID for a service principal")

    def identity_problem(self) -> str | None:
        """Get an Azure Resource Manager token with azure-identity's default chain (az login, a service
        principal, a managed identity): a token cache file alone proves nothing."""
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential

        try:
            DefaultAzureCredential().get_token(ARM_SCOPE)
        except ClientAuthenticationError as exc:
            first = (exc.message or str(exc)).strip().splitlines()[0]
            return f"Azure did not accept these credentials (azure-identity): {first}"
        return None

    def new_state(self, spec: DeploymentSpec) -> dict[str, Any]:
        state = {**super().new_state(spec), "admin_public_key": throwaway_public_key()}
        subscription = any_env(config.SUBSCRIPTION_ENV)
        if subscription:  # recorded: the deployment stays in this subscription whatever the shell says later
            state["subscription"] = os.environ[subscription]
        return state

    def extra_settings(self, spec: DeploymentSpec, state: Mapping[str, Any], *, offline: bool) -> dict[str, Any]:
        subscription = state.get("subscription")
        if not subscription and (variable := any_env(config.SUBSCRIPTION_ENV)):
            subscription = os.environ[variable]
        return {"admin_public_key": state.get("admin_public_key"), "subscription": subscription}

    def remember_outputs(self, record: DeploymentRecord, outputs: Mapping[str, Any]) -> None:
        """The subscription the first update ran in (the CLI's default one when none was named)."""
        if not record.settings.get("subscription") and outputs.get("subscription_id"):
            record.settings["subscription"] = str(outputs["subscription_id"])

    def stack_config(self, settings: CloudSettings) -> dict[str, str]:
        values = {"azure-native:location": settings.region}
        if settings.subscription:
            values["azure-native:subscriptionId"] = settings.subscription
        return values

    def console_output(self, settings: CloudSettings, outputs: Mapping[str, Any]) -> str | None:
        """The Node VM's serial log from boot diagnostics (retrieveBootDiagnosticsData, then its blob)."""
        import httpx
        from azure.identity import DefaultAzureCredential

        subscription = settings.subscription or outputs.get("subscription_id")
        group, vm = outputs.get("resource_group") or config.resource_group(settings), outputs.get("node_vm")
        if not subscription or not vm:
            return None
        token = DefaultAzureCredential().get_token(ARM_SCOPE).token
        url = (f"https://management.azure.com/subscriptions/{subscription}/resourceGroups/{group}/providers/"
               f"Microsoft.Compute/virtualMachines/{vm}/retrieveBootDiagnosticsData?api-version=2024-03-01")
        answer = httpx.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if not answer.is_success:
            raise ProviderError(f"boot diagnostics of {vm}: HTTP {answer.status_code}")
        log_url = answer.json().get("serialConsoleLogBlobUri")
        if not log_url:
            return None
        log = httpx.get(log_url, timeout=30)  # a short-lived SAS URL Azure just made
        return log.text if log.is_success else None

    def fetch_root_certificate(self, settings: CloudSettings, outputs: Mapping[str, Any],
                               role: str = "node") -> bytes | None:
        import httpx
        from azure.core.exceptions import ClientAuthenticationError
        from azure.identity import DefaultAzureCredential

        key = cloud.ca_object(role)
        account = str(outputs.get("storage_account") or config.storage_account(settings))
        try:
            token = DefaultAzureCredential().get_token("https://storage.azure.com/.default").token
        except ClientAuthenticationError as exc:
            raise ProviderError(f"Azure credentials: {exc.message}") from None
        url = f"https://{account}.blob.core.windows.net/{config.CONTAINER}/{key}"
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}", "x-ms-version": "2021-08-06"},
                             timeout=30)
        if response.status_code == 404:
            return None
        if response.status_code == 403:
            raise ProviderError(
                f"reading {url} was refused: your account needs the 'Storage Blob Data Reader' role on the storage "
                f"account {account} (shared keys are disabled on it)")
        if not response.is_success:
            raise ProviderError(f"reading {url} failed: HTTP {response.status_code}")
        return response.content
