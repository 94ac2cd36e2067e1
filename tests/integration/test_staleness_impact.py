"""The impact of model staleness, measured: a model trained on 10 clean generated days scores
each later day, and its AUC is read against its age (days since the newest day of its
window), with no change in the world and with a concept drift. The pure core, no
orchestrator (as ``bench/loop.py`` does at length).

Measured on the payments generator (4,000-row days, holdout AUC 0.900): with no change the
AUC at ages 1-30 stays between 0.869 and 0.911 (mean 0.895 at ages 1-5, 0.889 at 26-30), so
age alone costs this model next to nothing; after a concept drift it falls to 0.50-0.55, below
the performance alert's floor (holdout - ``alerts.max_auc_drop``), from the first drifted day.
Hence the policy: retrain on drift and performance alerts, with ``alerts.max_model_age_days``
(30) as the backstop for a world that changes too slowly for either to fire.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from nightshift.demo.datagen import Scenario, generate_day
from nightshift.evaluate import metrics
from nightshift.features import labels
from nightshift.model import predict
from nightshift.train import Window, choose_device, split_days, train

START = date(2026, 6, 1)
ROWS = 4000
SEED = 23
TRAIN_DAYS = 10
ONSET = 20  # concept drift from this day index (age 10)


def _day(spec: Any, i: int, scenario: Scenario) -> pa.Table:
    pairs = list(generate_day(spec, START + timedelta(days=i), i, ROWS, SEED, scenario))
    events = pa.Table.from_batches([e for e, _ in pairs])
    lab = pa.Table.from_batches([lb for _, lb in pairs]).select([spec.id_column, spec.label.column])
    return events.join(lab, keys=spec.id_column).sort_by(spec.event_time_column)


@pytest.fixture(scope="module")
def model(spec: Any) -> dict[str, Any]:
    days = [START + timedelta(days=i) for i in range(TRAIN_DAYS)]
    parts = []
    for i, d in enumerate(days):
        t = _day(spec, i, Scenario())
        parts.append(t.append_column("__dt", pa.array([d] * t.num_rows, pa.date32())))
    t = spec.training
    window = Window(pa.concat_tables(parts), [], split_days(days, t.validation_days, t.holdout_days))
    result = train(spec, window, choose_device())
    hold = window.split("holdout")
    holdout_auc = metrics(labels(hold, spec), predict(result.booster, result.transform, hold))["roc_auc"]
    return {"result": result, "holdout_auc": holdout_auc}


def _auc_by_age(spec: Any, model: dict[str, Any], scenario: Scenario, ages: range) -> dict[int, float]:
    res = model["result"]
    out = {}
    for age in ages:
        day = _day(spec, TRAIN_DAYS - 1 + age, scenario)
        out[age] = metrics(labels(day, spec), predict(res.booster, res.transform, day))["roc_auc"]
    return out


def test_age_alone_costs_this_model_no_auc_but_a_change_does(spec: Any, model: dict[str, Any]) -> None:
    floor = model["holdout_auc"] - spec.alerts.max_auc_drop
    clean = _auc_by_age(spec, model, Scenario(), range(1, 31))
    drifted = _auc_by_age(spec, model, Scenario(concept_drift_from=ONSET), range(1, 16))
    print(
        json.dumps({"holdout_auc": model["holdout_auc"], "clean": clean, "concept_drift": drifted}, indent=1)
    )
    # no change in the world: 30 days of age stay above the performance alert's floor
    assert min(clean.values()) > floor, clean
    first, last = np.mean([clean[a] for a in range(1, 6)]), np.mean([clean[a] for a in range(26, 31)])
    assert abs(last - first) < spec.alerts.max_auc_drop, (first, last)
    # a concept drift: below the floor from the first drifted day on, and not before
    drift_age = ONSET - (TRAIN_DAYS - 1)
    assert all(drifted[a] > floor for a in range(1, drift_age)), drifted
    assert all(drifted[a] < floor for a in range(drift_age, 16)), drifted
    # the backstop is longer than the ages measured to be harmless
    assert spec.alerts.max_model_age_days is not None and spec.alerts.max_model_age_days >= 30
