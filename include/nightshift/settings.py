"""Every ``NIGHTSHIFT_*`` setting the package reads, in one validated model (docs/configuration.md).

This is the one module of ``nightshift`` that reads the process environment (``tests/unit/
test_layers.py`` holds the others to it): :func:`settings` parses it into a :class:`Settings`,
once for a given environment (a changed environment, as a test's ``monkeypatch.setenv`` makes, is
read again; :func:`reset` drops the cache), and a bad value raises :class:`SettingsError`
naming the variable and what is wrong with it, never the value of a secret. The few variables
of other tools that the package honours (``MLFLOW_TRACKING_URI``, ``AIRFLOW__API__BASE_URL``, the
S3 endpoint boto3 reads, ...) are read here too, under their own names.

The device and GX engine choices are validated where they are used (``train.choose_device``,
``validate.gx_engine``), so a worker with a bad one fails its training or validation with that
step's error rather than every DAG file at parse time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from nightshift.errors import DataError

PREFIX = "NIGHTSHIFT_"
DEFAULT_STATE_DIR = ".nightshift"
DEFAULT_API = "http://127.0.0.1:8080"
# other tools' variables that the package honours, read here under their own names
FOREIGN = (
    "MLFLOW_TRACKING_URI",
    "AIRFLOW__API__BASE_URL",
    "AIRFLOW_HOME",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
)


class SettingsError(DataError, ValueError):
    """A setting has a value the package cannot use; the message names the variable."""


def _foreign(name: str) -> Any:
    return Field(default=None, validation_alias=AliasChoices(name))


class Settings(BaseSettings):
    """The package's settings: field ``x`` is ``$NIGHTSHIFT_X`` (an empty value counts as unset)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        env_ignore_empty=True,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        str_strip_whitespace=True,
    )

    # where things live
    home: Path = Path(DEFAULT_STATE_DIR)
    store_url: str | None = None
    datasets: str | None = None  # comma-separated dataset names the DAG files are built for
    datasets_dir: Path | None = None  # read by spec.default_datasets_dir itself (the packaged model)
    gx_dir: Path | None = None
    # Airflow
    aws_conn_id: str = Field(default="aws_default", min_length=1)
    mlflow_conn_id: str = Field(default="mlflow_default", min_length=1)
    retry_delay_s: int = Field(default=60, ge=0)
    ingest_schedule: str = "0 0 * * *"
    worker_name: str | None = None
    # MLflow
    mlflow_artifacts: str | None = None
    mlflow_ui_url: str | None = None
    code_version: str | None = None
    # notifications (the webhook URL carries its token; the SMTP URL may carry a password)
    notify_webhook: SecretStr | None = None
    notify_smtp: SecretStr | None = None
    notify_email_to: str = ""
    notify_email_from: str = "nightshift@localhost"
    # training and validation (checked where used, see the module's docstring)
    device: str = "auto"
    require_gpu: bool = False
    gx_engine: str = "auto"
    # other tools' variables
    mlflow_tracking_uri: str | None = _foreign("MLFLOW_TRACKING_URI")
    airflow_api_base_url: str | None = _foreign("AIRFLOW__API__BASE_URL")
    airflow_home: Path | None = _foreign("AIRFLOW_HOME")
    simple_auth_passwords_file: Path | None = _foreign("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    aws_endpoint_url_s3: str | None = _foreign("AWS_ENDPOINT_URL_S3")
    aws_endpoint_url: str | None = _foreign("AWS_ENDPOINT_URL")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # :meth:`from_env` hands over the environment it read (the snapshot :func:`settings` caches
        # on), so pydantic-settings' own environment, dotenv and secrets sources stay out
        return (init_settings,)

    @field_validator("require_gpu", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> Any:
        # the historical reading: 1/true/yes (any case) switch it on, anything else leaves it off
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return value

    @field_validator("device", "gx_engine", mode="before")
    @classmethod
    def _choice(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Parse ``environ`` (default: the process environment); :class:`SettingsError` if a value
        is unusable. Only ``NIGHTSHIFT_*`` and the variables in :data:`FOREIGN` are looked at."""
        env = _relevant(os.environ if environ is None else environ)
        fields: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            var = _variable(name, info)
            if env.get(var):
                fields[name] = env[var]
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    # ---- derived values -------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    @property
    def dataset_names(self) -> list[str]:
        return [n.strip() for n in (self.datasets or "").split(",") if n.strip()]

    @property
    def email_to(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.notify_email_to.split(",") if a.strip())

    @property
    def api_base(self) -> str:
        return (self.airflow_api_base_url or DEFAULT_API).rstrip("/")

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 endpoint boto3 would use (``$AWS_ENDPOINT_URL_S3``, else ``$AWS_ENDPOINT_URL``)."""
        return self.aws_endpoint_url_s3 or self.aws_endpoint_url


def _variable(name: str, info: Any) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return PREFIX + name.upper()


def variable(name: str) -> str:
    """The environment variable of field ``name`` (``store_url`` -> ``NIGHTSHIFT_STORE_URL``)."""
    return _variable(name, Settings.model_fields[name])


def _secret(name: str) -> bool:
    return Settings.model_fields[name].annotation in (SecretStr, SecretStr | None)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else ""
        known = name in Settings.model_fields
        shown = "" if not known or _secret(name) else f" (got {err['input']!r})"  # a secret is never shown
        parts.append(f"${variable(name) if known else name}: {err['msg']}{shown}")
    return "bad setting: " + "; ".join(parts)


def _relevant(environ: Any) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(PREFIX) or k in FOREIGN}


_cache: tuple[dict[str, str], Settings] | None = None
_override: list[Settings] = []


def settings() -> Settings:
    """The settings of this process: parsed once per environment (see the module's docstring)."""
    global _cache
    if _override:
        return _override[-1]
    env = _relevant(os.environ)
    if _cache is None or _cache[0] != env:
        _cache = (env, Settings.from_env(env))
    return _cache[1]


def reset() -> None:
    """Forget the parsed settings (the next :func:`settings` reads the environment again)."""
    global _cache
    _cache = None


@contextlib.contextmanager
def overridden(**changes: Any) -> Iterator[Settings]:
    """The current settings with ``changes`` for the duration (e.g. a backtest's own registry),
    without touching the environment."""
    current = settings()
    changed = current.model_copy(update=changes)
    _override.append(changed)
    try:
        yield changed
    finally:
        _override.remove(changed)


def env_connection(conn_id: str) -> bool:
    """Whether an ``AIRFLOW_CONN_<ID>`` variable defines connection ``conn_id``."""
    return bool(os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}"))


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment plus ``extra``, for a subprocess that must inherit it."""
    return {**os.environ, **extra}


def library_defaults(**values: str) -> None:
    """Defaults for libraries that read their knobs only from the environment (MLflow's HTTP
    retries, GX's analytics): set unless the operator set them. The one write to the
    environment in the package, always ``setdefault``."""
    for name, value in values.items():
        os.environ.setdefault(name, value)


MLFLOW_CLIENT = {
    # MLflow's default retry schedule waits minutes on a dead server; Airflow retries the task
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
