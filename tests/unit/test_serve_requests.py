"""The online scoring service (``nightshift.serve``) in process: request parsing and its errors,
the app's answers, the champion switch, and the request log.

The models are real MLflow pyfuncs (``nightshift.model.NightshiftModel`` saved and loaded by
MLflow) of a small dataset that shares nothing with the demo; the registry is a stand-in
:class:`Source` (the real one is exercised by tests/integration/test_serve.py).
"""

from __future__ import annotations

import errno
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelkit import toy_spec, toy_table
from nightshift.features import FeatureTransform, labels, model_input
from nightshift.serve import (
    MODEL_VERSION,
    REQUEST_ID,
    SCORE,
    SERVED_AT,
    VERSION_HEADER,
    Features,
    Loaded,
    RequestError,
    RequestLog,
    create_app,
    decode_json,
    parse_invocations,
    parse_predict,
    serving_dir,
)
from nightshift.spec import DatasetSpec
from nightshift.storage import Store

MAX_ROWS = 50


@pytest.fixture(scope="module")
def toy() -> DatasetSpec:
    return toy_spec(serving={"max_rows_per_request": MAX_ROWS, "poll_seconds": 0.05})


def _table(n: int, seed: int) -> pa.Table:
    return toy_table(n, seed, missing=0.1)


