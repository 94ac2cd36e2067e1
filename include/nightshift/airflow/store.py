"""Turn environment settings and Airflow connections into a core :class:`Store`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow is heavy: imported when a task needs a store, not at parse time
    from nightshift.storage import StorageOptions, Store

DEFAULT_AWS_CONN_ID = "aws_default"


def aws_conn_id() -> str:
    return os.environ.get("NIGHTSHIFT_AWS_CONN_ID", DEFAULT_AWS_CONN_ID)


def storage_options(conn_id: str) -> StorageOptions:
    """Credentials, region and endpoint from an Amazon provider connection."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    from nightshift.storage import StorageOptions

    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    creds = hook.get_credentials()
    return StorageOptions(
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        session_token=creds.token,
        region=hook.region_name,
        endpoint_url=hook.conn_config.endpoint_url,
    )


def get_store(url: str | None = None, conn_id: str | None = None) -> Store:
    """The store at ``url`` (default ``$NIGHTSHIFT_STORE_URL``); S3 goes through the connection."""
    from nightshift.storage import Store, default_store_url

    url = url or default_store_url()
    if url.startswith("s3://"):
        return Store(url, storage_options(conn_id or aws_conn_id()))
    return Store(url)
