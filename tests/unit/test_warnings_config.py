"""The test configuration shows deprecations, Airflow's own included: only named third-party
notices are silenced (``[tool.pytest.ini_options] filterwarnings``), never a whole category."""

from __future__ import annotations

import warnings

import pytest
from airflow.exceptions import AirflowProviderDeprecationWarning
from airflow.sdk.exceptions import RemovedInAirflow4Warning


@pytest.mark.parametrize(
    ("category", "module"),
    [
        (RemovedInAirflow4Warning, "nightshift.airflow.tasks"),  # our code on a removed API
        (RemovedInAirflow4Warning, "airflow.sdk.definitions.dag"),  # raised inside Airflow
        (AirflowProviderDeprecationWarning, "airflow.providers.amazon.aws.hooks.s3"),
        (DeprecationWarning, "nightshift.spec"),
    ],
)
def test_a_deprecation_reaches_the_warnings_summary(category: type[Warning], module: str) -> None:
    # the filters pytest applied from the configuration stay in force inside catch_warnings
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit("old API", category, f"{module.replace('.', '/')}.py", 1, module=module)
    assert [w.category for w in seen] == [category]


def test_the_named_third_party_notices_are_the_only_ones_silenced() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit(
            "numpy.core is deprecated and has been renamed to numpy._core.",
            DeprecationWarning,
            "evidently/legacy/tests/utils.py",
            183,
            module="evidently.legacy.tests.utils",
        )
        warnings.warn_explicit(
            "Call to deprecated function 'Dependency'.",
            DeprecationWarning,
            "litestar/utils/deprecation.py",
            99,
            module="litestar.utils.deprecation",
        )
        warnings.warn_explicit(  # another deprecation in Evidently itself is still shown
            "old Evidently API", DeprecationWarning, "evidently/core.py", 3, module="evidently.core"
        )
        warnings.warn_explicit(
            "Using `httpx` with `starlette.testclient` is deprecated; install `httpx2` instead.",
            UserWarning,
            "fastapi/testclient.py",
            1,
            module="fastapi.testclient",
        )
        warnings.warn_explicit(
            "The specified dataset source can be interpreted in multiple ways: A, A.",
            UserWarning,
            "mlflow/data/dataset_source_registry.py",
            148,
            module="mlflow.data.dataset_source_registry",
        )
        warnings.warn_explicit("something else", UserWarning, "fastapi/testclient.py", 2, module="fastapi")
    assert [str(w.message) for w in seen] == ["old Evidently API", "something else"]
