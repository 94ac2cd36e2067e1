"""The day-by-day story of a dataset, from the store alone: what landed and was validated,
which model version scored each day, its drift and (once labels land) its AUC, and what the
retraining loop decided. Printed by ``nightshift summary``; plotted by ``--plot``."""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from nightshift.spec import BATCH_KINDS
from nightshift.storage import Store


def _scored_by(store: Store, dataset: str, dt: date) -> str | None:
    """The model version in a day's predictions, if it was scored."""
    path = store.predictions_file(dataset, dt)
    if not store.exists(path):
        return None
    import pyarrow.parquet as pq

    col = pq.read_table(store.open_input(path), columns=["model_version"]).column(0)
    versions = sorted({str(v) for v in col.unique().to_pylist()})
    return ",".join(versions) or None


def _finite(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def day_rows(store: Store, dataset: str, start: date, days: int) -> list[dict[str, Any]]:
    """One row per day: batches and their validation, the scoring version, its drift and AUC
    from the monitoring history, and the retrain decisions made on that day's data."""
    from nightshift.monitor import read_history
    from nightshift.retrain import read_records
    from nightshift.validate import ValidationOutcome

    history = {(r["dt"], r["version"]): r for r in read_history(store, dataset)}
    decisions: dict[str, list[Any]] = {}
    for d in read_records(store, dataset):
        decisions.setdefault(d.day or "", []).append(d)
    rows = []
    for i in range(days):
        dt = start + timedelta(days=i)
        row: dict[str, Any] = {"dt": dt.isoformat()}
        for kind in BATCH_KINDS:
            path = store.reports_dir(dataset, "validation", dt) + f"/{kind}.json"
            if not store.exists(path):
                row[kind] = None
                continue
            report = store.read_json(path)
            o = ValidationOutcome.from_dict(report["outcome"])
            row[kind] = {
                "rows": o.rows,
                "valid": o.success,
                "reason": o.reason(limit=2),
                "warnings": [c.label for c in o.warnings],  # failed checks that do not quarantine
                "report": o.report_uri,
                "data_docs": o.data_docs_uri,
                "validated_at": report.get("validated_at"),
            }
        version = _scored_by(store, dataset, dt)
        row["scored_by"] = version
        h = history.get((dt.isoformat(), version or ""), {})
        row["drift_share"] = h.get("drift_share") if _finite(h.get("drift_share")) else None
        row["drifting"] = bool(h.get("drifting"))
        row["roc_auc"] = h.get("roc_auc") if _finite(h.get("roc_auc")) else None
        row["drift_report"] = h.get("drift_report")
        row["performance_report"] = h.get("performance_report")
        row["retrain"] = [
            {
                "action": d.action,
                "reason": d.reason,
                "outcome": d.outcome,
                "alerts": [(a["kind"], a["onset"]) for a in d.alerts],
            }
            for d in decisions.get(dt.isoformat(), [])
        ]
        rows.append(row)
    return rows


def _warned(warnings: list[str]) -> str:
    n = len(warnings)
    return f"{n} warning{'s' if n != 1 else ''}"


def _retrain_note(decisions: list[dict[str, Any]]) -> str:
    notes = []
    for d in decisions:
        if d["action"] == "retrain":
            o = d["outcome"] or {}
            version = f" v{o['version']}" if o.get("version") else ""
            notes.append(f"RETRAIN -> {o.get('status', 'running')}{version} ({d['reason']})")
        else:
            notes.append(f"alert, no retrain: {d['reason']}")
    return "; ".join(notes)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text per-day table for terminals."""
    head = f"{'day':<12}{'events':>7}  {'status':<12}{'labels':>7}  {'status':<12}"
    head += f"{'model':<7}{'drift':>7}{'AUC':>7}  notes"
    lines = [head]
    for r in rows:
        cells = [f"{r['dt']:<12}"]
        notes = []
        for kind in BATCH_KINDS:
            o = r[kind]
            if o is None:
                cells.append(f"{'-':>7}  {'-':<12}")
                continue
            cells.append(f"{o['rows']:>7,}  {'valid' if o['valid'] else 'QUARANTINED':<12}")
            if not o["valid"]:
                notes.append(f"{kind}: {o['reason']}")
            elif o.get("warnings"):
                notes.append(f"{kind}: {_warned(o['warnings'])}: {', '.join(o['warnings'])}")
        cells.append(f"{'v' + r['scored_by'] if r.get('scored_by') else '-':<7}")
        share = r.get("drift_share")
        cells.append(f"{'-' if share is None else f'{share:.2f}' + ('*' if r.get('drifting') else ' '):>7}")
        auc = r.get("roc_auc")
        cells.append(f"{'-' if auc is None else f'{auc:.3f}':>7}")
        if r.get("retrain"):
            notes.append(_retrain_note(r["retrain"]))
        lines.append(("".join(cells) + "  " + "; ".join(notes)).rstrip())
    counts = {"valid": 0, "quarantined": 0, "missing": 0}
    for r in rows:
        o = r["events"]
        counts["missing" if o is None else "valid" if o["valid"] else "quarantined"] += 1
    lines.append(
        f"{len(rows)} day(s): {counts['valid']} valid, {counts['quarantined']} quarantined, "
        f"{counts['missing']} not ingested.  drift = importance-weighted share of drifted features "
        f"(* = a drifting day); AUC = the scoring version's, once the day's labels landed"
    )
    return "\n".join(lines)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def loop_story(rows: list[dict[str, Any]], drift_from: date | None = None) -> list[str]:
    """What the loop did, in a few sentences: detection, retrains, AUC before and after."""
    out = []
    drifting = [r["dt"] for r in rows if r.get("drifting")]
    ran = [(r["dt"], d) for r in rows for d in r.get("retrain", []) if d["action"] == "retrain"]
    skipped = [d for r in rows for d in r.get("retrain", []) if d["action"] != "retrain"]
    first_alert = next((r["dt"] for r in rows if r.get("retrain")), None)
    if drifting:
        line = f"drift: first drifting day {drifting[0]}"
        if first_alert:
            line += f", first alert on the data of {first_alert}"
        if drift_from is not None and first_alert:
            lag = (date.fromisoformat(first_alert) - drift_from).days
            line += f" - {lag} day(s) after the drift began ({drift_from})"
        out.append(line)
    else:
        out.append("drift: no drifting day")
    if ran:
        for dt, d in ran:
            o = d["outcome"] or {}
            out.append(
                f"retrain: on the data of {dt} -> {o.get('status', 'running')} v{o.get('version', '?')}"
            )
    out.append(f"alerts without a retrain: {len(skipped)} (guard rails; reasons in the table)")
    by_version: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        if r.get("roc_auc") is not None and r.get("scored_by"):
            by_version.setdefault(r["scored_by"], []).append((r["dt"], r["roc_auc"]))
    for version, points in sorted(by_version.items(), key=lambda kv: kv[1][0][0]):
        if drift_from is not None:
            before = _mean([a for d, a in points if date.fromisoformat(d) < drift_from])
            after = _mean([a for d, a in points if date.fromisoformat(d) >= drift_from])
            parts = [f"before the drift {before:.3f}" if before is not None else "",
                     f"after the drift {after:.3f}" if after is not None else ""]  # fmt: skip
            text = ", ".join(p for p in parts if p)
        else:
            text = f"mean {_mean([a for _, a in points]):.3f}"
        out.append(
            f"AUC of v{version} ({len(points)} labelled day(s) {points[0][0]}..{points[-1][0]}): {text}"
        )
    return out


def figure(rows: list[dict[str, Any]], threshold: float, drift_from: date | None = None) -> Any:
    """AUC (by scoring version) and drift share over time, retrains marked (a matplotlib figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [date.fromisoformat(r["dt"]) for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), dpi=100, sharex=True)
    versions = sorted(
        {r["scored_by"] for r in rows if r.get("scored_by")}, key=lambda v: int(v) if v.isdigit() else 0
    )
    for v in versions:
        pts = [
            (d, r["roc_auc"])
            for d, r in zip(days, rows, strict=True)
            if r.get("scored_by") == v and r.get("roc_auc") is not None
        ]
        if pts:
            ax1.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"served by v{v}")
    ax1.set_ylabel("AUC (labels landed)")
    ax1.set_title("nightshift: live AUC and drift, day by day")
    shares = [r["drift_share"] if r.get("drift_share") is not None else 0.0 for r in rows]
    colors = ["tab:red" if r.get("drifting") else "tab:blue" for r in rows]
    ax2.bar(days, shares, color=colors, width=0.8)
    ax2.axhline(threshold, color="gray", linestyle="--", linewidth=1, label=f"alert threshold {threshold}")
    ax2.set_ylabel("drift share (weighted)")
    ax2.set_ylim(0, 1)
    for d, r in zip(days, rows, strict=True):
        for dec in r.get("retrain", []):
            if dec["action"] == "retrain":
                for ax in (ax1, ax2):
                    ax.axvline(d, color="tab:green", linewidth=2, alpha=0.6)
                ax1.annotate("retrain", (d, ax1.get_ylim()[0]), color="tab:green", rotation=90, va="bottom")
    if drift_from is not None:
        for ax in (ax1, ax2):
            ax.axvline(drift_from, color="tab:orange", linestyle=":", linewidth=1.5)
        ax2.annotate("drift begins", (drift_from, 0.9), color="tab:orange")
    if versions:
        ax1.legend(loc="lower left")
    ax2.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot(
    rows: list[dict[str, Any]], path: str | Path, threshold: float, drift_from: date | None = None
) -> Path:
    """:func:`figure` saved as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = figure(rows, threshold, drift_from)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
