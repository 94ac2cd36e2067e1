"""Airflow Assets published by nightshift, one set per dataset.

Assets are identified by name only: a URI with a scheme makes Airflow load every provider's
URI normalizers (boto3 among them) at parse time.

A task's outlet Asset gets an event on every success; an Asset the task emits only when it
decides so (a retrain only when the guard rails would retrain, training only while there is no
champion, labels only when no scoring follows) goes through :func:`when_due`, an alias the task
adds the Asset's event to (:func:`emit`), so that no run is started only to decide to skip.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetAlias


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


def train_due_asset(dataset: str) -> Asset:
    """New curated data that an automatic training run is due for: while there is no champion
    (or with ``retrain.on_new_data: always``); it starts ``nightshift_train``."""
    return Asset(name=f"nightshift.{dataset}.train_due", group="nightshift")


def when_due(asset: Asset) -> AssetAlias:
    """The outlet of a task that emits ``asset``'s event only when it decides so (:func:`emit`)."""
    return AssetAlias(name=f"{asset.name}.when_due", group="nightshift")


def emit(context: Any, asset: Asset, extra: dict[str, Any]) -> None:
    """Emit ``asset``'s event (with ``extra``) through the task's :func:`when_due` outlet."""
    context["outlet_events"][when_due(asset)].add(asset, extra=extra)


def triggering_events(context: Any) -> list[Any]:
    """The Asset events that triggered this run, each once (Airflow lists an event that came
    through an alias under the alias too)."""
    events = context.get("triggering_asset_events") or {}
    return [ev for key in events if not isinstance(key, AssetAlias) for ev in events[key]]
