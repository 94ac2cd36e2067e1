"""The monitor stage: each scored day against the reference of the version that scored it
(Evidently drift), each labelled day's performance, served inputs' drift, the history, and the
alert the spec's policy raises on it."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from nightshift.backends import Backends, as_backends
from nightshift.monitor import Alert, history_path, read_history
from nightshift.spec import DatasetSpec, partition_bounds
from nightshift.storage import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftDay:
    """A day's drift report against the reference of the version that scored it."""

    dt: str
    version: str
    drift_share: float | None  # None (NaN before): too few rows to judge
    drifting: bool
    top: tuple[str, ...]
    report: str


@dataclass(frozen=True)
class PerformanceDay:
    """A labelled day's performance report for the version that scored it."""

    dt: str
    version: str
    roc_auc: float | None
    report: str


@dataclass(frozen=True)
class Recovered:
    """A day reported before whose history row was rebuilt from its summary."""

    dt: str
    version: str
    kind: str  # drift | performance


@dataclass(frozen=True)
class ServedDrift:
    """A served day's drift for one version that answered it; ``error`` when it has no
    monitoring reference (then no report)."""

    dt: str
    version: str
    rows: int
    drift_share: float | None = None
    drifting: bool = False
    top: tuple[str, ...] = ()
    report: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class MonitorResult:
    """A monitor run: the days it reported, the history rows it rebuilt, the history table
    (``None``: nothing scored yet) and the served days it reported."""

    drift: tuple[DriftDay, ...] = ()
    performance: tuple[PerformanceDay, ...] = ()
    recovered: tuple[Recovered, ...] = ()
    history: str | None = None
    history_rows: int = 0
    serving_drift: tuple[ServedDrift, ...] = ()


