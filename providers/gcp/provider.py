"""The GCP provider: a deployment is the stack of ``providers/gcp/program.py`` (see providers/cloud_provider.py).

Importing this module raises ImportError when the ``gcp`` extra is missing, so the registry hides the provider.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import quote

from providers import cloud
from providers.base import DeploymentSpec, ProviderError
from providers.cloud import CloudSettings
from providers.cloud_provider import PLACEHOLDER_PROJECT, CloudProvider, any_env, home_file, require_modules
from providers.gcp import config

require_modules("gcp", "pulumi", "pulumi_gcp")


def gcloud_dir() -> Path:
    return Path(os.environ.get("CLOUDSDK_CONFIG") or home_file(".config", "gcloud"))


def gcloud_project() -> str | None:
    """The project of gcloud's active configuration, if any."""
    directory = gcloud_dir()
    active = directory / "active_config"
    name = active.read_text().strip() if active.is_file() else "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(directory / "configurations" / f"config_{name}")
    except configparser.Error:
        return None
    return parser.get("core", "project", fallback=None) or None


def default_project() -> str | None:
    variable = any_env(config.PROJECT_ENV)
    return os.environ[variable] if variable else gcloud_project()


class GcpProvider(CloudProvider):
    name = "gcp"
    config: ClassVar[ModuleType] = config

    def credential_problem(self) -> str | None:
        if any_env(config.CREDENTIAL_ENV) or (gcloud_dir() / "application_default_credentials.json").is_file():
            return None
        return ("no Google Cloud credentials found: run 'gcloud auth application-default login' or set "
                "GOOGLE_APPLICATION_CREDENTIALS to a key file")

    def identity_problem(self) -> str | None:
        """Load Application Default Credentials and get a token with them: a file alone proves nothing."""
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            return f"Google Cloud did not accept these credentials (application default credentials): {exc}"
        return None

    def console_output(self, settings: CloudSettings, outputs: Mapping[str, Any]) -> str | None:
        """The Node instance's serial port 1 (cloud-init and the services log there)."""
        import httpx

        zone, instance = outputs.get("zone"), outputs.get("node_instance")
        if not zone or not instance:
            return None
        url = (f"https://compute.googleapis.com/compute/v1/projects/{settings.project}/zones/{zone}/instances/"
               f"{instance}/serialPort?port=1")
        response = httpx.get(url, headers={"Authorization": f"Bearer {self._token()}"}, timeout=30)
        if not response.is_success:
            raise ProviderError(f"reading the serial port of {instance} failed: HTTP {response.status_code}")
        return str(response.json().get("contents") or "") or None

    @staticmethod
    def _token() -> str:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise ProviderError(f"Google Cloud credentials: {exc}") from None
        return str(credentials.token)

    def extra_settings(self, spec: DeploymentSpec, state: Mapping[str, Any], *, offline: bool) -> dict[str, Any]:
        project = spec.project or default_project()
        if not project:
            if not offline:
                raise ProviderError("a GCP deployment needs a project: --project, GOOGLE_CLOUD_PROJECT, or "
                                    "'gcloud config set project ...'", code="usage")
            project = PLACEHOLDER_PROJECT
        spec.project = project  # remembered: the deployment stays in this project
        return {"project": project}

    def stack_config(self, settings: CloudSettings) -> dict[str, str]:
        assert settings.project
        return {"gcp:project": settings.project, "gcp:region": settings.region}

    def fetch_root_certificate(self, settings: CloudSettings, outputs: Mapping[str, Any],
                               role: str = "node") -> bytes | None:
        import google.auth
        import google.auth.exceptions
        import google.auth.transport.requests
        import httpx

        key = cloud.ca_object(role)
        bucket = str(outputs.get("bucket") or config.bucket_name(settings))
        try:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_only"])
            credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as exc:
            raise ProviderError(f"Google Cloud credentials: {exc}") from None
        url = f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{quote(key, safe='')}?alt=media"
        response = httpx.get(url, headers={"Authorization": f"Bearer {credentials.token}"}, timeout=30)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ProviderError(f"reading gs://{bucket}/{key} failed: HTTP {response.status_code}")
        return response.content
