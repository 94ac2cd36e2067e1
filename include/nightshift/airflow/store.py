"""Turn environment settings and Airflow connections into a core :class:`Store`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pyarrow is heavy: imported when a task needs a store, not at parse time
    from nightshift.storage import StorageOptions, Store

DEFAULT_AWS_CONN_ID = "aws_default"
DEFAULT_MLFLOW_CONN_ID = "mlflow_default"


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


def use_mlflow_connection() -> str | None:
    """Point MLflow at the ``mlflow_default`` connection (``$NIGHTSHIFT_MLFLOW_CONN_ID``) unless
    ``$MLFLOW_TRACKING_URI`` is set; the URI in use, or ``None`` for the embedded default.

    The connection's host/port/schema give ``http://host:port/path``; an ``extra`` of
    ``{"tracking_uri": ...}`` is taken as is.
    """
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    conn_id = os.environ.get("NIGHTSHIFT_MLFLOW_CONN_ID", DEFAULT_MLFLOW_CONN_ID)
    if not os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") and conn_id == DEFAULT_MLFLOW_CONN_ID:
        # not configured: skip a lookup that would log "connection not found" on every task
        return None
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    uri = conn.extra_dejson.get("tracking_uri")
    if not uri:
        scheme = "https" if conn.conn_type == "https" else "http"
        port = f":{conn.port}" if conn.port else ""
        path = f"/{conn.schema.strip('/')}" if conn.schema else ""
        uri = f"{scheme}://{conn.host}{port}{path}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def get_store(url: str | None = None, conn_id: str | None = None) -> Store:
    """The store at ``url`` (default ``$NIGHTSHIFT_STORE_URL``); S3 goes through the connection.

    Also applies the MLflow connection (:func:`use_mlflow_connection`): every task that reaches
    the registry gets its store first."""
    from nightshift.storage import Store, default_store_url

    use_mlflow_connection()

    url = url or default_store_url()
    if url.startswith("s3://"):
        return Store(url, storage_options(conn_id or aws_conn_id()))
    return Store(url)