def _finite(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass
class _Reference:
    """What monitoring needs of one model version (loaded once per monitor run)."""

    version: str
    run_id: str
    table: Any
    weights: dict[str, float]
    holdout_auc: float | None


def _reference(client: Any, spec: DatasetSpec, version: str) -> _Reference:
    import mlflow
    import pyarrow.parquet as pq

    from nightshift import registry
    from nightshift.monitor import IMPORTANCE_ARTIFACT, REFERENCE_ARTIFACT, MonitoringError, feature_weights

    with registry.speaking_errors(f"reading the monitoring reference of v{version}"):
        run_id = client.get_model_version(registry.model_name(spec.name), version).run_id
        run = client.get_run(run_id)
        names = {a.path for a in client.list_artifacts(run_id, "reference")}
        if REFERENCE_ARTIFACT not in names:
            raise MonitoringError(
                f"{spec.name} v{version} (run {run_id}) has no monitoring reference "
                f"({REFERENCE_ARTIFACT}): it was trained before monitoring existed; retrain it"
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp
            )
            table = pq.read_table(path)
        importance = None
        if IMPORTANCE_ARTIFACT in {a.path for a in client.list_artifacts(run_id)}:
            importance = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/{IMPORTANCE_ARTIFACT}"))
        else:  # the gate logs it: a version registered without one weighs features evenly
            log.warning("%s v%s (run %s) has no %s: drift weighs its features evenly",
                        spec.name, version, run_id, IMPORTANCE_ARTIFACT)  # fmt: skip
    return _Reference(
        version, run_id, table, feature_weights(importance, spec), run.data.metrics.get("holdout_roc_auc")
    )


def _scored(store: Store, spec: DatasetSpec, dt: date) -> tuple[Any, str]:
    """A day's events with the ``score`` column, and the model version that scored them."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nightshift.monitor import MonitoringError
    from nightshift.score import MODEL_VERSION, SCORE

    preds = pq.read_table(store.open_input(store.predictions_file(spec.name, dt)))
    events = pq.read_table(store.open_input(store.published_file(spec.name, "events", dt)))
    versions = preds.column(MODEL_VERSION).unique().to_pylist()
    same = preds.num_rows == events.num_rows and bool(
        pc.all(pc.equal(preds.column(spec.id_column), events.column(spec.id_column))).as_py()
    )
    if len(versions) != 1 or not same:
        raise MonitoringError(
            f"{spec.name} dt={dt}: predictions do not match the curated partition "
            f"(versions {versions}, {preds.num_rows} vs {events.num_rows} rows); re-score the day"
        )
    return events.append_column(SCORE, preds.column(SCORE)), str(versions[0])


def _day_labels(store: Store, spec: DatasetSpec, dt: date, latest_arrival: date) -> Any | None:
    """The labels of event day ``dt`` when they are due (``None`` before)."""
    from nightshift.train import read_labels

    due = dt + timedelta(days=spec.label.delay_days)
    if due > latest_arrival:
        return None
    paths = [
        store.published_file(spec.name, "labels", dt + timedelta(days=i))
        for i in range(spec.label.delay_days + 1)
    ]
    present = [p for p in paths if store.exists(p)]
    return read_labels(store, spec, present) if present else None


def _publish(
    store: Store, client: Any, run_id: str, local: Path, directory: str, artifact_path: str, last: str
) -> None:
    """Copy a report folder to the store (each file atomically) and to the version's run,
    except the file ``last`` (the day's summary: written after its metrics, it marks the day
    done), which the caller publishes with :func:`_publish_last`."""
    from nightshift import registry

    for f in sorted(local.iterdir()):
        if f.name != last:
            store.upload_file_atomic(f, f"{directory}/{f.name}")
    with registry.speaking_errors(f"logging monitoring reports to run {run_id}"):
        client.log_artifacts(run_id, str(local), artifact_path=artifact_path)


def _publish_last(store: Store, local: Path, directory: str, last: str) -> None:
    store.upload_file_atomic(local / last, f"{directory}/{last}")


def _day_metric(key: str, value: float, dt: date, tz: tzinfo) -> Any:
    """A metric stepped by the day it describes (days since 1970), timestamped at that day's
    local midnight in ``tz`` (the spec's ``partitioning.timezone``)."""
    from mlflow.entities import Metric

    ts = int(partition_bounds(dt, tz)[0].timestamp() * 1000)
    return Metric(key, float(value), ts, (dt - date(1970, 1, 1)).days)


def _live_metrics(
    drift: dict[str, Any] | None, perf: dict[str, Any] | None, dt: date, tz: tzinfo
) -> list[Any]:
    """The ``live_*`` metrics of a day's drift or performance summary (NaN left out)."""
    out = []
    if drift is not None:
        if drift.get("enough_rows"):
            out.append(_day_metric("live_drift_share", drift["drift_share"], dt, tz))
        out.append(_day_metric("live_prediction_drift", drift["prediction_drift"], dt, tz))
    if perf is not None:
        m = perf["metrics"]
        out += [_day_metric(f"live_{k}", m[k], dt, tz) for k in ("roc_auc", "log_loss", "average_precision")]
        out.append(_day_metric("live_ece", perf["ece"], dt, tz))
    return [x for x in out if x.value is not None and not np.isnan(x.value)]


def _log_live(client: Any, run_id: str, metrics: list[Any], what: str) -> None:
    """Log a day's live metrics (MLflow drops an identical point logged again: idempotent)."""
    from nightshift import registry

    with registry.speaking_errors(f"logging {what} to run {run_id}"):
        client.log_batch(run_id, metrics=metrics)


def monitor_step(backends: Backends | Store, spec: DatasetSpec, as_of: date | None = None) -> MonitorResult:
    """Report every recent scored day not reported yet (drift, data quality) and every day
    whose labels have landed since (performance of the version that scored it); update the
    history table. Idempotent: a (day, version) already reported is not redone. With
    ``as_of``, only what was known on that day: predictions of days up to it, labels that
    arrived by then (a replay of the past).

    A day's summary JSON is written last, after its reports and its MLflow ``live_*`` metrics,
    and the history is derived from the summaries: a summary the history lacks (a run that
    failed before writing the history) has its row rebuilt and its metrics logged again on the
    next run, so a failure anywhere loses nothing."""
    import pyarrow.parquet as pq

    from nightshift import monitor

    b = as_backends(backends)
    store, client = b.store, b.client
    predicted = store.list_partitions(store.path("predictions", spec.name))
    predicted = [d for d in predicted if as_of is None or d <= as_of]
    if not predicted:
        return MonitorResult(
            history_rows=len(read_history(store, spec.name)),
            serving_drift=tuple(monitor_served(store, spec, client)),
        )
    first = predicted[-1] - timedelta(days=spec.monitoring.lookback_days - 1)
    arrivals = store.list_partitions(store.path("labels", spec.name))
    arrivals = [d for d in arrivals if as_of is None or d <= as_of]
    run = _MonitorRun(store, spec, client)
    for dt in (d for d in predicted if d >= first):
        if store.exists(store.published_file(spec.name, "events", dt)):
            table, version = run.drift_day(dt)
            if arrivals:
                run.performance_day(dt, table, version, arrivals[-1])
    rows = monitor.merge_history(list(run.known.values()), run.new_rows)
    if run.new_rows:
        with store.open_output_atomic(history_path(store, spec.name)) as sink:
            pq.write_table(monitor.history_table(rows), sink)
    return MonitorResult(
        drift=tuple(run.drifted),
        performance=tuple(run.perfs),
        recovered=tuple(run.recovered),
        history=store.uri(history_path(store, spec.name)),
        history_rows=len(rows),
        serving_drift=tuple(monitor_served(store, spec, client)),
    )


class _MonitorRun:
    """One monitor run's state: the references it loaded (once per version), the history it
    found, and the rows, reports and recoveries it adds."""

    def __init__(self, store: Store, spec: DatasetSpec, client: Any) -> None:
        self.store, self.spec, self.client = store, spec, client
        self.tz = spec.partitioning.tz
        self.refs: dict[str, _Reference] = {}
        self.known = {(r["dt"], str(r["version"])): r for r in read_history(store, spec.name)}
        self.new_rows: list[dict[str, Any]] = []
        self.drifted: list[DriftDay] = []
        self.perfs: list[PerformanceDay] = []
        self.recovered: list[Recovered] = []

    def ref_for(self, version: str) -> _Reference:
        if version not in self.refs:
            self.refs[version] = _reference(self.client, self.spec, version)
        return self.refs[version]

    def recover(self, kind: str, path: str, dt: date, version: str) -> None:
        """A day reported before whose history row is missing: rebuild it, re-log its metrics."""
        from nightshift import monitor

        row = self.known.get((dt.isoformat(), version)) or {}
        if row.get(f"{kind}_report"):
            return
        summary = self.store.read_json(path)
        drift_s, perf_s = (summary, None) if kind == "drift" else (None, summary)
        metrics = _live_metrics(drift_s, perf_s, dt, self.tz)
        _log_live(self.client, self.ref_for(version).run_id, metrics, f"{kind} of {dt}")
        self.new_rows.append(monitor.history_row(drift_s, perf_s))
        self.recovered.append(Recovered(dt.isoformat(), version, kind))

    def drift_day(self, dt: date) -> tuple[Any, str]:
        """The day's drift report against its version's reference, unless it exists (then its
        history row is recovered if missing). Returns the scored table if it was read, and the
        version that scored the day."""
        from nightshift import monitor

        store, spec = self.store, self.spec
        version = _predictions_version(store, spec, dt)
        drift_dir = store.reports_dir(spec.name, "drift", dt)
        drift_summary = f"{drift_dir}/v{version}-summary.json"
        if store.exists(drift_summary):
            self.recover("drift", drift_summary, dt, version)
            return None, version
        table, version = _scored(store, spec, dt)
        ref = self.ref_for(version)
        result, snapshot = monitor.drift(ref.table, table, spec, ref.weights, dt, version)
        last = f"v{version}-summary.json"
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            snapshot.save_html(str(tmp / f"v{version}-drift.html"))
            (tmp / f"v{version}-drift.json").write_text(snapshot.json())
            summary = {**result.to_dict(), "report": store.uri(f"{drift_dir}/v{version}-drift.html")}
            (tmp / last).write_text(json.dumps(summary, indent=2))
            _publish(store, self.client, ref.run_id, tmp, drift_dir, f"monitoring/dt={dt}", last)
            _log_live(self.client, ref.run_id, _live_metrics(summary, None, dt, self.tz), f"drift of {dt}")
            _publish_last(store, tmp, drift_dir, last)
        self.new_rows.append(monitor.history_row(summary, None))
        self.drifted.append(
            DriftDay(
                dt.isoformat(),
                version,
                _finite(result.drift_share),
                result.drifting,
                tuple(result.top()),
                summary["report"],
            )
        )
        return table, version

    def performance_day(self, dt: date, table: Any, version: str, latest_arrival: date) -> None:
        """The day's performance report once its labels have landed, unless it exists (then its
        history row is recovered if missing)."""
        from nightshift import evaluate as ev
        from nightshift import monitor
        from nightshift.features import labels as label_array
        from nightshift.score import SCORE

        store, spec = self.store, self.spec
        perf_dir = store.reports_dir(spec.name, "performance", dt)
        perf_summary = f"{perf_dir}/v{version}-summary.json"
        if store.exists(perf_summary):
            self.recover("performance", perf_summary, dt, version)
            return
        day_labels = _day_labels(store, spec, dt, latest_arrival)
        if day_labels is None:
            return
        if table is None:
            table, version = _scored(store, spec, dt)
        joined = table.join(day_labels, keys=spec.id_column, join_type="inner")
        if joined.num_rows == 0:
            return
        y = label_array(joined, spec)
        p = np.asarray(joined.column(SCORE).to_numpy(), dtype=np.float64)
        evaluation = ev.evaluate(f"v{version} on {dt}", joined, y, p, spec, version=version)
        ref = self.ref_for(version)
        summary = {
            "dt": dt.isoformat(),
            "version": version,
            "metrics": evaluation.metrics,
            "ece": monitor.expected_calibration_error(y, p),
            "holdout_roc_auc": ref.holdout_auc,
            "evaluation": evaluation.to_dict(),
            "report": store.uri(f"{perf_dir}/v{version}-performance.html"),
        }
        last = f"v{version}-summary.json"
        with tempfile.TemporaryDirectory() as tmp_s:
            tmp = Path(tmp_s)
            ev.calibration_plot([evaluation], tmp / f"v{version}-calibration.png")
            (tmp / f"v{version}-performance.html").write_text(ev.report_html(spec, [evaluation], None))
            (tmp / last).write_text(json.dumps(summary, indent=2))
            _publish(store, self.client, ref.run_id, tmp, perf_dir, f"monitoring/dt={dt}", last)
            _log_live(
                self.client, ref.run_id, _live_metrics(None, summary, dt, self.tz), f"performance of {dt}"
            )
            _publish_last(store, tmp, perf_dir, last)
        self.new_rows.append(monitor.history_row(None, summary))
        m = evaluation.metrics
        self.perfs.append(
            PerformanceDay(dt.isoformat(), version, _finite(m["roc_auc"]), str(summary["report"]))
        )


def _predictions_version(store: Store, spec: DatasetSpec, dt: date) -> str:
    import pyarrow.parquet as pq

    from nightshift.score import MODEL_VERSION

    col = pq.read_table(store.open_input(store.predictions_file(spec.name, dt)), columns=[MODEL_VERSION])
    return str(col.column(0)[0].as_py()) if col.num_rows else "unknown"


SERVING_DRIFT = "serving-drift"  # the report topic of served inputs

SERVED_DAY = "day.json"  # written last in a served day's report folder: the parts it covered


# long: per day of served rows: sample, drift against the champion's reference, publish, in order
def monitor_served(store: Store, spec: DatasetSpec, client: Any) -> list[ServedDrift]:
    """Drift of the rows served online (``serving/<dataset>/dt=…/``, the request log of
    ``nightshift serve``) against the reference of each version that answered them, reported
    like a batch day's drift under ``reports/<dataset>/serving-drift/dt=…/`` (and on the
    version's run, ``serving/dt=…``). A day is reported again once parts were added to it
    (``day.json``, written last, names the parts covered). Served days stay out of the history
    table and the alert policy, which follow the batch days. A version without a monitoring
    reference is reported as an error of that day; a store or registry outage raises."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from nightshift import monitor
    from nightshift.score import SCORE
    from nightshift.serve import MODEL_VERSION, serving_dir
    from nightshift.storage import finite

    days = store.list_partitions(store.path("serving", spec.name))
    if not days:
        return []
    first = days[-1] - timedelta(days=spec.monitoring.lookback_days - 1)
    refs: dict[str, _Reference] = {}
    out: list[ServedDrift] = []
    for dt in (d for d in days if d >= first):
        parts = store.list_files(serving_dir(store, spec.name, dt), "*.parquet")
        names = [p.rsplit("/", 1)[-1] for p in parts]
        report_dir = store.reports_dir(spec.name, SERVING_DRIFT, dt)
        done = f"{report_dir}/{SERVED_DAY}"
        if not parts or (store.exists(done) and store.read_json(done).get("parts") == names):
            continue
        columns = [*spec.feature_names, SCORE, MODEL_VERSION]
        table = pa.concat_tables(pq.read_table(store.open_input(p), columns=columns) for p in parts)
        versions = sorted({str(v) for v in table.column(MODEL_VERSION).unique().to_pylist()})
        for version in versions:
            rows = table.filter(pc.equal(table.column(MODEL_VERSION), version)).drop_columns([MODEL_VERSION])
            try:
                if version not in refs:
                    refs[version] = _reference(client, spec, version)
            except monitor.MonitoringError as exc:
                out.append(ServedDrift(dt.isoformat(), version, rows.num_rows, error=str(exc)))
                continue
            ref = refs[version]
            result, snapshot = monitor.drift(ref.table, rows, spec, ref.weights, dt, version)
            last = f"v{version}-summary.json"
            with tempfile.TemporaryDirectory() as tmp_s:
                tmp = Path(tmp_s)
                snapshot.save_html(str(tmp / f"v{version}-drift.html"))
                (tmp / f"v{version}-drift.json").write_text(snapshot.json())
                summary = {
                    **result.to_dict(),
                    "source": "serving",
                    "parts": len(parts),
                    "report": store.uri(f"{report_dir}/v{version}-drift.html"),
                }
                (tmp / last).write_text(json.dumps(finite(summary), indent=2))
                _publish(store, client, ref.run_id, tmp, report_dir, f"serving/dt={dt}", last)
                _publish_last(store, tmp, report_dir, last)
            out.append(
                ServedDrift(
                    dt.isoformat(),
                    version,
                    result.rows,
                    _finite(result.drift_share),
                    result.drifting,
                    tuple(result.top()),
                    summary["report"],
                )
            )
        store.write_json_atomic(done, {"parts": names, "versions": versions})
    return out


def alert_step(backends: Backends | Store, spec: DatasetSpec) -> Alert | None:
    """The alert policy on the champion's history: an alert or ``None``."""
    from nightshift import monitor, registry

    b = as_backends(backends)
    store, client = b.store, b.client
    version = registry.alias_version(client, spec.name, registry.CHAMPION)
    if version is None:
        return None
    with registry.speaking_errors(f"reading the holdout AUC of v{version}"):
        run_id = client.get_model_version(registry.model_name(spec.name), version).run_id
        run = client.get_run(run_id)
    holdout, trained = run.data.metrics.get("holdout_roc_auc"), monitor.trained_through(run.data.tags)
    alert = monitor.decide_alert(read_history(store, spec.name), spec, version, holdout, trained)
    return alert