@pytest.fixture(scope="module")
def models(toy: DatasetSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two versions (boosters of 5 and 40 rounds), packaged and loaded as MLflow pyfuncs."""
    import mlflow.pyfunc
    import xgboost as xgb

    from nightshift.model import BOOSTER, TRANSFORM, NightshiftModel

    train = _table(2000, 1)
    transform = FeatureTransform.from_spec(toy, train)
    dtrain = xgb.DMatrix(
        transform.matrix(train),
        labels(train, toy),
        feature_names=transform.feature_names,
        feature_types=transform.feature_types,
        enable_categorical=True,
    )
    root = tmp_path_factory.mktemp("serve-models")
    (root / "transform.json").write_text(transform.to_json())
    out = {}
    for version, rounds in (("1", 5), ("2", 40)):
        booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 0}, dtrain, rounds)
        booster.save_model(str(root / f"booster-{version}.ubj"))
        mlflow.pyfunc.save_model(
            str(root / f"v{version}"),
            python_model=NightshiftModel(),
            artifacts={
                BOOSTER: str(root / f"booster-{version}.ubj"),
                TRANSFORM: str(root / "transform.json"),
            },
            pip_requirements=["xgboost"],  # no inference of the requirements (a subprocess)
        )
        out[version] = mlflow.pyfunc.load_model(str(root / f"v{version}"))
    return out


class FakeSource:
    """The registry, in memory: ``champion`` is where the alias points; ``down`` makes every
    poll fail as an unreachable server does; ``broken`` versions cannot be loaded."""

    model_name = "nightshift-toy"

    def __init__(self, models: dict[str, Any], champion: str | None = "1") -> None:
        self.models, self.champion = dict(models), champion
        self.down = False
        self.broken: set[str] = set()
        self.loads: list[str] = []

    def resolve(self) -> str | None:
        if self.down:
            raise ConnectionError("Connection refused (registry down, injected)")
        return self.champion

    def load(self, version: str) -> Loaded:
        self.loads.append(version)
        if version in self.broken:
            raise OSError(f"artifact of v{version} is gone (injected)")
        return Loaded(
            version, self.models[version], run_id=f"run-{version}", trained_on="2026-01-01..2026-01-10"
        )


def _rows(n: int = 3, seed: int = 9) -> list[dict[str, Any]]:
    return _table(n, seed).select(["id", "a", "b", "kind"]).to_pylist()


def _split(rows: list[dict[str, Any]]) -> dict[str, Any]:
    cols = list(rows[0])
    return {"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols] for r in rows]}}


def _expected(model: Any, rows: list[dict[str, Any]]) -> list[float]:
    """What batch scoring computes for ``rows`` (nightshift.score: model_input, then predict)."""
    table = pa.Table.from_pylist(rows)
    frame = model_input(table, ["a", "b"], ["kind"])
    return [float(v) for v in np.asarray(model.predict(frame), dtype=np.float64)]


# ---- parsing ----------------------------------------------------------------------------------


def test_split_and_records_parse_to_the_same_features(toy: DatasetSpec) -> None:
    rows = _rows(4)
    rows[1]["a"] = None  # a missing value is a null
    features = Features.of(toy)
    split = parse_invocations(_split(rows), features, MAX_ROWS)
    records = parse_invocations({"dataframe_records": rows}, features, MAX_ROWS)
    listed = parse_predict(rows, features, MAX_ROWS)
    assert split.table.equals(records.table) and split.table.equals(listed.table)
    assert split.table.schema == pa.schema([("a", pa.float64()), ("b", pa.float64()), ("kind", pa.string())])
    assert split.ids == records.ids == [r["id"] for r in rows]
    assert split.table.column("a").null_count == 1
    # integers are numbers; a request without the id column has no ids
    ints = parse_predict([{"a": 1, "b": -2, "kind": "x"}], features, MAX_ROWS)
    assert ints.table.column("a").to_pylist() == [1.0] and ints.ids is None


BAD_REQUESTS: list[tuple[Any, int, str]] = [
    (
        {"inputs": [[1, 2]]},
        400,
        "unsupported request format (keys 'inputs'): send exactly one of dataframe_split, dataframe_records",
    ),
    ({"dataframe_split": {}, "dataframe_records": []}, 400, "send exactly one of"),
    ({"dataframe_records": [], "params": {}}, 400, "keys 'dataframe_records', 'params'"),
    ([1, 2], 400, "the body must be a JSON object"),
    ({"dataframe_split": {"data": []}}, 400, 'must be an object with "columns" and "data"'),
    ({"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}, 400, "names a more than once"),
    (
        {"dataframe_split": {"columns": ["a", "b", "kind"], "data": [[1, 2, "x"], [1, 2]]}},
        400,
        "dataframe_split.data row 1 has 2 values, not 3 values",
    ),
    (
        {"dataframe_split": {"columns": ["a", "kind"], "data": [[1, "x"]]}},
        400,
        "missing feature column(s): b",
    ),
    ({"dataframe_records": [{"a": 1, "kind": "x"}]}, 400, "missing feature column(s): b"),
    (
        {"dataframe_records": [{"a": 1, "b": 2, "kind": "x"}, {"a": 1, "kind": "x"}]},
        400,
        "row 1 lacks feature(s) b (1 row(s) lack some; send null for a missing value)",
    ),
    (
        {"dataframe_records": [{"a": 1, "b": 2, "kind": "x"}, "a row"]},
        400,
        "row 1 is a string, not an object",
    ),
    ({"dataframe_records": {"a": 1}}, 400, "dataframe_records must be a list of rows, not an object"),
    ({"dataframe_records": []}, 400, "dataframe_records has no rows to score"),
    (
        {"dataframe_records": [{"a": 1, "b": 2, "kind": "x"}, {"a": "s3cr3t", "b": 2, "kind": "x"}]},
        400,
        "feature 'a' row 1: expected a number or null, got a string",
    ),
    ({"dataframe_records": [{"a": "1.5", "b": 2, "kind": "x"}]}, 400, "feature 'a' row 0: expected a number"),
    (
        {"dataframe_records": [{"a": 1, "b": True, "kind": "x"}]},
        400,
        "feature 'b' row 0: expected a number or null, got a boolean",
    ),
    (
        {"dataframe_records": [{"a": 1, "b": [2], "kind": "x"}]},
        400,
        "feature 'b' row 0: expected a number or null, got an array",
    ),
    ({"dataframe_records": [{"a": 2**70, "b": 1, "kind": "x"}]}, 400, "feature 'a' row 0: the number is out"),
    (
        {"dataframe_records": [{"a": 1, "b": 2, "kind": 3}]},
        400,
        "feature 'kind' row 0: expected a string or null, got a number",
    ),
    ({"dataframe_records": [{"id": {"x": 1}, "a": 1, "b": 2, "kind": "x"}]}, 400, "id column 'id' row 0"),
    (
        {"dataframe_records": [{"a": 1, "b": 2, "kind": "x"}] * (MAX_ROWS + 1)},
        413,
        f"{MAX_ROWS + 1} rows in one request; at most {MAX_ROWS} (serving.max_rows_per_request)",
    ),
]


@pytest.mark.parametrize(("doc", "status", "message"), BAD_REQUESTS)
def test_a_bad_request_is_named(toy: DatasetSpec, doc: Any, status: int, message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_invocations(doc, Features.of(toy), MAX_ROWS)
    assert info.value.status == status
    assert message in info.value.message
    assert "s3cr3t" not in info.value.message  # values are never echoed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"dataframe_records": [{"a": NaN, "b": 1, "kind": "x"}]}', "feature 'a' row(s) 0: NaN or infinity"),
        (
            '{"dataframe_records": [{"a": 1, "b": 1, "kind": "x"}, {"a": 1, "b": -Infinity, "kind": "x"}]}',
            "feature 'b' row(s) 1: NaN or infinity is not a value (send null for a missing value)",
        ),
        (
            '{"dataframe_split": {"columns": ["a", "b", "kind"], "data": [[1e400, 0, "x"]]}}',
            "feature 'a' row(s) 0",
        ),
    ],
)
def test_nan_and_infinity_are_refused_with_their_rows(toy: DatasetSpec, text: str, message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_invocations(decode_json(text.encode()), Features.of(toy), MAX_ROWS)
    assert info.value.status == 400 and message in info.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"dataframe_records": [', "malformed JSON: Expecting value at line 1 column 24"),
        (b"\xff\xfe{}", "malformed JSON: not UTF-8 (byte 0)"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed JSON: nested too deeply"),
        (b"", "malformed JSON: Expecting value"),
    ],
)
def test_malformed_json_says_where(body: bytes, message: str) -> None:
    with pytest.raises(RequestError) as info:
        decode_json(body)
    assert info.value.status == 400 and info.value.message.startswith(message)


def test_a_valid_body_is_read_by_the_fast_decoder_into_the_same_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service reads a valid body with msgspec (not the standard library: half its time on
    1,000 rows, docs/benchmarks.md), into the document the standard library reads."""
    import nightshift.serve as serve

    bodies = [
        json.dumps({"dataframe_split": {"columns": ["a", "b", "kind"], "data": [[1.5, None, "é"]] * 3}}),
        '{"dataframe_records": [{"a": -0.0, "b": 12345678901234567890123, "kind": "\\u2028"}], "x": {}}',
        '  [1, 2.5e-300, true, false, null, "a\\"b"]  ',
    ]
    expected = [json.loads(b) for b in bodies]

    def refused(*_: Any, **__: Any) -> Any:
        raise AssertionError("the standard library's decoder read a valid body")

    monkeypatch.setattr(serve.json, "loads", refused)
    assert [decode_json(b.encode()) for b in bodies] == expected


# ---- the app ----------------------------------------------------------------------------------


@pytest.fixture
def source(models: dict[str, Any]) -> FakeSource:
    return FakeSource(models)


@pytest.fixture
def client(toy: DatasetSpec, source: FakeSource) -> Any:
    from starlette.testclient import TestClient

    app = create_app(toy, source, poll=False)
    with TestClient(app) as c:
        app.state.champion.poll()
        yield c


def test_answers_carry_the_score_and_the_version(client: Any, models: dict[str, Any]) -> None:
    rows = _rows(3)
    expected = _expected(models["1"], rows)
    r = client.post("/invocations", json=_split(rows))
    assert r.status_code == 200, r.text
    assert r.json() == {"model": "nightshift-toy", "model_version": "1", "predictions": expected}
    assert r.headers[VERSION_HEADER] == "1"
    r = client.post("/invocations", json={"dataframe_records": rows})
    assert r.json()["predictions"] == expected
    r = client.post("/predict", json=rows)
    assert r.json() == {
        "model": "nightshift-toy",
        "model_version": "1",
        "predictions": [{"id": row["id"], "score": s} for row, s in zip(rows, expected, strict=True)],
    }
    assert client.get("/health").json() == {"status": "ready", "model_version": "1"}
    v = client.get("/version").json()
    assert (v["version"], v["run_id"], v["trained_on"]) == ("1", "run-1", "2026-01-01..2026-01-10")
    assert v["called_as"] == "python model on Arrow"  # and it scores as the pyfunc on pandas (above)
    assert v["champion_in_registry"] == "1" and v["registry_error"] is None
    assert v["requests"]["answered"] == 3 and v["requests"]["rows"] == 9


def test_the_server_keeps_serving_after_every_bad_request(client: Any) -> None:
    good = _split(_rows(2))
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b'{"dataframe_split": {'}, 400, "malformed JSON: "),
        ({"json": {"instances": []}}, 400, "send exactly one of dataframe_split, dataframe_records"),
        ({"json": {"dataframe_records": [{"a": "x", "b": 1, "kind": "x"}]}}, 400, "feature 'a' row 0"),
        ({"content": b'[{"a": NaN, "b": 1, "kind": "x"}]', "path": "/predict"}, 400, "NaN or infinity"),
        ({"json": {"dataframe_records": [{"a": 1}] * (MAX_ROWS + 1)}}, 413, "at most 50"),
        ({"content": b"a,b\n1,2", "headers": {"Content-Type": "text/csv"}}, 415, "send application/json"),
        ({"content": b"[]", "headers": {"Content-Length": str(10**9)}}, 413, "over the limit of"),
    ]
    for request, status, message in bad:
        path = request.pop("path", "/invocations")
        r = client.post(path, **request)
        assert r.status_code == status, (request, r.text)
        assert message in r.json()["message"] and r.json()["error_code"]
        ok = client.post("/invocations", json=good)
        assert ok.status_code == 200 and len(ok.json()["predictions"]) == 2
    counts = client.get("/version").json()["requests"]
    assert counts["client_errors"] == len(bad) and counts["answered"] == len(bad)


