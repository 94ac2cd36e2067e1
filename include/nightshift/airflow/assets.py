"""Airflow Assets published by nightshift, one set per dataset.

Assets are identified by name only: a URI with a scheme makes Airflow load every provider's
URI normalizers (boto3 among them) at parse time.
"""

from __future__ import annotations

from airflow.sdk import Asset


def curated_asset(dataset: str) -> Asset:
    """Validated events of ``dataset`` (one event per published day partition)."""
    return Asset(name=f"nightshift.{dataset}.curated", group="nightshift")


def labels_asset(dataset: str) -> Asset:
    """Validated labels of ``dataset`` (one event per published arrival day)."""
    return Asset(name=f"nightshift.{dataset}.labels", group="nightshift")


def champion_asset(dataset: str) -> Asset:
    """The ``champion`` alias of ``dataset``'s model moved (promotion or rollback)."""
    return Asset(name=f"nightshift.{dataset}.champion", group="nightshift")


def predictions_asset(dataset: str) -> Asset:
    """Predictions of ``dataset`` (one event per scoring run, the days in its extra)."""
    return Asset(name=f"nightshift.{dataset}.predictions", group="nightshift")


def alert_asset(dataset: str) -> Asset:
    """Monitoring raised an alert on ``dataset``'s champion (drift or performance; the
    reason and the numbers in the event's extra)."""
    return Asset(name=f"nightshift.{dataset}.alert", group="nightshift")
