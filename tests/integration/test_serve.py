"""``nightshift serve`` as a real process on 127.0.0.1 against a real MLflow server: it scores
the champion as batch scoring does, names bad requests and keeps serving, follows a promotion
and a rollback under load without failing a request, keeps serving through a registry outage,
and logs what it served, which the monitor then reports as drift of served inputs.

Two versions are trained (few rounds) on the session's model store with ``train_step``; the
server gets a copy of the payments spec with ``serving: {poll_seconds: 1, log_requests: true}``
and a store of its own for the request log. The tests run in file order on one server.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from modelkit import MODEL_DAYS, MODEL_START, MlflowServer, ServeProcess, model_env, post_json

ROOT = Path(__file__).resolve().parents[2]
LAST_DAY = MODEL_START + timedelta(days=MODEL_DAYS - 1)
POLL_S = 1.0
MAX_ROWS = 2000
# a promotion serves within the poll interval plus the new version's download and load
SWITCH_BOUND_S = POLL_S + 45


@pytest.fixture(scope="module")
def served(
    model_store: str, mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Two registered versions (v1 champion), and ``nightshift serve`` following them."""
    from nightshift import registry
    from nightshift.spec import load_spec
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.storage import Store

    root = tmp_path_factory.mktemp("serve")
    datasets = root / "datasets"
    datasets.mkdir()
    text = (ROOT / "datasets" / "payments.yaml").read_text()
    text += f"serving:\n  poll_seconds: {POLL_S}\n  log_requests: true\n  log_flush_seconds: 2\n"
    text += f"  max_rows_per_request: {MAX_ROWS}\n"
    (datasets / "payments.yaml").write_text(text)
    spec = load_spec(datasets / "payments.yaml")
    log_store = Store((root / "store").as_uri())
    with model_env(model_store, mlflow_server.url):
        client = registry.configure()
        store = Store(model_store)
        versions = []
        for key, rounds in (("a", 30), ("b", 12)):
            summary = train_step(store, spec, f"test_serve/{key}", TrainRequest(num_boost_round=rounds))
            versions.append(registry.register(client, spec.name, summary.run_id, f"test_serve/{key}"))
        registry.promote(
            client, store, spec.name, versions[0], actor="test", trigger="test_serve", reason="first"
        )
        server = ServeProcess(
            root / "server",
            "payments",
            {"NIGHTSHIFT_DATASETS_DIR": str(datasets), "NIGHTSHIFT_STORE_URL": log_store.url},
        )
        server.start()
        try:
            yield {
                "client": client,
                "store": store,
                "log_store": log_store,
                "spec": spec,
                "versions": versions,
                "server": server,
                "mlflow": mlflow_server,
                "datasets": datasets,
            }
        finally:
            server.stop()


