"""The AWS provider: a deployment is the stack of ``providers/aws/program.py`` (see providers/cloud_provider.py).

Importing this module raises ImportError when the ``aws`` extra is missing, so the registry hides the provider.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

from providers import cloud
from providers.aws import config
from providers.cloud import CloudSettings
from providers.cloud_provider import CloudProvider, any_env, home_file, require_modules

require_modules("aws", "pulumi", "pulumi_aws")


class AwsProvider(CloudProvider):
    name = "aws"
    config: ClassVar[ModuleType] = config

    def credential_problem(self) -> str | None:
        if any_env(config.CREDENTIAL_ENV):
            return None
        files = [os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or home_file(".aws", "credentials"),
                 os.environ.get("AWS_CONFIG_FILE") or home_file(".aws", "config")]
        if any(os.path.isfile(path) for path in files):
            return None
        return ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or run 'aws configure' (or 'aws sso login')")

    def identity_problem(self) -> str | None:
        """Ask STS who these credentials are (``sts get-caller-identity``): a config file alone proves nothing."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or config.DEFAULT_REGION
        try:
            boto3.client("sts", region_name=region, config=Config(
                connect_timeout=5, read_timeout=10, retries={"max_attempts": 1})).get_caller_identity()
        except (BotoCoreError, ClientError) as exc:
            return f"AWS did not accept these credentials (sts get-caller-identity): {exc}"
        return None

    def console_output(self, settings: CloudSettings, outputs: Mapping[str, Any]) -> str | None:
        """The Node instance's console output (EC2 GetConsoleOutput, the latest)."""
        import boto3

        instance_id = outputs.get("node_instance_id")
        if not instance_id:
            return None
        answer = boto3.client("ec2", region_name=settings.region).get_console_output(
            InstanceId=str(instance_id), Latest=True)
        return str(answer.get("Output") or "") or None

    def stack_config(self, settings: CloudSettings) -> dict[str, str]:
        return {"aws:region": settings.region}

    def fetch_root_certificate(self, settings: CloudSettings, outputs: Mapping[str, Any],
                               role: str = "node") -> bytes | None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        from providers.base import ProviderError

        key = cloud.ca_object(role)
        bucket = str(outputs.get("bucket") or config.bucket_name(settings))
        try:
            body = boto3.client("s3", region_name=settings.region).get_object(Bucket=bucket, Key=key)
            return bytes(body["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise ProviderError(f"reading s3://{bucket}/{key} failed: {exc}") from None
        except BotoCoreError as exc:
            raise ProviderError(f"reading s3://{bucket}/{key} failed: {exc}") from None
