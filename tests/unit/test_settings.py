"""The settings model: one validated reading of the environment, errors that name the variable
and never show a secret, and the cache that follows a changed environment."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nightshift import settings as s
from nightshift.backends import Backends, as_backends
from nightshift.notify import Channels, NotifyError
from nightshift.storage import Store


def test_defaults_are_the_documented_ones() -> None:
    got = s.Settings.from_env({})
    assert got.home == Path(".nightshift") and got.store_url is None
    assert got.retry_delay_s == 60 and got.ingest_schedule == "0 0 * * *"
    assert (got.aws_conn_id, got.mlflow_conn_id) == ("aws_default", "mlflow_default")
    assert (got.device, got.require_gpu, got.gx_engine) == ("auto", False, "auto")
    assert (
        got.notify_webhook is None and got.email_to == () and got.notify_email_from == "nightshift@localhost"
    )
    assert got.api_base == "http://127.0.0.1:8080"


def test_values_are_parsed_and_typed() -> None:
    got = s.Settings.from_env(
        {
            "NIGHTSHIFT_HOME": "/tmp/h",
            "NIGHTSHIFT_RETRY_DELAY_S": " 5 ",
            "NIGHTSHIFT_REQUIRE_GPU": "Yes",
            "NIGHTSHIFT_DEVICE": "CPU",
            "NIGHTSHIFT_DATASETS": "a, b,,",
            "NIGHTSHIFT_NOTIFY_EMAIL_TO": "x@example.com, y@example.com",
            "NIGHTSHIFT_STORE_URL": "",  # empty: unset
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
            "UNRELATED": "ignored",
        }
    )
    assert got.home == Path("/tmp/h") and got.retry_delay_s == 5 and got.require_gpu is True
    assert got.device == "cpu" and got.dataset_names == ["a", "b"] and got.store_url is None
    assert got.email_to == ("x@example.com", "y@example.com")
    assert got.mlflow_tracking_uri == "http://127.0.0.1:5000" and got.s3_endpoint == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"NIGHTSHIFT_RETRY_DELAY_S": "soon"},
            r"\$NIGHTSHIFT_RETRY_DELAY_S: .*valid integer.*\(got 'soon'\)",
        ),
        ({"NIGHTSHIFT_RETRY_DELAY_S": "-1"}, r"\$NIGHTSHIFT_RETRY_DELAY_S: .*greater than or equal to 0"),
        ({"NIGHTSHIFT_AWS_CONN_ID": "   "}, r"\$NIGHTSHIFT_AWS_CONN_ID: .*at least 1 character"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_problem(env: dict[str, str], says: str) -> None:
    with pytest.raises(s.SettingsError, match=says):
        s.Settings.from_env(env)


def test_every_bad_value_is_named_at_once() -> None:
    with pytest.raises(s.SettingsError) as err:
        s.Settings.from_env({"NIGHTSHIFT_RETRY_DELAY_S": "x", "NIGHTSHIFT_MLFLOW_CONN_ID": " "})
    assert "NIGHTSHIFT_RETRY_DELAY_S" in str(err.value) and "NIGHTSHIFT_MLFLOW_CONN_ID" in str(err.value)


def test_a_secret_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    token = "https://hooks.example.com/T0K3N-s3cret"
    got = s.Settings.from_env(
        {"NIGHTSHIFT_NOTIFY_WEBHOOK": token, "NIGHTSHIFT_NOTIFY_SMTP": "smtp://u:pw@h:25"}
    )
    assert "T0K3N" not in repr(got) and "pw@" not in repr(got) and "T0K3N" not in str(got)
    assert got.notify_webhook is not None and got.notify_webhook.get_secret_value() == token
    # a settings error elsewhere in the same environment shows no secret either
    with pytest.raises(s.SettingsError) as err:
        s.Settings.from_env({"NIGHTSHIFT_NOTIFY_WEBHOOK": token, "NIGHTSHIFT_RETRY_DELAY_S": "x"})
    assert "T0K3N" not in str(err.value)


def test_the_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIGHTSHIFT_RETRY_DELAY_S", "7")
    first = s.settings()
    assert first.retry_delay_s == 7 and s.settings() is first  # parsed once
    monkeypatch.setenv("NIGHTSHIFT_RETRY_DELAY_S", "8")
    assert s.settings().retry_delay_s == 8
    s.reset()
    assert s.settings().retry_delay_s == 8
    monkeypatch.setenv("NIGHTSHIFT_RETRY_DELAY_S", "nope")
    with pytest.raises(s.SettingsError, match="NIGHTSHIFT_RETRY_DELAY_S"):
        s.settings()


def test_an_override_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NIGHTSHIFT_MLFLOW_ARTIFACTS", raising=False)
    with s.overridden(mlflow_artifacts="file:///tmp/a") as o:
        assert s.settings() is o and o.mlflow_artifacts == "file:///tmp/a"
    assert s.settings().mlflow_artifacts is None


def test_notify_channels_come_from_the_settings() -> None:
    ch = Channels.from_settings(
        s.Settings.from_env(
            {"NIGHTSHIFT_NOTIFY_WEBHOOK": "http://127.0.0.1:1/h", "NIGHTSHIFT_NOTIFY_EMAIL_TO": "a@b"}
        )
    )
    assert ch.webhook == "http://127.0.0.1:1/h" and ch.email_to == ("a@b",) and ch.smtp is None
    with pytest.raises(NotifyError, match="NIGHTSHIFT_NOTIFY_EMAIL_TO is empty"):
        Channels.from_settings(s.Settings.from_env({"NIGHTSHIFT_NOTIFY_SMTP": "smtp://127.0.0.1:25"}))


def test_backends_carry_a_pinned_clock(tmp_path: Path) -> None:
    pinned = datetime(2026, 3, 1, 12, tzinfo=UTC)
    store = Store(tmp_path.as_uri())
    b = Backends(store, f"sqlite:///{tmp_path / 'mlflow.db'}", clock=lambda: pinned)
    assert b.now() == pinned and as_backends(b) is b
    wrapped = as_backends(store)
    assert wrapped.store is store and wrapped.now().tzinfo is not None


def test_a_task_takes_mlflow_from_its_connection_without_touching_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift import registry
    from nightshift.airflow.store import get_store, task_backends

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_DEFAULT", '{"conn_type": "http", "host": "127.0.0.1", "port": 5999}'
    )
    before = dict(os.environ)
    try:
        b = task_backends(tmp_path.as_uri())
        assert b.tracking_uri == "http://127.0.0.1:5999" and b.store.url == tmp_path.as_uri()
        assert registry.tracking_uri() == "http://127.0.0.1:5999"  # the registry's messages and links
        get_store(tmp_path.as_uri())
        assert dict(os.environ) == before  # no MLFLOW_TRACKING_URI written for the next task
    finally:
        registry.use(None)