def _rows(served: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` events of the last curated day as a client sends them (no event time)."""
    import pyarrow.parquet as pq

    store, spec = served["store"], served["spec"]
    table = pq.read_table(store.open_input(store.published_file("payments", "events", LAST_DAY)))
    return table.slice(0, n).select([spec.id_column, *spec.feature_names]).to_pylist()


def _split(rows: list[dict[str, Any]]) -> bytes:
    cols = list(rows[0])
    return json.dumps(
        {"dataframe_split": {"columns": cols, "data": [[r[c] for c in cols] for r in rows]}}
    ).encode()


def _conn(served: dict[str, Any]) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", served["server"].port, timeout=30)


def test_serves_the_champion_as_batch_scoring_scores(served: dict[str, Any]) -> None:
    import numpy as np
    import pyarrow as pa

    from nightshift import registry
    from nightshift.features import model_input

    spec, v1 = served["spec"], served["versions"][0]
    rows = _rows(served, 1000)
    model = registry.load_model("payments", v1)
    numeric = [f.name for f in spec.features.numeric]
    categorical = [f.name for f in spec.features.categorical]
    batch = np.asarray(model.predict(model_input(pa.Table.from_pylist(rows), numeric, categorical)))
    conn = _conn(served)
    status, body = post_json(conn, "/invocations", _split(rows[:3]))
    assert status == 200, body
    assert body == {"model": "nightshift-payments", "model_version": v1, "predictions": batch[:3].tolist()}
    status, body = post_json(conn, "/invocations", json.dumps({"dataframe_records": rows}).encode())
    assert status == 200 and body["predictions"] == batch.tolist()
    status, body = post_json(conn, "/predict", json.dumps(rows[:2]).encode())
    assert status == 200
    assert body["predictions"] == [
        {"payment_id": r["payment_id"], "score": s} for r, s in zip(rows, batch[:2], strict=False)
    ]

    mv = served["client"].get_model_version("nightshift-payments", v1)
    status, info = served["server"].get("/version")
    assert status == 200
    assert (info["version"], info["run_id"], info["champion_in_registry"]) == (v1, mv.run_id, v1)
    assert info["trained_on"] == served["client"].get_run(mv.run_id).data.tags["nightshift.window"]
    assert info["registry_error"] is None and info["request_log"]["where"].endswith("/serving/payments")
    assert info["called_as"] == "python model on Arrow"  # and it scored as the pyfunc on pandas, above
    assert served["server"].get("/health") == (200, {"status": "ready", "model_version": v1})


def test_bad_requests_get_4xx_naming_the_problem_and_the_server_keeps_serving(served: dict[str, Any]) -> None:
    import socket

    rows = _rows(served, 2)
    good = _split(rows)
    text_row = dict(rows[0], amount="12.5")
    no_column = [{k: v for k, v in r.items() if k != "tx_hour"} for r in rows]
    nan = json.dumps({"dataframe_records": rows}).replace('"amount": ', '"amount": NaN, "was": ', 1)
    bad: list[tuple[str, bytes, str, int, str]] = [
        ("/invocations", b'{"dataframe_split": {"columns": [', "application/json", 400, "malformed JSON: "),
        (
            "/predict",
            json.dumps(no_column).encode(),
            "application/json",
            400,
            "missing feature column(s): tx_hour",
        ),
        (
            "/predict",
            json.dumps([rows[0], text_row]).encode(),
            "application/json",
            400,
            "feature 'amount' row 1: expected a number or null, got a string",
        ),
        ("/invocations", nan.encode(), "application/json", 400, "feature 'amount' row(s) 0: NaN or infinity"),
        (
            "/invocations",
            _split(_rows(served, MAX_ROWS + 1)),
            "application/json",
            413,
            f"{MAX_ROWS + 1} rows in one request; at most {MAX_ROWS}",
        ),
        (
            "/invocations",
            b'{"instances": [[1, 2]]}',
            "application/json",
            400,
            "send exactly one of dataframe_split, dataframe_records",
        ),
        ("/invocations", b"amount\n1", "text/csv", 415, "send application/json"),
    ]
    conn = _conn(served)
    for path, body, content_type, status, message in bad:
        got, answer = post_json(conn, path, body, content_type)
        assert (got, message in answer["message"]) == (status, True), (path, answer)
        assert "12.5" not in answer["message"]  # values are never echoed
        assert post_json(conn, "/invocations", good)[0] == 200
    # not HTTP at all, and a client that hangs up halfway through its body
    with socket.create_connection(("127.0.0.1", served["server"].port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        s.recv(1024)
    with socket.create_connection(("127.0.0.1", served["server"].port), timeout=10) as s:
        s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 5000\r\n\r\n{\"dataframe_split\": ")  # fmt: skip
    assert post_json(_conn(served), "/invocations", good)[0] == 200
    assert served["server"].proc.poll() is None


def test_a_candidate_whose_artifact_cannot_be_loaded_fails_the_serving_check(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's serving check on a registered candidate whose model files are gone from the
    artifact store: a fresh ``nightshift serve`` cannot load it, so it is rejected with the
    reason, tagged and audited, and the champion is untouched."""
    import shutil
    from urllib.parse import urlparse

    import mlflow.pyfunc
    import pyarrow as pa

    from nightshift import registry
    from nightshift.steps.gate import _log_serving_sample, decide_step, serving_check_step
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.verdict import GateResult

    client, store, spec = served["client"], served["store"], served["spec"]
    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(served["datasets"]))  # the server's spec
    champion = registry.alias_version(client, "payments", registry.CHAMPION)
    key = "test_serve/broken"
    run_id = train_step(store, spec, key, TrainRequest(num_boost_round=5)).run_id
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    _log_serving_sample(client, spec, run_id, pa.Table.from_pylist(_rows(served, 200)), model)
    version = registry.register(client, spec.name, run_id, key)
    model_id = client.get_run(run_id).data.tags["nightshift.model_id"]
    location = urlparse(client.get_logged_model(model_id).artifact_location).path.lstrip("/")
    shutil.rmtree(served["mlflow"].root / "artifacts" / location)  # the fault: its files are gone

    verdict = GateResult(
        run_id, run_id, version, promote=True, reason="beats the champion", champion=champion
    )
    checked = serving_check_step(store, spec, verdict)
    serving = checked.serving or {}
    assert not checked.promote and serving["failures"] == ["load"], serving
    why = f"v{version} cannot be served: a fresh `nightshift serve` could not load it: RegistryError: "
    why += f"nightshift-payments v{version}: its model artifact cannot be loaded from "
    assert checked.reason.startswith(f"rejected: serving: {why}"), checked.reason
    assert checked.hints[0].startswith("the server cannot load or score the packaged model")
    tags = client.get_model_version("nightshift-payments", version).tags
    assert (tags["nightshift.serving"], tags["nightshift.verdict"]) == ("failed", "reject")

    event = decide_step(store, spec, checked, actor="test", trigger="test_serve")
    assert event.serving is not None
    assert (event.action, event.version, event.serving["failures"]) == ("reject", version, ["load"])
    last = registry.read_audit(store, "payments")[-1]
    assert (last.action, last.version, last.serving) == ("reject", version, event.serving)
    assert registry.alias_version(client, "payments", registry.CHAMPION) == champion
    assert served["server"].get("/health") == (200, {"status": "ready", "model_version": champion})


def test_the_check_s_server_is_pinned_and_stops_when_its_parent_end_of_stdin_closes(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nightshift serve`` as the serving check starts it: on the socket it is handed, serving
    only its version (one the registry lacks: the reason, and no champion in its place), and
    gone once its stdin closes, as when the process that started it dies."""
    import subprocess

    from nightshift import registry
    from nightshift import servecheck as sc

    monkeypatch.setenv("NIGHTSHIFT_DATASETS_DIR", str(served["datasets"]))
    server = sc.CheckServer(sc.serve_command(served["spec"], "999"), {**os.environ})
    server.start()
    try:
        reason = server.wait_ready("999", 120)
        assert reason is not None and "v999" in reason, reason
        status, info = server.get("/version", 10)
        assert status == 200 and info["version"] is None and info["champion_in_registry"] == "999", info
        assert registry.alias_version(served["client"], "payments", registry.CHAMPION) is not None
        assert server.proc is not None and server.proc.stdin is not None
        server.proc.stdin.close()  # the parent's end: nothing is signalled
        assert server.proc.wait(timeout=60) == 0
    except subprocess.TimeoutExpired:
        raise AssertionError("the server kept running after its stdin closed") from None
    finally:
        server.stop()


class Load:
    """A client thread sending one-row requests back to back on a kept-alive connection:
    every answer's time, status and version, and every failure (status or exception)."""

    def __init__(self, served: dict[str, Any]) -> None:
        self.served, self.body = served, _split(_rows(served, 1))
        self.answers: list[tuple[float, str]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = _conn(self.served)
        while not self._stop.is_set():
            try:
                status, body = post_json(conn, "/invocations", self.body)
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = _conn(self.served)
                continue
            if status != 200:
                self.failures.append(f"{status}: {body}")
            else:
                self.answers.append((time.monotonic(), body["model_version"]))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(60)

    def wait_for(self, version: str, since: float, timeout: float) -> float:
        """Seconds from ``since`` to the first answer of ``version`` after it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, v in list(self.answers):
                if t >= since and v == version:
                    return t - since
            time.sleep(0.05)
        raise AssertionError(f"no answer of v{version} within {timeout:.0f} s; last: {self.answers[-3:]}")

    def changes(self) -> list[str]:
        """The versions that answered, consecutive repeats collapsed."""
        out: list[str] = []
        for _, v in self.answers:
            if not out or out[-1] != v:
                out.append(v)
        return out


def test_a_promotion_and_a_rollback_under_load_fail_no_request(served: dict[str, Any]) -> None:
    from nightshift import registry

    client, store = served["client"], served["store"]
    v1, v2 = served["versions"]
    with Load(served) as load:
        load.wait_for(v1, 0.0, 30)
        t0 = time.monotonic()
        registry.promote(client, store, "payments", v2, actor="test", trigger="test_serve", reason="v2")
        to_v2 = load.wait_for(v2, t0, SWITCH_BOUND_S)
        t1 = time.monotonic()
        registry.rollback(client, store, "payments", actor="test", trigger="test_serve", reason="back")
        to_v1 = load.wait_for(v1, t1, SWITCH_BOUND_S)
        time.sleep(1)  # more answers after the switch back
    print(f"\nswitch to v{v2} answered after {to_v2:.1f} s, back to v{v1} after {to_v1:.1f} s; "
          f"{len(load.answers)} answers")  # fmt: skip
    assert load.failures == []
    assert load.changes() == [v1, v2, v1]
    assert len(load.answers) > 50
    info = served["server"].get("/version")[1]
    assert [(s["from"], s["to"]) for s in info["switches"]] == [(None, v1), (v1, v2), (v2, v1)]


def test_an_unreachable_registry_leaves_the_champion_serving(served: dict[str, Any]) -> None:
    server, mlflow = served["server"], served["mlflow"]
    v1 = served["versions"][0]
    good = _split(_rows(served, 1))
    mlflow.stop()
    try:
        deadline = time.monotonic() + 60
        while not server.get("/version")[1].get("registry_error") and time.monotonic() < deadline:
            time.sleep(0.2)
        info = server.get("/version")[1]
        assert "unreachable" in info["registry_error"] and info["version"] == v1, info
        assert server.get("/health") == (200, {"status": "ready", "model_version": v1})
        status, body = post_json(_conn(served), "/invocations", good)
        assert (status, body["model_version"]) == (200, v1)
    finally:
        mlflow.start()
    deadline = time.monotonic() + 60
    while server.get("/version")[1].get("registry_error") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.get("/version")[1]["registry_error"] is None


def test_served_rows_are_logged_and_monitored_as_drift_of_served_inputs(served: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    from nightshift.serve import MODEL_VERSION, SCORE
    from nightshift.steps.monitor import monitor_served, monitor_step

    server, log_store, spec = served["server"], served["log_store"], served["spec"]
    v1, v2 = served["versions"]
    answered = server.get("/version")[1]["requests"]["rows"]
    assert server.stop() == 0  # SIGTERM: a graceful stop that flushes the request log
    days = log_store.list_partitions(log_store.path("serving", "payments"))
    assert days
    parts = [p for d in days for p in log_store.list_files(log_store.path("serving", "payments", f"dt={d}"))]
    tables = [pq.read_table(log_store.open_input(p)) for p in parts]
    assert sum(t.num_rows for t in tables) == answered
    assert {*spec.feature_names, SCORE, MODEL_VERSION} <= set(tables[0].column_names)
    assert {v for t in tables for v in t.column(MODEL_VERSION).unique().to_pylist()} == {v1, v2}

    reported = monitor_served(log_store, spec, served["client"])
    assert {r.version for r in reported} == {v1, v2}
    assert sum(r.rows for r in reported) == answered
    big = next(r for r in reported if r.version == v1)  # it scored the 1,000-row request
    assert big.rows >= spec.monitoring.min_rows and big.drift_share is not None and big.drift_share >= 0
    summary_path = log_store.path(
        "reports", "payments", "serving-drift", f"dt={big.dt}", f"v{v1}-summary.json"
    )
    summary = log_store.read_json(summary_path)
    assert (
        summary["source"] == "serving"
        and summary["enough_rows"]
        and summary["report"].endswith("-drift.html")
    )
    assert log_store.exists(summary["report"].removeprefix("file://"))
    # the monitor step reports served days too, once: nothing new since, nothing redone
    assert monitor_step(log_store, spec).serving_drift == ()
    assert monitor_served(log_store, spec, served["client"]) == []
    # a part flushed later (e.g. by the next server start) gets the day reported again
    day_dir = log_store.path("serving", "payments", f"dt={big.dt}")
    log_store.write_bytes_atomic(f"{day_dir}/part-later.parquet", log_store.read_bytes(parts[0]))
    again = monitor_served(log_store, spec, served["client"])
    assert {r.dt for r in again} == {big.dt} and sum(r.rows for r in again) > answered