def test_a_model_failure_is_a_500_and_the_server_keeps_serving(client: Any, source: FakeSource) -> None:
    class Exploding:
        def predict(self, frame: Any) -> Any:
            raise ZeroDivisionError("boom")

    champion = client.app.state.champion
    good = champion.current
    champion.current = Loaded("9", Exploding())
    r = client.post("/invocations", json=_split(_rows(1)))
    assert r.status_code == 500
    assert r.json()["message"] == "scoring failed (ZeroDivisionError); the server log has the details"
    champion.current = good
    assert client.post("/invocations", json=_split(_rows(1))).status_code == 200


def test_no_champion_means_not_ready_until_one_exists(toy: DatasetSpec, models: dict[str, Any]) -> None:
    from starlette.testclient import TestClient

    source = FakeSource(models, champion=None)
    app = create_app(toy, source, poll=False)
    with TestClient(app) as client:
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["reason"] == "loading the champion"
        app.state.champion.poll()
        r = client.get("/health")
        assert r.status_code == 503 and r.json()["reason"] == "nightshift-toy has no 'champion' alias yet"
        r = client.post("/invocations", json=_split(_rows(1)))
        assert r.status_code == 503
        assert r.json()["message"] == "no model loaded yet: nightshift-toy has no 'champion' alias yet"
        source.champion = "2"
        app.state.champion.poll()
        assert client.get("/health").json() == {"status": "ready", "model_version": "2"}
        assert client.post("/invocations", json=_split(_rows(1))).json()["model_version"] == "2"


