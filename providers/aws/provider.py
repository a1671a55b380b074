"""The AWS provider: a deployment is the stack of ``providers/aws/program.py`` (see providers/cloud_provider.py).

Importing this module raises ImportError when the ``aws`` extra is missing, so the registry hides the provider.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

from providers.aws import config
from providers.cloud import CloudSettings
from providers.cloud_provider import CloudProvider, any_env, home_file, require_modules

require_modules("aws", "pulumi", "pulumi_aws")


class AwsProvider(CloudProvider):
    name = "aws"
    config: ClassVar[ModuleType] = config
    program_module = "providers.aws.program"
    default_region: ClassVar[str] = config.DEFAULT_REGION

    def credential_problem(self) -> str | None:
        if any_env(config.CREDENTIAL_ENV):
            return None
        files = [os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or home_file(".aws", "credentials"),
                 os.environ.get("AWS_CONFIG_FILE") or home_file(".aws", "config")]
        if any(os.path.isfile(path) for path in files):
            return None
        return ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                "or run 'aws configure' (or 'aws sso login')")

    def stack_config(self, settings: CloudSettings) -> dict[str, str]:
        return {"aws:region": settings.region}

    def fetch_root_certificate(self, settings: CloudSettings, outputs: Mapping[str, Any]) -> bytes | None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        from providers.base import ProviderError

        bucket = str(outputs.get("bucket") or config.bucket_name(settings))
        try:
            body = boto3.client("s3", region_name=settings.region).get_object(Bucket=bucket, Key=config.CA_OBJECT)
            return bytes(body["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise ProviderError(f"reading s3://{bucket}/{config.CA_OBJECT} failed: {exc}") from None
        except BotoCoreError as exc:
            raise ProviderError(f"reading s3://{bucket}/{config.CA_OBJECT} failed: {exc}") from None
