"""Behavioural tests of a model trained on the demo domain (in the style of Made-With-ML):
minimum functionality, directional expectations, and invariances.

The generator's fraud logit (``nightshift.demo.datagen._fraud_logit``, before concept drift) raises
the odds with IP risk, failed logins, velocity and low device trust; the tests ask whether the
trained model learnt those directions and ignores what it must not see (ids, times, row order).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import roc_auc_score

from nightshift.demo.datagen import Scenario, generate_day
from nightshift.evaluate import importance
from nightshift.features import FeatureTransform, labels
from nightshift.ingest import arrow_schema
from nightshift.model import predict
from nightshift.spec import DatasetSpec
from nightshift.train import Device, TrainResult, Window, split_days, train

START = date(2026, 2, 1)
N_DAYS = 8
ROWS = 2500
SEED = 21


@dataclass
class Trained:
    result: TrainResult
    holdout: pa.Table

    def p(self, data: Any) -> np.ndarray:
        return predict(self.result.booster, self.result.transform, data)


@pytest.fixture(scope="module")
def model(spec: DatasetSpec) -> Trained:
    schema = arrow_schema(spec, "events")
    parts = []
    days = [START + timedelta(days=i) for i in range(N_DAYS)]
    for i, day in enumerate(days):
        pairs = list(generate_day(spec, day, i, ROWS, SEED, Scenario()))
        events = pa.Table.from_batches([e for e, _ in pairs]).cast(schema)
        y = pa.Table.from_batches([lb for _, lb in pairs])
        assert events.column(spec.id_column).equals(y.column(spec.id_column))
        t = events.append_column(spec.label.column, y.column(spec.label.column))
        parts.append(t.append_column("__dt", pa.array([day] * t.num_rows, pa.date32())))
    t = spec.training
    window = Window(pa.concat_tables(parts), [], split_days(days, t.validation_days, t.holdout_days))
    device = Device("cpu", "behavioural tests", 0, socket.gethostname())
    result = train(spec, window, device, num_boost_round=300)
    return Trained(result, window.split("holdout"))


def _set(table: pa.Table, name: str, value: Any) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, name, pa.array([value] * table.num_rows, table.schema.field(i).type))


def _rows(m: Trained, n: int = 600) -> pa.Table:
    """Holdout rows, the ones the model did not train on."""
    return m.holdout.slice(0, n)


# ---- minimum functionality -----------------------------------------------------------------------


def test_holdout_auc(spec: DatasetSpec, model: Trained) -> None:
    y = labels(model.holdout, spec)
    p = model.p(model.holdout)
    assert 0.03 < y.mean() < 0.2  # fraud is rare, but not vanishingly
    assert roc_auc_score(y, p) >= 0.8
    # probabilities, and on average about the observed rate (the objective is log loss)
    assert ((p > 0) & (p < 1)).all()
    assert abs(p.mean() - y.mean()) < 0.03


OBVIOUS_FRAUD = {
    "device_trust_score": 0.02,
    "ip_risk_score": 95.0,
    "velocity_ratio": 25.0,
    "failed_logins_7d": 8,
    "num_cards_on_device": 5,
    "merchant_risk_score": 0.65,
    "merchant_category": "digital_goods",
    "channel": "web",
    "card_type": "prepaid",
    "email_domain_risk": "high",
    "address_match": "no",
    "country": "NG",
    "account_age_days": 3,
    "tx_count_24h": 12,
    "tx_hour": 3,
}
OBVIOUS_LEGIT = {
    "device_trust_score": 0.98,
    "ip_risk_score": 1.0,
    "velocity_ratio": 0.8,
    "failed_logins_7d": 0,
    "num_cards_on_device": 1,
    "merchant_risk_score": 0.05,
    "merchant_category": "grocery",
    "channel": "pos",
    "card_type": "debit",
    "email_domain_risk": "low",
    "address_match": "yes",
    "country": "US",
    "account_age_days": 4000,
    "tx_count_24h": 1,
    "tx_hour": 14,
}


def _profile(base: pa.Table, values: dict[str, Any]) -> pa.Table:
    for name, value in values.items():
        base = _set(base, name, value)
    return base


def test_obvious_fraud_scores_above_obvious_legit(model: Trained) -> None:
    base = _rows(model, 50)
    fraud, legit = model.p(_profile(base, OBVIOUS_FRAUD)), model.p(_profile(base, OBVIOUS_LEGIT))
    assert (fraud > legit).all()
    assert np.median(fraud) > 0.5
    assert np.median(legit) < 0.02


# ---- directional expectations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "low", "high"),
    [
        ("ip_risk_score", 3.0, 80.0),
        ("failed_logins_7d", 0, 5),
        ("velocity_ratio", 0.5, 15.0),
        ("device_trust_score", 0.95, 0.1),  # low trust is the risky end
    ],
)
def test_riskier_value_raises_probability(model: Trained, feature: str, low: Any, high: Any) -> None:
    rows = _rows(model)
    p_low, p_high = model.p(_set(rows, feature, low)), model.p(_set(rows, feature, high))
    assert p_high.mean() > p_low.mean() * 1.25, feature
    assert (p_high >= p_low).mean() > 0.9, feature


def test_risky_email_domain_raises_probability(model: Trained) -> None:
    rows = _rows(model)
    p_low, p_high = (
        model.p(_set(rows, "email_domain_risk", "low")),
        model.p(_set(rows, "email_domain_risk", "high")),
    )
    assert p_high.mean() > p_low.mean()


def test_importance_finds_the_generators_signals(model: Trained) -> None:
    rows = importance(model.result.booster, model.result.transform, _rows(model, 1000))
    assert [r["feature"] for r in rows] != []
    assert {r["feature"] for r in rows} == set(model.result.transform.feature_names)
    contributions = [r["mean_abs_contribution"] for r in rows]
    assert contributions == sorted(contributions, reverse=True)
    rank = {r["feature"]: i for i, r in enumerate(rows)}
    assert {"velocity_ratio", "device_trust_score"} <= {r["feature"] for r in rows[:3]}
    # every feature of the fraud logit ranks above every feature the logit does not use
    signals = ["device_trust_score", "ip_risk_score", "velocity_ratio", "failed_logins_7d"]
    noise = ["customer_age", "credit_limit", "utilization", "days_since_last_tx"]
    assert max(rank[f] for f in signals) < min(rank[f] for f in noise), rank


# ---- invariance ----------------------------------------------------------------------------------


def test_ids_and_event_times_do_not_matter(spec: DatasetSpec, model: Trained) -> None:
    rows = _rows(model)
    p = model.p(rows)
    n = rows.num_rows
    other_ids = pa.array([f"zzz-{i}" for i in range(n)], pa.string())
    shifted = pc.add(rows.column(spec.event_time_column), pa.scalar(timedelta(days=400)))
    changed = rows.set_column(0, spec.id_column, other_ids)
    changed = changed.set_column(1, spec.event_time_column, shifted)
    np.testing.assert_array_equal(model.p(changed), p)
    # nor the label, nor the id columns being there at all
    bare = rows.drop_columns([spec.id_column, spec.event_time_column, spec.label.column])
    np.testing.assert_array_equal(model.p(bare), p)


def test_row_and_column_order_do_not_matter(model: Trained) -> None:
    rows = _rows(model)
    p = model.p(rows)
    perm = np.random.default_rng(0).permutation(rows.num_rows)
    np.testing.assert_array_equal(model.p(rows.take(perm)), p[perm])
    shuffled = rows.select(list(reversed(rows.column_names)))
    np.testing.assert_array_equal(model.p(shuffled), p)
    # scoring one row alone gives what it got in the batch
    np.testing.assert_array_equal(model.p(rows.slice(7, 1)), p[7:8])


def test_pandas_input_scores_like_arrow(model: Trained) -> None:
    rows = _rows(model)
    p = model.p(rows)
    np.testing.assert_array_equal(model.p(rows.to_pandas()), p)
    # the packaged model's input frame (numerics float64, categories strings) scores the same
    frame = model.result.transform.frame(rows)
    np.testing.assert_array_equal(model.p(frame), p)
    back = FeatureTransform.from_json(model.result.transform.to_json())
    np.testing.assert_array_equal(predict(model.result.booster, back, rows), p)