def test_a_promotion_switches_and_a_rollback_switches_back(
    client: Any, source: FakeSource, models: dict[str, Any]
) -> None:
    rows = _rows(5)
    champion = client.app.state.champion
    assert client.post("/invocations", json=_split(rows)).json()["model_version"] == "1"
    source.champion = "2"
    champion.poll()
    r = client.post("/invocations", json=_split(rows)).json()
    assert r["model_version"] == "2" and r["predictions"] == _expected(models["2"], rows)
    source.champion = "1"
    champion.poll()
    assert client.post("/invocations", json=_split(rows)).json()["model_version"] == "1"
    assert [(s["from"], s["to"]) for s in client.get("/version").json()["switches"]] == [
        (None, "1"),
        ("1", "2"),
        ("2", "1"),
    ]
    champion.poll()  # nothing moved: nothing is loaded again
    assert source.loads == ["1", "2", "1"]


def test_a_request_in_flight_finishes_on_the_version_it_started_with(
    client: Any, source: FakeSource, models: dict[str, Any]
) -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow:
        """Version 1, but each prediction waits until the test lets it go."""

        def predict(self, frame: Any) -> Any:
            if len(frame) == 3:  # the request below, not the probe rows of the warm-up
                entered.set()
                assert release.wait(30)
            return models["1"].predict(frame)

    source.models["1"] = Slow()
    champion = client.app.state.champion
    champion.current = None
    champion.poll()  # loads the slow v1
    answers: list[Any] = []
    slow = threading.Thread(target=lambda: answers.append(client.post("/invocations", json=_split(_rows(3)))))
    slow.start()
    assert entered.wait(30)
    source.champion = "2"
    champion.poll()  # the switch happens while v1 is still scoring
    assert client.post("/invocations", json=_split(_rows(2))).json()["model_version"] == "2"
    release.set()
    slow.join(30)
    assert answers[0].status_code == 200 and answers[0].json()["model_version"] == "1"
    assert answers[0].json()["predictions"] == _expected(models["1"], _rows(3))


