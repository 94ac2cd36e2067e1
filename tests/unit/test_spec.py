"""The dataset spec: loading the demo spec, derived views, and errors that name file and field."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from nightshift.spec import (
    BATCH_KINDS,
    DatasetSpec,
    SpecError,
    find_spec,
    load_spec,
    parse_dt,
    parse_spec,
    partition_bounds,
)

SPEC_PATH = Path(__file__).resolve().parents[2] / "datasets" / "payments.yaml"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _minimal() -> dict[str, Any]:
    """A small dataset that shares nothing with the payments demo."""
    return {
        "name": "sensor_faults",
        "id_column": "reading_id",
        "id_dtype": "int64",
        "event_time_column": "measured_at",
        "label": {"column": "faulty", "delay_days": 0},
        "features": {
            "numeric": [{"name": "temperature", "min": -40, "max": 125}],
            "categorical": [{"name": "site", "values": ["north", "south"]}],
        },
        "slices": ["site"],
        "landing": {"format": "parquet"},
    }


def _write(tmp_path: Path, data: Any, name: str = "broken.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _load_error(tmp_path: Path, data: Any) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    return msg


# ---- the demo spec -------------------------------------------------------------------------------


def test_demo_spec_loads(spec: DatasetSpec) -> None:
    assert spec.name == "payments"
    assert spec.id_column == "payment_id"
    assert spec.id_dtype == "string"
    assert spec.event_time_column == "event_time"
    assert spec.label.column == "is_fraud"
    assert spec.label.delay_days == 3
    assert (spec.label.positive, spec.label.negative) == (1, 0)
    assert spec.landing.format == "csv"
    assert spec.landing.delimiter == ","
    assert spec.validation.min_rows == 100
    assert spec.slices == ["channel", "card_type"]
    assert len(spec.features.numeric) == 17
    assert len(spec.features.categorical) == 6
    age = next(f for f in spec.features.numeric if f.name == "customer_age")
    assert (age.dtype, age.min, age.max, age.max_null_fraction) == ("int64", 18, 100, 0.05)
    address = next(c for c in spec.features.categorical if c.name == "address_match")
    assert address.values == ["yes", "no", "unknown"]  # quoted in YAML: not booleans


def test_demo_derived_views(spec: DatasetSpec, raw: dict[str, Any]) -> None:
    numeric = [f["name"] for f in raw["features"]["numeric"]]
    categorical = [f["name"] for f in raw["features"]["categorical"]]
    assert spec.feature_names == numeric + categorical
    assert spec.event_columns == ["payment_id", "event_time", *numeric, *categorical]
    assert spec.label_columns == ["payment_id", "event_time", "is_fraud"]
    assert spec.columns_for("events") == spec.event_columns
    assert spec.columns_for("labels") == spec.label_columns
    assert BATCH_KINDS == ("events", "labels")
    assert len(set(spec.event_columns)) == len(spec.event_columns)
    # a labels batch needs only the id and the outcome; the event time is optional
    assert spec.required_columns_for("labels") == ["payment_id", "is_fraud"]
    assert spec.optional_columns_for("labels") == ["event_time"]
    assert spec.required_columns_for("events") == spec.event_columns
    assert spec.optional_columns_for("events") == []
    # label ids are looked up over the label delay plus the training window
    assert spec.label_match_days == spec.label.delay_days + spec.training.window_days == 13


def test_find_spec_by_name_and_path(spec: DatasetSpec) -> None:
    assert find_spec("payments", SPEC_PATH.parent) == spec
    assert find_spec(str(SPEC_PATH)) == spec


def test_find_spec_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: dataset spec not found"):
        find_spec("nope", tmp_path)


def test_spec_is_frozen(spec: DatasetSpec) -> None:
    with pytest.raises(ValueError):
        spec.name = "other"


# ---- a different dataset -------------------------------------------------------------------------


def test_minimal_other_dataset_loads(tmp_path: Path) -> None:
    other = load_spec(_write(tmp_path, _minimal(), "sensor_faults.yaml"))
    assert other.name == "sensor_faults"
    assert other.id_dtype == "int64"
    assert other.landing.format == "parquet"
    assert other.event_columns == ["reading_id", "measured_at", "temperature", "site"]
    assert other.label_columns == ["reading_id", "measured_at", "faulty"]
    assert other.feature_names == ["temperature", "site"]
    # defaults
    assert other.features.numeric[0].dtype == "float64"
    assert other.features.numeric[0].max_null_fraction == 0.0
    assert other.validation.min_rows == 1
    assert other.validation.max_rows is None
    assert other.validation.range_mostly == 1.0
    assert other.partitioning.by == "day"
    assert other.description == ""


def test_only_numeric_or_only_categorical_is_enough() -> None:
    data = _minimal()
    data["features"] = {"numeric": [{"name": "x"}]}
    data["slices"] = []
    assert parse_spec(data).feature_names == ["x"]
    data["features"] = {"categorical": [{"name": "c"}]}
    assert parse_spec(data).feature_names == ["c"]


def test_categorical_without_values_allows_any() -> None:
    data = _minimal()
    data["features"]["categorical"] = [{"name": "site"}]
    assert parse_spec(data).features.categorical[0].values is None


# ---- broken specs: the message names the file and the field ----------------------------------------


def test_missing_id_column(tmp_path: Path, raw: dict[str, Any]) -> None:
    data = {k: v for k, v in raw.items() if k != "id_column"}
    msg = _load_error(tmp_path, data)
    assert "id_column" in msg
    assert "Field required" in msg


def test_unknown_key_is_rejected(tmp_path: Path, raw: dict[str, Any]) -> None:
    msg = _load_error(tmp_path, {**raw, "colour": "blue"})
    assert "colour" in msg
    assert "Extra inputs are not permitted" in msg


def test_unknown_nested_key_is_rejected(tmp_path: Path, raw: dict[str, Any]) -> None:
    data = {**raw, "label": {**raw["label"], "delay": 3}}
    msg = _load_error(tmp_path, data)
    assert "label.delay" in msg


def test_min_greater_than_max(tmp_path: Path, raw: dict[str, Any]) -> None:
    numeric = [dict(f) for f in raw["features"]["numeric"]]
    numeric[1] = {**numeric[1], "min": 200, "max": 100}
    msg = _load_error(tmp_path, {**raw, "features": {**raw["features"], "numeric": numeric}})
    assert "features.numeric.1" in msg
    assert "customer_age" in msg
    assert "greater than max" in msg


def test_duplicate_column_names(tmp_path: Path, raw: dict[str, Any]) -> None:
    numeric = [*raw["features"]["numeric"], {"name": "payment_id"}]
    msg = _load_error(tmp_path, {**raw, "features": {**raw["features"], "numeric": numeric}})
    assert "column names used twice: payment_id" in msg


def test_duplicate_feature_and_label(tmp_path: Path) -> None:
    data = _minimal()
    data["label"]["column"] = "temperature"
    msg = _load_error(tmp_path, data)
    assert "used twice: temperature" in msg


def test_slice_must_be_categorical(tmp_path: Path, raw: dict[str, Any]) -> None:
    msg = _load_error(tmp_path, {**raw, "slices": ["channel", "amount", "nope"]})
    assert "slices must be categorical" in msg
    assert "amount, nope" in msg


@pytest.mark.parametrize("name", ["Payments", "1payments", "pay-ments", "", "a" * 64])
def test_bad_name(tmp_path: Path, raw: dict[str, Any], name: str) -> None:
    msg = _load_error(tmp_path, {**raw, "name": name})
    assert "name:" in msg
    assert "lower-case" in msg


def test_good_names() -> None:
    for name in ("a", "payments_v2", "a" * 63):
        assert parse_spec({**_minimal(), "name": name}).name == name


def test_invalid_yaml(tmp_path: Path) -> None:
    msg = _load_error(tmp_path, "name: payments\nfeatures: [unclosed\n")
    assert "not valid YAML" in msg


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(SpecError, match="dataset spec not found") as info:
        load_spec(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", ""])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    msg = _load_error(tmp_path, text)
    assert "must be a mapping" in msg


def test_parse_spec_names_source() -> None:
    with pytest.raises(SpecError, match=r"^inline: a dataset spec must be a mapping, got list"):
        parse_spec([1, 2], source="inline")
    with pytest.raises(SpecError, match=r"^<spec>: invalid dataset spec"):
        parse_spec({"name": "x"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id_dtype": "uuid"}, "id_dtype"),
        ({"label": {"column": "faulty", "delay_days": -1}}, "label.delay_days"),
        ({"label": {"column": "faulty", "delay_days": 1, "positive": 1, "negative": 1}}, "must differ"),
        ({"landing": {"format": "json"}}, "landing.format"),
        ({"landing": {"delimiter": ";;"}}, "landing.delimiter"),
        ({"landing": {"encoding": "latin-1"}}, "landing.encoding"),
        ({"validation": {"range_mostly": 0}}, "validation.range_mostly"),
        ({"validation": {"min_rows": -1}}, "validation.min_rows"),
        ({"features": {}}, "at least one numeric or categorical feature"),
        ({"features": {"numeric": [{"name": "t", "dtype": "int32"}]}}, "features.numeric.0.dtype"),
        ({"features": {"numeric": [{"name": "t", "max_null_fraction": 1.5}]}}, "max_null_fraction"),
        ({"features": {"categorical": [{"name": "c", "values": []}]}}, "features.categorical.0.values"),
        ({"features": {"categorical": [{"name": "c", "values": ["a", "a"]}]}}, "without duplicates"),
        ({"features": {"categorical": [{"name": "c", "values": [True, False]}]}}, "values"),
    ],
)
def test_invalid_fields(change: dict[str, Any], field: str) -> None:
    data = {**_minimal(), "slices": [], **change}
    with pytest.raises(SpecError, match="invalid dataset spec") as info:
        parse_spec(data, source="sensor_faults.yaml")
    assert field in str(info.value)
    assert str(info.value).startswith("sensor_faults.yaml:")


def test_all_errors_are_listed(raw: dict[str, Any]) -> None:
    data = {**raw, "colour": "blue", "seed": "not-a-number"}
    data.pop("event_time_column")
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    msg = str(info.value)
    for field in ("colour", "seed", "event_time_column"):
        assert f"  - {field}:" in msg


# ---- dates ---------------------------------------------------------------------------------------


def test_parse_dt() -> None:
    assert parse_dt("2026-01-31") == date(2026, 1, 31)
    assert parse_dt(date(2026, 2, 1)) == date(2026, 2, 1)
    assert parse_dt(datetime(2026, 2, 1, 23, 59, tzinfo=UTC)) == date(2026, 2, 1)


@pytest.mark.parametrize("value", ["2026-13-01", "2026-02-30", "yesterday", "", "01/02/2026"])
def test_parse_dt_error_names_value(value: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD") as info:
        parse_dt(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", ["20260101", "2026-W01-1"])
def test_parse_dt_rejects_other_iso_forms(value: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_dt(value)


def test_partition_bounds() -> None:
    start, end = partition_bounds(date(2026, 3, 1))
    assert start == datetime(2026, 3, 1, tzinfo=UTC)
    assert end == datetime(2026, 3, 2, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0)
    assert end - start == timedelta(days=1)
    # year end and leap day
    assert partition_bounds(date(2025, 12, 31))[1] == datetime(2026, 1, 1, tzinfo=UTC)
    assert partition_bounds(date(2028, 2, 29))[1] == datetime(2028, 3, 1, tzinfo=UTC)


# ---- bad input: duplicate keys, NaN bounds, reserved names, file name, encoding ----------------------

DEMO_TEXT = SPEC_PATH.read_text(encoding="utf-8")


def _demo_with(tmp_path: Path, old: str, new: str, name: str = "payments.yaml") -> Path:
    assert old in DEMO_TEXT, old
    path = tmp_path / name
    path.write_text(DEMO_TEXT.replace(old, new, 1), encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    return msg


AMOUNT = "{name: amount, dtype: float64, min: 0, max: 50000}"


def _line_column(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"line {line}, column {index - (text.rfind(chr(10), 0, index) + 1) + 1}"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("seed: 42\n", "seed: 42\nseed: 7\n", "seed"),
        ("  delay_days: 3\n", "  delay_days: 3\n  delay_days: 0\n", "delay_days"),
        # a flow mapping on one line: PyYAML would keep the second max (1) silently
        (AMOUNT, AMOUNT.replace("}", ", max: 1}"), "max"),
    ],
)
def test_duplicate_yaml_key_is_named_with_its_lines(tmp_path: Path, old: str, new: str, key: str) -> None:
    path = _demo_with(tmp_path, old, new)
    text = path.read_text(encoding="utf-8")
    first = text.index(f"{key}:", text.index(new))
    second = text.index(f"{key}:", first + 1)
    msg = _error(path)
    assert f"{_line_column(text, second)}: duplicate key {key!r}" in msg, msg
    assert f"(first at {_line_column(text, first)})" in msg, msg


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    data = _minimal()
    text = yaml.safe_dump(data).replace("label:\n", "defaults: &d {delay_days: 2}\nlabel:\n  <<: *d\n", 1)
    # `defaults` is not a spec key: the merge itself must load, the unknown key is what fails
    msg = _error(_write(tmp_path, text, "sensor_faults.yaml"))
    assert "duplicate" not in msg and "defaults" in msg


@pytest.mark.parametrize(
    ("bound", "value"), [("min", ".nan"), ("max", ".NaN"), ("max", "nan"), ("min", "-.inf")]
)
def test_nan_or_infinite_bound_is_named(tmp_path: Path, bound: str, value: str) -> None:
    other = "max" if bound == "min" else "min"
    feature = f"{{name: amount, dtype: float64, {bound}: {value}, {other}: {'0' if other == 'min' else '9'}}}"
    msg = _error(_demo_with(tmp_path, AMOUNT, feature))
    assert f"features.numeric.0.{bound} (feature 'amount')" in msg
    assert "finite number" in msg


def test_nan_threshold_is_named(tmp_path: Path) -> None:
    msg = _error(_demo_with(tmp_path, "max_regression: 0.005", "max_regression: .nan"))
    assert "gate.max_regression" in msg and "finite number" in msg


@pytest.mark.parametrize("reserved", ["score", "model_version", "dt", "__row"])
@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("numeric", "features.numeric.0.name"),
        ("categorical", "features.categorical.1.name"),
        ("label", "label.column"),
        ("id", "id_column"),
    ],
)
def test_column_nightshift_adds_is_refused(kind: str, where: str, reserved: str) -> None:
    data = _minimal()
    if kind == "numeric":
        data["features"]["numeric"][0]["name"] = reserved
    elif kind == "categorical":
        data["features"]["categorical"].append({"name": reserved})
    elif kind == "label":
        data["label"]["column"] = reserved
    else:
        data["id_column"] = reserved
    with pytest.raises(SpecError) as info:
        parse_spec(data, "sensor_faults.yaml")
    msg = str(info.value)
    assert f"{where}: {reserved!r}" in msg, msg
    assert "nightshift" in msg and "rename it" in msg


def test_reserved_columns_are_the_ones_nightshift_adds() -> None:
    from nightshift import monitor, score
    from nightshift.spec import RESERVED_COLUMNS

    assert {score.SCORE, score.MODEL_VERSION, monitor.SCORE} <= set(RESERVED_COLUMNS)
    assert "dt" in RESERVED_COLUMNS  # the store's partition key (dt=YYYY-MM-DD)


def test_file_name_must_be_the_spec_name(tmp_path: Path) -> None:
    path = tmp_path / "payment.yaml"
    path.write_text(DEMO_TEXT, encoding="utf-8")
    msg = _error(path)
    assert "name 'payments'" in msg and "'payment.yaml'" in msg
    assert "rename the file to payments.yaml or set name: payment" in msg
    # the same content under its own name loads, by path and by name; .yml too
    (tmp_path / "payments.yaml").write_text(DEMO_TEXT, encoding="utf-8")
    assert find_spec("payments", tmp_path).name == "payments"
    (tmp_path / "payments.yml").write_text(DEMO_TEXT, encoding="utf-8")
    assert load_spec(tmp_path / "payments.yml").name == "payments"


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_non_utf8_file_names_file_and_byte(tmp_path: Path, encoding: str) -> None:
    raw = DEMO_TEXT.replace("Card payments", "Card paym\xe9nts").encode(encoding)
    offset = raw.index(b"\xe9") if encoding == "latin-1" else 0  # UTF-16: its BOM, 0xff
    path = tmp_path / "payments.yaml"
    path.write_bytes(raw)
    msg = _error(path)
    line = raw[:offset].count(b"\n") + 1
    assert f"not UTF-8: byte 0x{raw[offset]:02x} at offset {offset} (line {line})" in msg, msg
    assert encoding == "utf-16" or line > 1


# ---- pii and landing.complete_marker -------------------------------------------------------------


def test_pii_features(spec: DatasetSpec) -> None:
    assert spec.pii_columns == {"customer_age"}  # the demo marks one personal column
    data = _minimal()
    assert parse_spec(data).pii_columns == set()
    data["features"]["categorical"].append({"name": "owner", "pii": True})
    data["features"]["numeric"][0]["pii"] = True
    assert parse_spec(data).pii_columns == {"owner", "temperature"}


def test_pii_feature_cannot_be_a_slice() -> None:
    data = _minimal()
    data["features"]["categorical"][0]["pii"] = True
    with pytest.raises(SpecError, match=r"slices may not be pii features.*: site"):
        parse_spec(data)


def test_complete_marker() -> None:
    assert parse_spec(_minimal()).landing.complete_marker is None  # default: the first file fires
    data = _minimal()
    data["landing"] = {"complete_marker": "_SUCCESS"}
    assert parse_spec(data).landing.complete_marker == "_SUCCESS"
    data["landing"] = {"pattern": "*.csv", "complete_marker": "DONE"}
    assert parse_spec(data).landing.complete_marker == "DONE"


@pytest.mark.parametrize(
    ("landing", "error"),
    [
        ({"complete_marker": "DONE"}, "matches pattern '*' and would be read as data: name it '_DONE'"),
        ({"pattern": "*.csv", "complete_marker": "done.csv"}, "would be read as data"),
        ({"complete_marker": "sub/_SUCCESS"}, "must be a file name"),
        ({"complete_marker": ""}, "must be a file name"),
    ],
)
def test_bad_complete_marker(landing: dict[str, Any], error: str) -> None:
    data = {**_minimal(), "landing": landing}
    with pytest.raises(SpecError, match="landing") as info:
        parse_spec(data, "sensor_faults.yaml")
    assert error in str(info.value)


# ---- local days and label values ---------------------------------------------------------------


def test_a_day_partition_is_the_local_calendar_day_of_its_zone() -> None:
    start, end = partition_bounds(date(2017, 6, 1), "America/Chicago")
    assert (start, end) == (datetime(2017, 6, 1, 5, tzinfo=UTC), datetime(2017, 6, 2, 5, tzinfo=UTC))
    assert partition_bounds(date(2017, 6, 1)) == (
        datetime(2017, 6, 1, tzinfo=UTC),
        datetime(2017, 6, 2, tzinfo=UTC),
    )


@pytest.mark.parametrize(("day", "hours"), [(date(2017, 3, 12), 23), (date(2017, 11, 5), 25)])
def test_days_across_a_dst_change_have_23_or_25_hours(day: date, hours: int) -> None:
    start, end = partition_bounds(day, "America/Chicago")
    assert end - start == timedelta(hours=hours)
    # the days around it meet it exactly: no gap, no overlap
    assert partition_bounds(day - timedelta(days=1), "America/Chicago")[1] == start
    assert partition_bounds(day + timedelta(days=1), "America/Chicago")[0] == end


def test_an_unknown_time_zone_is_named() -> None:
    data = _minimal()
    data["partitioning"] = {"timezone": "America/Gotham"}
    with pytest.raises(SpecError, match=r"partitioning.timezone: .*unknown IANA time zone 'America/Gotham'"):
        parse_spec(data, "gotham.yaml")
    data["partitioning"] = {"timezone": "Europe/Paris"}
    assert parse_spec(data).partitioning.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("positive", "negative", "dtype"), [(1, 0, "int64"), ("YES", "NO", "string"), (True, False, "bool")]
)
def test_label_values_may_be_ints_strings_or_booleans(positive: Any, negative: Any, dtype: str) -> None:
    data = _minimal()
    data["label"] = {**data["label"], "positive": positive, "negative": negative}
    label = parse_spec(data).label
    assert (label.positive, label.negative, label.dtype) == (positive, negative, dtype)
    assert type(label.positive) is type(positive)


def test_label_values_of_two_types_are_refused_with_a_hint_about_yaml_booleans(tmp_path: Path) -> None:
    data = _minimal()
    path = tmp_path / "sensor_faults.yaml"
    # a bare YES is a boolean in YAML: with a quoted "NO" the two differ in type
    text = yaml.safe_dump(data).replace("delay_days: 0", 'delay_days: 0\n  positive: YES\n  negative: "NO"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError, match=r"label: .*must be of one type.*quote YES/NO"):
        load_spec(path)


def test_defaults_fit_a_real_dataset_not_only_the_demo() -> None:
    """A spec that sets no gate, tuning or guard rails: chance-level absolute floor, relative
    slice floors, the baseline as a candidate, the first model tuned, bootstrap runs spaced."""
    s = parse_spec(_minimal())
    g, t = s.gate, s.training
    assert g.min_metrics == {"roc_auc": 0.55} and g.slice_min_metric is None and g.baseline_candidate
    assert (t.tuning.trials, t.tuning.timeout_s, t.tuning.first_model_only) == (20, 120.0, True)
    assert (t.params["max_cat_to_onehot"], t.params["max_cat_threshold"]) == (32, 16)
    assert s.retrain.bootstrap_every_days == 3


def test_serving_section_defaults_and_bounds() -> None:
    spec = parse_spec(_minimal())
    s = spec.serving
    assert (s.log_requests, s.poll_seconds, s.max_rows_per_request, s.predict_threads) == (
        False,
        10.0,
        10_000,
        1,
    )
    assert s.max_latency_ms > 0 and s.log_flush_seconds > 0 and s.log_max_buffer_rows >= 1000
    custom = parse_spec({**_minimal(), "serving": {"log_requests": True, "poll_seconds": 0.5}})
    assert custom.serving.log_requests and custom.serving.poll_seconds == 0.5
    for bad, field in (
        ({"poll_seconds": 0}, "serving.poll_seconds"),
        ({"max_rows_per_request": 0}, "serving.max_rows_per_request"),
        ({"max_latency_ms": float("nan")}, "serving.max_latency_ms"),
        ({"log_request": True}, "serving.log_request"),
    ):
        with pytest.raises(SpecError, match=field.replace(".", r"\.")):
            parse_spec({**_minimal(), "serving": bad})
