"""Turn the settings and the Airflow connections into a task's :class:`~nightshift.backends.Backends`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nightshift.settings import env_connection, settings

if TYPE_CHECKING:  # pyarrow is heavy: imported when a task needs a store, not at parse time
    from nightshift.backends import Backends
    from nightshift.storage import StorageOptions, Store

DEFAULT_AWS_CONN_ID = "aws_default"
DEFAULT_MLFLOW_CONN_ID = "mlflow_default"


def aws_conn_id() -> str:
    return settings().aws_conn_id


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


def mlflow_connection_uri() -> str | None:
    """The tracking URI of the ``mlflow_default`` connection (``$NIGHTSHIFT_MLFLOW_CONN_ID``) unless
    ``$MLFLOW_TRACKING_URI`` is set (then that); ``None`` for the embedded default.

    The connection's host/port/schema give ``http://host:port/path``; an ``extra`` of
    ``{"tracking_uri": ...}`` is taken as is.
    """
    s = settings()
    if s.mlflow_tracking_uri:
        return s.mlflow_tracking_uri
    conn_id = s.mlflow_conn_id
    if not env_connection(conn_id) and conn_id == DEFAULT_MLFLOW_CONN_ID:
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
    return str(uri)


def use_mlflow_connection() -> str | None:
    """Make :func:`mlflow_connection_uri` this process's tracking URI (:func:`nightshift.registry.use`;
    mlflow itself is pointed there when a client is made, :func:`nightshift.registry.connect`);
    the URI, or ``None`` for the embedded default."""
    from nightshift import registry

    uri = mlflow_connection_uri()
    registry.use(uri)  # None: the embedded default (nothing chosen by an earlier task stays)
    return uri


def store_of(url: str | None = None, conn_id: str | None = None) -> Store:
    """The store at ``url`` (default ``$NIGHTSHIFT_STORE_URL``); S3 goes through the connection."""
    from nightshift.storage import Store, default_store_url

    url = url or default_store_url()
    if url.startswith("s3://"):
        return Store(url, storage_options(conn_id or aws_conn_id()))
    return Store(url)


def task_backends(url: str | None = None, conn_id: str | None = None) -> Backends:
    """A task's backends, built once at its start: the store (:func:`store_of`), MLflow at the
    connection's URI (:func:`use_mlflow_connection`), the wall clock, the configured channels."""
    from nightshift import registry
    from nightshift.backends import Backends

    uri = use_mlflow_connection()
    return Backends(store_of(url, conn_id), uri or registry.tracking_uri())


def get_store(url: str | None = None, conn_id: str | None = None) -> Store:
    """:func:`task_backends`' store (MLflow pointed at its connection too), for callers that need
    only the store (sensors, the plugin's pages)."""
    return task_backends(url, conn_id).store