def test_an_unreachable_registry_or_a_broken_version_keeps_the_loaded_one_serving(
    client: Any, source: FakeSource
) -> None:
    champion = client.app.state.champion
    source.down = True
    champion.poll()
    v = client.get("/version").json()
    assert "ConnectionError: Connection refused (registry down, injected)" in v["registry_error"]
    assert client.get("/health").json() == {"status": "ready", "model_version": "1"}
    assert client.post("/invocations", json=_split(_rows(1))).status_code == 200
    source.down = False
    source.champion = "2"
    source.broken.add("2")
    champion.poll()
    v = client.get("/version").json()
    assert v["registry_error"] is None and v["version"] == "1" and v["champion_in_registry"] == "2"
    assert "v2 cannot be served: OSError: artifact of v2 is gone (injected)" in v["load_error"]
    assert client.post("/invocations", json=_split(_rows(1))).json()["model_version"] == "1"
    source.broken.clear()
    champion.poll()
    v = client.get("/version").json()
    assert v["version"] == "2" and v["load_error"] is None


def test_a_model_that_takes_pandas_only_is_served_through_the_pyfunc(
    toy: DatasetSpec, source: FakeSource, tmp_path: Path
) -> None:
    """The fast path (the packaged Python model on Arrow) is taken only where it scores as the
    pyfunc does; another model kind is called as the pyfunc, on pandas."""
    import mlflow.pyfunc
    from starlette.testclient import TestClient

    class PandasOnly(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            return (model_input["a"].fillna(0.0) > 0).astype(float).to_numpy() * 0.5 + 0.25

    mlflow.pyfunc.save_model(str(tmp_path / "pandas"), python_model=PandasOnly(), pip_requirements=[])
    source.models["3"] = mlflow.pyfunc.load_model(str(tmp_path / "pandas"))
    source.champion = "3"
    app = create_app(toy, source, poll=False)
    with TestClient(app) as client:
        app.state.champion.poll()
        rows = [{"a": 1.0, "b": 0.0, "kind": "x"}, {"a": None, "b": 0.0, "kind": "y"}]
        r = client.post("/predict", json=rows)
        assert r.status_code == 200, r.text
        assert [p["score"] for p in r.json()["predictions"]] == [0.75, 0.25]
        assert client.get("/version").json()["called_as"] == "pyfunc on pandas"
        source.champion = "1"
        app.state.champion.poll()
        assert client.get("/version").json()["called_as"] == "python model on Arrow"


def test_the_packaged_booster_scores_the_matrix_without_building_a_dmatrix(
    models: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packaged model predicts through its booster on the transform's matrix
    (``inplace_predict``): the scores of the DMatrix path, without building one."""
    import xgboost as xgb

    from nightshift.model import predict

    model = models["2"]
    inner = model.unwrap_python_model()
    table = _table(500, 4).select(["a", "b", "kind"])
    via_dmatrix = predict(inner.booster, inner.transform, table).tolist()  # training's call

    def built(*_: Any, **__: Any) -> Any:
        raise AssertionError("a DMatrix was built to score")

    monkeypatch.setattr(xgb, "DMatrix", built)
    assert inner.predict(None, table).tolist() == via_dmatrix
    assert np.asarray(model.predict(model_input(table, ["a", "b"], ["kind"]))).tolist() == via_dmatrix


def test_a_version_that_cannot_score_is_never_switched_to(client: Any, source: FakeSource) -> None:
    class Unscorable:
        def predict(self, frame: Any) -> Any:
            raise RuntimeError("needs a GPU (injected)")

    source.models["2"] = Unscorable()
    source.champion = "2"
    client.app.state.champion.poll()
    v = client.get("/version").json()
    assert v["version"] == "1" and "v2 cannot be served: RuntimeError: needs a GPU" in v["load_error"]


def test_the_poll_thread_follows_the_alias(toy: DatasetSpec, source: FakeSource) -> None:
    import time

    from starlette.testclient import TestClient

    app = create_app(toy, source)  # polls every 0.05 s (the toy spec)
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        source.champion = "2"
        while client.get("/health").json().get("model_version") != "2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/version").json()["version"] == "2"


# ---- the request log --------------------------------------------------------------------------


def test_answered_rows_are_logged_by_local_day_and_flushed_on_shutdown(
    toy: DatasetSpec, source: FakeSource, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    store = Store((tmp_path / "store").as_uri())
    log = RequestLog(store, toy, flush_seconds=3600)
    app = create_app(toy, source, log, poll=False)
    rows = _rows(4)
    with TestClient(app) as client:
        app.state.champion.poll()
        first = client.post("/invocations", json=_split(rows)).json()
        client.post("/predict", json=[{k: v for k, v in r.items() if k != "id"} for r in rows[:1]])
        assert client.post("/predict", json=[{"a": "x"}]).status_code == 400  # not logged
        assert client.get("/version").json()["request_log"]["buffered_rows"] == 5
    day = datetime.now(UTC).date()
    files = store.list_files(serving_dir(store, "toy", day), "part-*.parquet")
    assert len(files) == 1
    table = pq.read_table(store.open_input(files[0]))
    assert table.column_names == ["id", "a", "b", "kind", SCORE, MODEL_VERSION, SERVED_AT, REQUEST_ID]
    assert table.num_rows == 5
    assert table.column("id").to_pylist() == [str(r["id"]) for r in rows] + [None]
    assert table.column(SCORE).to_pylist()[:4] == first["predictions"]
    assert set(table.column(MODEL_VERSION).to_pylist()) == {"1"}
    assert len(set(table.column(REQUEST_ID).to_pylist())) == 2
    assert log.status()["written_rows"] == 5 and log.status()["buffered_rows"] == 0


def test_the_request_log_survives_a_store_outage_and_stays_bounded(
    toy: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightshift.serve import Batch

    store = Store((tmp_path / "store").as_uri())
    log = RequestLog(store, toy, flush_seconds=3600, max_rows=10)
    batch = Batch(pa.table({"a": [1.0, 2.0], "b": [0.5, None], "kind": ["x", None]}), ids=[7, "p-8"])
    day1, day2 = datetime(2026, 5, 1, 23, 59, tzinfo=UTC), datetime(2026, 5, 2, 0, 1, tzinfo=UTC)
    log.add(batch, np.array([0.1, 0.2]), "3", day1)
    log.add(batch, np.array([0.3, 0.4]), "4", day2)

    real = Store.open_output_atomic

    def full_disk(self: Store, path: str) -> Any:
        raise self.io_error("writing", path, OSError(errno.ENOSPC, "No space left on device (injected)"))

    monkeypatch.setattr(Store, "open_output_atomic", full_disk)
    assert log.flush() == 0
    assert "No space left on device" in log.status()["last_error"] and log.status()["buffered_rows"] == 4
    for _ in range(5):  # 10 more rows while the store is full: the oldest go, counted
        log.add(batch, np.array([0.5, 0.6]), "4", day2)
    assert log.status()["buffered_rows"] == 10 and log.status()["dropped_rows"] == 4
    monkeypatch.setattr(Store, "open_output_atomic", real)
    assert log.flush() == 10
    assert log.status()["last_error"] is None
    assert not store.list_files(serving_dir(store, "toy", day1.date()))  # day 1's rows were dropped
    (path,) = store.list_files(serving_dir(store, "toy", day2.date()))
    table = pq.read_table(store.open_input(path))
    assert table.num_rows == 10 and table.column("id").to_pylist()[:2] == ["7", "p-8"]
    assert json.dumps(log.status())  # /version shows it


def test_a_long_error_line_keeps_its_cause_at_the_end() -> None:
    from nightshift.serve import _first_line

    deep = "/".join(["folder"] * 80)  # a store path as long as a test's or a bucket's can be
    error = OSError(f"disk full while writing file:///{deep}/part.parquet: [Errno 28] No space left")
    line = _first_line(error)
    assert line.startswith("OSError: disk full while writing file:///folder/")
    assert line.endswith("[Errno 28] No space left") and len(line) < 330
    assert _first_line(ValueError("short\nsecond line")) == "ValueError: short"
