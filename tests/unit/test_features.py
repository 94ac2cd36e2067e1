"""The feature transform: column order, category codes, serialisation, errors, and labels."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from nightshift.demo.datagen import Scenario, generate_day
from nightshift.features import FeatureError, FeatureTransform, labels
from nightshift.ingest import arrow_schema
from nightshift.spec import DatasetSpec, parse_spec

DAY = date(2026, 1, 1)
ROWS = 300


@pytest.fixture(scope="module")
def events(spec: DatasetSpec) -> pa.Table:
    """A generated day of payments in the curated schema (with the generator's nulls)."""
    batches = [e for e, _ in generate_day(spec, DAY, 0, ROWS, 5, Scenario())]
    return pa.Table.from_batches(batches).cast(arrow_schema(spec, "events"))


@pytest.fixture(scope="module")
def shop() -> DatasetSpec:
    """A small dataset unlike the demo: a categorical without ``values``, labels 7/3."""
    return parse_spec(
        {
            "name": "shop",
            "id_column": "order_id",
            "event_time_column": "ts",
            "label": {"column": "returned", "delay_days": 1, "positive": 7, "negative": 3},
            "features": {
                "numeric": [{"name": "price"}, {"name": "qty", "dtype": "int64"}],
                "categorical": [{"name": "color"}, {"name": "size", "values": ["s", "m", "l"]}],
            },
        }
    )


def _replace(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


# ---- construction, order and serialisation -----------------------------------------------------


def test_order_follows_spec(spec: DatasetSpec) -> None:
    t = FeatureTransform.from_spec(spec)
    numeric = [f.name for f in spec.features.numeric]
    categorical = [c.name for c in spec.features.categorical]
    assert t.feature_names == numeric + categorical == spec.feature_names
    assert t.feature_types == ["q"] * len(numeric) + ["c"] * len(categorical)
    assert t.categorical["channel"] == ("pos", "web", "app", "phone")
    assert t.signature_schema()[0] == ("amount", "double")
    assert t.signature_schema()[-1] == ("address_match", "string")


def test_matrix_columns_follow_spec_not_input_order(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    x = t.matrix(events)
    assert x.dtype == np.float32
    assert x.shape == (ROWS, len(spec.feature_names))
    for j, name in enumerate(t.numeric):
        expected = events.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(x[:, j], expected.astype(np.float32), err_msg=name)
    # the same batch with its columns reversed gives the same matrix
    reversed_ = events.select(list(reversed(events.column_names)))
    np.testing.assert_array_equal(t.matrix(reversed_), x)


def test_round_trip(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    text = t.to_json()
    assert json.loads(text)["format_version"] == 1
    back = FeatureTransform.from_json(text)
    assert back == t
    assert back.feature_names == t.feature_names
    np.testing.assert_array_equal(back.matrix(events), t.matrix(events))
    assert FeatureTransform.from_dict(t.to_dict()) == t


def test_unknown_format_version(spec: DatasetSpec) -> None:
    data = FeatureTransform.from_spec(spec).to_dict()
    data["format_version"] = 99
    with pytest.raises(FeatureError, match="format 99"):
        FeatureTransform.from_dict(data)


# ---- values --------------------------------------------------------------------------------------


def test_categorical_codes(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    small = events.slice(0, 6)
    channel = pa.array(["pos", "web", "app", "phone", "carrier_pigeon", None], pa.string())
    x = t.matrix(_replace(small, "channel", channel))
    j = t.feature_names.index("channel")
    np.testing.assert_array_equal(x[:, j], np.array([0, 1, 2, 3, np.nan, np.nan], np.float32))
    # codes are case-sensitive: "POS" is not "pos"
    x = t.matrix(_replace(small, "channel", pa.array(["POS"] * 6)))
    assert np.isnan(x[:, j]).all()


def test_nulls_become_nan(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    x = t.matrix(events)
    for name in ("customer_age", "device_trust_score", "email_domain_risk"):
        j = t.feature_names.index(name)
        nulls = events.column(name).null_count
        assert nulls > 0, f"the generator should leave nulls in {name}"
        assert int(np.isnan(x[:, j]).sum()) == nulls


def test_pandas_gives_same_matrix_as_arrow(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    frame = events.to_pandas()
    assert frame["customer_age"].dtype == np.float64  # an int column with nulls, as pandas has it
    np.testing.assert_array_equal(t.matrix(frame), t.matrix(events))
    # the model's own input frame goes through the same transform to the same matrix
    np.testing.assert_array_equal(t.matrix(t.frame(events)), t.matrix(events))


def test_numeric_text_is_cast_and_garbage_named(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    small = events.slice(0, 3)
    x = t.matrix(_replace(small, "amount", pa.array(["1.5", None, "20"])))
    np.testing.assert_array_equal(x[:, 0], np.array([1.5, np.nan, 20.0], np.float32))
    with pytest.raises(FeatureError, match="'amount' is not numeric"):
        t.matrix(_replace(small, "amount", pa.array(["1.5", "lots", "20"])))


# ---- errors --------------------------------------------------------------------------------------


def test_missing_columns_are_named(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    with pytest.raises(FeatureError, match="lacks feature column") as err:
        t.matrix(events.drop_columns(["ip_risk_score", "channel"]))
    assert "ip_risk_score" in str(err.value)
    assert "channel" in str(err.value)
    assert "amount" not in str(err.value)


def test_nan_and_inf_values_are_named_with_counts(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    n = events.num_rows
    amount = np.full(n, 10.0)
    amount[3] = np.nan  # a NaN *value*, not a null
    ip = np.full(n, 5.0)
    ip[[0, 7]] = [np.inf, -np.inf]
    bad = _replace(events, "amount", pa.array(amount, pa.float64()))
    bad = _replace(bad, "ip_risk_score", pa.array(ip, pa.float64()))
    assert bad.column("amount").null_count == 0
    with pytest.raises(FeatureError) as err:
        t.matrix(bad)
    msg = str(err.value)
    assert "amount (1 NaN/inf)" in msg
    assert "ip_risk_score (2 NaN/inf)" in msg
    assert "device_trust_score" not in msg  # its nulls are fine
    # inf alone is caught as well
    only_inf = _replace(events, "ip_risk_score", pa.array(ip, pa.float64()))
    with pytest.raises(FeatureError, match=r"ip_risk_score \(2 NaN/inf\)"):
        t.matrix(only_inf)


def test_nulls_in_float_columns_are_fine(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    n = events.num_rows
    amount = pa.array([None if i % 3 == 0 else float(i) for i in range(n)], pa.float64())
    x = t.matrix(_replace(events, "amount", amount))
    assert int(np.isnan(x[:, 0]).sum()) == amount.null_count


# ---- learned categories --------------------------------------------------------------------------


def _shop_table(colors: list[str | None], sizes: list[str | None]) -> pa.Table:
    n = len(colors)
    return pa.table(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "price": pa.array([float(i) for i in range(n)], pa.float64()),
            "qty": pa.array(list(range(n)), pa.int64()),
            "color": pa.array(colors, pa.string()),
            "size": pa.array(sizes, pa.string()),
        }
    )


def test_categories_learned_from_training_data(shop: DatasetSpec) -> None:
    with pytest.raises(FeatureError, match="'color' has no values"):
        FeatureTransform.from_spec(shop)
    train = _shop_table(["red", "blue", None, "red", "green"], ["s", "m", "l", "s", None])
    t = FeatureTransform.from_spec(shop, train)
    assert t.categorical == {"color": ("blue", "green", "red"), "size": ("s", "m", "l")}
    assert t.feature_names == ["price", "qty", "color", "size"]
    later = _shop_table(["green", "purple", None], ["l", "xl", "s"])
    x = t.matrix(later)
    np.testing.assert_array_equal(x[:, 2], np.array([1, np.nan, np.nan], np.float32))
    np.testing.assert_array_equal(x[:, 3], np.array([2, np.nan, 0], np.float32))
    # the learned categories survive serialisation (scoring uses what training saw)
    back = FeatureTransform.from_json(t.to_json())
    assert back == t
    np.testing.assert_array_equal(back.matrix(later), x)


# ---- labels --------------------------------------------------------------------------------------


def test_labels(shop: DatasetSpec) -> None:
    y = labels(pa.table({"returned": pa.array([7, 3, 3, 7], pa.int64())}), shop)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [1, 0, 0, 1])


def test_labels_reject_other_values(shop: DatasetSpec) -> None:
    with pytest.raises(FeatureError, match=r"'returned' has 2 value\(s\) that are neither 7 nor 3"):
        labels(pa.table({"returned": pa.array([7, 1, 3, 0], pa.int64())}), shop)


def _with_label(spec: DatasetSpec, positive: object, negative: object) -> DatasetSpec:
    data = spec.model_dump()
    data["label"] = {**data["label"], "positive": positive, "negative": negative}
    return parse_spec(data)


def test_string_and_boolean_labels(shop: DatasetSpec) -> None:
    yes_no = _with_label(shop, "YES", "NO")
    y = labels(pa.table({"returned": pa.array(["NO", "YES", "NO"])}), yes_no)
    np.testing.assert_array_equal(y, [0, 1, 0])
    large = pa.table({"returned": pa.array(["YES"], pa.large_string())})
    np.testing.assert_array_equal(labels(large, yes_no), [1])
    with pytest.raises(FeatureError, match=r"1 value\(s\) that are neither 'YES' nor 'NO'"):
        labels(pa.table({"returned": pa.array(["YES", "yes"])}), yes_no)
    flags = _with_label(shop, True, False)
    np.testing.assert_array_equal(labels(pa.table({"returned": pa.array([True, False])}), flags), [1, 0])
    # typed: an int column is not a boolean label, nor text a number
    with pytest.raises(FeatureError, match=r"'returned' is int64, but label.positive/negative are bool"):
        labels(pa.table({"returned": pa.array([1, 0])}), flags)
    with pytest.raises(FeatureError, match=r"'returned' is string, but label.positive/negative are int64"):
        labels(pa.table({"returned": pa.array(["7", "3"])}), shop)


def test_labels_reject_nulls(spec: DatasetSpec) -> None:
    with pytest.raises(FeatureError, match=r"'is_fraud' has 1 missing value"):
        labels(pa.table({"is_fraud": pa.array([1, None, 0], pa.int64())}), spec)


# ---- the model's input frame ---------------------------------------------------------------------


def test_frame_dtypes(spec: DatasetSpec, events: pa.Table) -> None:
    t = FeatureTransform.from_spec(spec)
    frame = t.frame(events)
    assert list(frame.columns) == t.feature_names  # ids and times dropped, spec order
    for name in t.numeric:
        assert frame[name].dtype == np.float64, name
    assert events.column("customer_age").type == pa.int64()
    assert frame["customer_age"].isna().sum() == events.column("customer_age").null_count
    for name in t.categorical:
        assert frame[name].dtype == object, name  # strings (missing as None)
        assert {type(v) for v in frame[name].dropna()} == {str}, name
    # integer category values (as a pandas source might carry them) become strings too
    ints = pd.DataFrame({c: frame[c] for c in t.numeric} | {c: 1 for c in t.categorical})
    assert (t.frame(ints)["channel"] == "1").all()
