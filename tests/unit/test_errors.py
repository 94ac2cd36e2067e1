"""The error family (data errors fail at once, service errors retry) and its one mapping to
Airflow's outcomes (``nightshift.airflow.errors.map_errors``)."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from nightshift.airflow.errors import map_errors
from nightshift.airflow.notify import Quarantined
from nightshift.errors import DataError, NightshiftError, ServiceError, retryable
from nightshift.features import FeatureError
from nightshift.infer import InferError
from nightshift.ingest import LandingIncomplete, NoLandingData, StagingError
from nightshift.monitor import MonitoringError
from nightshift.notify import NotifyError
from nightshift.registry import ChampionMoved, RegistryError, RegistryUnavailable
from nightshift.restclient import ApiError, ApiUnavailable
from nightshift.spec import SpecError
from nightshift.stack import CredentialsError
from nightshift.storage import StorageError
from nightshift.train import DeviceError, InsufficientData
from nightshift.validate import BatchRejected, CheckResult, ValidationOutcome


def _rejected() -> BatchRejected:
    checks = [CheckResult("expect_column_values_to_not_be_null", False, "amount", "12 nulls")]
    outcome = ValidationOutcome("payments", "events", "2026-03-01", 100, checks, report_uri="file:///r.json")
    return BatchRejected(outcome)


# every public error class of the core: an instance, its branch, the builtin base it keeps
FAMILY: list[tuple[BaseException, type[NightshiftError], type[BaseException]]] = [
    (SpecError("payments.yaml: label.column: missing"), DataError, ValueError),
    (FeatureError("missing columns: amount"), DataError, ValueError),
    (InsufficientData("2 labelled day(s) cannot make a split"), DataError, ValueError),
    (DeviceError("no GPU visible on worker gpu-1"), DataError, RuntimeError),
    (MonitoringError("v3 has no reference sample"), DataError, ValueError),
    (_rejected(), DataError, RuntimeError),
    (InferError("sample.csv: no column looks like a label"), DataError, ValueError),
    (RegistryError("nightshift-payments has no version 9"), DataError, RuntimeError),
    (ChampionMoved("payments", "1", "2"), DataError, RuntimeError),
    (ApiError("GET /api/v2/dags/x: HTTP 404", 404), DataError, RuntimeError),
    (CredentialsError("no Airflow password file at /x"), DataError, RuntimeError),
    (StorageError("network error while reading s3://b/x"), ServiceError, RuntimeError),
    (StagingError("disk full while staging day.csv to /tmp/x"), ServiceError, RuntimeError),
    (NoLandingData("no events files yet"), ServiceError, FileNotFoundError),
    (LandingIncomplete("no _SUCCESS marker yet"), ServiceError, FileNotFoundError),
    (RegistryUnavailable("the MLflow server at http://127.0.0.1:1 is down"), ServiceError, RegistryError),
    (NotifyError("webhook http://127.0.0.1:1: connection refused"), ServiceError, RuntimeError),
    (ApiUnavailable("no Airflow API at http://127.0.0.1:1"), ServiceError, RuntimeError),
]


@pytest.mark.parametrize(("exc", "branch", "base"), FAMILY, ids=lambda v: type(v).__name__)
def test_every_public_error_is_in_one_branch_and_keeps_its_builtin_base(
    exc: BaseException, branch: type[NightshiftError], base: type[BaseException]
) -> None:
    assert isinstance(exc, branch) and isinstance(exc, base)
    assert retryable(exc) is (branch is ServiceError)


def test_an_unavailable_registry_is_a_registry_error_that_retries() -> None:
    exc = RegistryUnavailable("unreachable")
    # both branches by inheritance (callers catch every RegistryError): the service one wins
    assert isinstance(exc, DataError) and isinstance(exc, ServiceError)
    assert retryable(exc) is True


def test_an_error_outside_the_family_is_left_to_the_caller() -> None:
    assert retryable(KeyError("x")) is None
    assert retryable(OSError(errno.ENOSPC, "No space left on device")) is None


def _raising(exc: BaseException, **kw: Any) -> Callable[[str], str]:
    @map_errors(**kw)
    def body(dataset: str) -> str:
        """A task body."""
        raise exc

    return body


def test_a_data_error_fails_at_once_naming_it_with_its_cause_kept() -> None:
    original = RegistryError("nightshift-payments has no version 99 (versions: v1, v2)")
    with pytest.raises(AirflowFailException) as info:
        _raising(original)("payments")
    assert type(info.value) is AirflowFailException
    assert str(info.value) == "RegistryError: nightshift-payments has no version 99 (versions: v1, v2)"
    assert info.value.__cause__ is original


def test_a_rejected_batch_fails_as_a_quarantine_with_its_report() -> None:
    original = _rejected()
    with pytest.raises(Quarantined) as info:
        _raising(original)("payments")
    assert str(info.value) == str(original)
    assert "payments events dt=2026-03-01 quarantined" in str(info.value)
    assert "expect_column_values_to_not_be_null(amount)" in str(info.value)
    assert "Report: file:///r.json" in str(info.value)
    assert info.value.__cause__ is original


@pytest.mark.parametrize(
    "original",
    [
        StagingError("disk full while staging day.csv to /tmp/staged.parquet"),
        StorageError("network error while publishing s3://b/curated"),
        RegistryUnavailable("promoting: the MLflow server at http://127.0.0.1:1 is unreachable"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_service_error_is_logged_and_raised_as_it_is_for_airflow_to_retry(
    original: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=__name__), pytest.raises(type(original)) as info:
        _raising(original)("payments")
    assert info.value is original  # the same object: message, traceback and chain untouched
    (record,) = [r for r in caplog.records if r.name == __name__]
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert message.startswith("body: infrastructure error, to be retried: ")
    assert f"{type(original).__name__}: {original}" in message


def test_an_unknown_error_is_raised_untouched_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    cause = OSError(errno.EIO, "Input/output error")
    original = KeyError("amount")
    original.__cause__ = cause
    with caplog.at_level(logging.DEBUG), pytest.raises(KeyError) as info:
        _raising(original)("payments")
    assert info.value is original and info.value.__cause__ is cause
    assert not [r for r in caplog.records if r.name == __name__]


def test_a_task_can_name_builtin_errors_it_treats_as_data_errors() -> None:
    original = ValueError("payments: invalid retrain request: xgb_params.max_dept: not overridable")
    with pytest.raises(ValueError) as plain:
        _raising(original)("payments")
    assert plain.value is original
    with pytest.raises(AirflowFailException, match=r"^ValueError: payments: invalid retrain") as info:
        _raising(original, data=(ValueError,))("payments")
    assert info.value.__cause__ is original
    # the family decides first: a service error that is also a FileNotFoundError still retries
    landing = NoLandingData("no events files for payments dt=2026-03-01 yet")
    with pytest.raises(NoLandingData):
        _raising(landing, data=(FileNotFoundError,))("payments")


@pytest.mark.parametrize(
    "original",
    [AirflowSkipException("nothing to score"), AirflowFailException("a rollback needs a reason")],
    ids=lambda e: type(e).__name__,
)
def test_airflow_s_own_outcomes_pass_through(original: BaseException) -> None:
    with pytest.raises(type(original)) as info:
        _raising(original, data=(ValueError, FileNotFoundError))("payments")
    assert info.value is original


def test_the_wrapped_body_keeps_its_name_doc_and_result() -> None:
    @map_errors
    def run_thing(dataset: str, n: int = 1) -> dict[str, int]:
        """Does the thing."""
        return {dataset: n}

    assert run_thing("payments", n=3) == {"payments": 3}
    assert (run_thing.__name__, run_thing.__doc__) == ("run_thing", "Does the thing.")
