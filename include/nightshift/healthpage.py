"""The Model health page as one self-contained HTML document (plots inlined as PNG), from a
:class:`nightshift.health.Health`. Addresses are the caller's: ``link`` turns a store URI
into something a browser can open, ``actions`` names the operator actions (URL per label)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any

from nightshift.health import Health
from nightshift.spec import DatasetSpec

STYLE = """
body{font:14px system-ui,sans-serif;margin:16px;color:#1a202c}
h1{font-size:22px;margin:0 0 4px}h3{font-size:14px;margin:10px 0 4px}
h2{font-size:17px;margin:22px 0 6px;border-bottom:1px solid #e2e8f0}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #e2e8f0;padding:3px 7px;text-align:left;
vertical-align:top;font-size:13px}th{background:#f7fafc}.bad{color:#c53030;font-weight:600}.ok{color:#2f855a}
.tiles{display:flex;flex-wrap:wrap;gap:10px}.tile{border:1px solid #e2e8f0;border-radius:6px;padding:8px 12px;
min-width:150px}.tile b{display:block;font-size:20px}.muted{color:#718096}img{max-width:100%}
nav a{margin-right:10px}.err{background:#fff5f5;border:1px solid #feb2b2;padding:6px}
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def _num(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _a(url: str | None, text: str, top: bool = False) -> str:
    if not url:
        return _e(text)
    target = "_top" if top else "_blank"
    return f'<a href="{_e(url)}" target="{target}" rel="noopener">{_e(text)}</a>'


def _table(head: list[str], rows: list[list[str]], table_id: str) -> str:
    if not rows:
        return f'<p class="muted" id="{table_id}">none yet</p>'
    h = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table id="{table_id}"><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>'


def _img(img_id: str, alt: str, png: str) -> str:
    return f'<img id="{img_id}" alt="{_e(alt)}" src="data:image/png;base64,{png}">'


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plots(health: Health, spec: DatasetSpec) -> dict[str, str]:
    """Base64 PNGs: live AUC and drift by day; holdout metrics by version."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nightshift.report import figure

    out: dict[str, str] = {}
    if health.days:
        out["live"] = _png(figure(health.days, spec.alerts.drift_share))
    versions = sorted(health.versions.values(), key=lambda v: int(v["version"]))
    if versions:
        fig, ax = plt.subplots(figsize=(11, 3.2), dpi=100)
        when: list[Any] = [datetime.fromisoformat(v["created"]) for v in versions]
        for metric in ("roc_auc", "average_precision"):
            ys = [v["holdout"].get(metric) for v in versions]
            ax.plot(when, ys, marker="o", label=f"holdout {metric}")
        for t, v in zip(when, versions, strict=True):
            ax.annotate(f"v{v['version']}", (t, v["holdout"].get("roc_auc") or 0), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)  # fmt: skip
        champ = health.champion["version"] if health.champion else None
        for t, v in zip(when, versions, strict=True):
            if v["version"] == champ:
                ax.axvline(t, color="tab:green", alpha=0.4, linewidth=6, label="champion")
        ax.set_ylim(0, 1)
        ax.set_title("Holdout metrics of each model version (at training time)")
        ax.legend(loc="lower left", fontsize=8)
        fig.autofmt_xdate()
        fig.tight_layout()
        out["holdout"] = _png(fig)
    return out


def _tiles(health: Health) -> str:
    d, c = health.delivery, health.champion or {}
    lead = d["lead_time_hours"]
    tiles = [
        ("champion", f"v{c['version']}" if c else "none", f"since {c.get('since') or '-'}" if c else ""),
        ("holdout AUC", _num((c.get("holdout") or {}).get("roc_auc")), c.get("window") or ""),
        (
            "deployment frequency",
            f"{_num(d['deployment_frequency_per_week'], 2)}/week",
            f"{d['deployments']} champion change(s) in {_num(d['span_days'], 1)} day(s)",
        ),
        ("lead time", f"{_num(lead['median'], 2)} h", "median, newest data landed → champion"),
        ("time to recover", f"{_num(d['mttr_hours'], 2)} h", f"mean of {len(d['recoveries'])} recovery(ies)"),
        (
            "change-failure rate",
            "-" if d["change_failure_rate"] is None else f"{100 * d['change_failure_rate']:.0f}%",
            f"{d['change_failures']} of {d['attempts']} attempt(s) rejected or rolled back",
        ),
    ]
    return (
        '<div class="tiles" id="tiles">'
        + "".join(
            f'<div class="tile" data-tile="{_e(k)}"><span class="muted">{_e(k)}</span><b>{_e(v)}</b>'
            f'<span class="muted">{_e(sub)}</span></div>'
            for k, v, sub in tiles
        )
        + "</div>"
    )


def render(
    health: Health,
    spec: DatasetSpec,
    *,
    link: Callable[[str | None], str | None] = lambda uri: None,
    mlflow: Callable[[str | None, str | None], dict[str, str]] = lambda run_id, version: {},
    actions: dict[str, str] | None = None,
    datasets: dict[str, str] | None = None,
) -> str:
    """The page. ``link(store_uri)`` → a browser address; ``mlflow(run_id, version)`` → MLflow
    UI links; ``actions`` and ``datasets`` → navigation (label → address)."""
    pics = plots(health, spec)
    parts = [f"<h1>Model health: {_e(health.dataset)}</h1>"]
    parts.append(f'<p class="muted">{_e(spec.description)} — generated {_e(health.generated_at)}</p>')
    if datasets and len(datasets) > 1:
        parts.append("<nav>" + "".join(_a(u, n, top=False) for n, u in datasets.items()) + "</nav>")
    if actions:
        parts.append(
            '<nav id="actions">' + "".join(_a(u, n, top=True) for n, u in actions.items()) + "</nav>"
        )
    for err in health.errors:
        parts.append(f'<p class="err">{_e(err)}</p>')
    parts.append(_tiles(health))
    if d := health.delivery.get("open_incident"):
        parts.append(f'<p class="bad">open since {_e(d["since"])}: {_e(d["what"])}</p>')

    parts.append("<h2>Live metrics and drift</h2>")
    if "live" in pics:
        parts.append(_img("plot-live", "live AUC and drift share by day", pics["live"]))
    parts.append("<h2>Holdout metrics by version</h2>")
    if "holdout" in pics:
        parts.append(_img("plot-holdout", "holdout metrics by version", pics["holdout"]))
    rows = []
    for v in sorted(health.versions.values(), key=lambda v: -int(v["version"])):
        links = mlflow(v["run_id"], v["version"])
        h = v["holdout"]
        rows.append(
            [
                _a(links.get("Model version"), f"v{v['version']}"),
                _e(v["created"][:19]),
                _e(v.get("status") or "-"),
                _e(v.get("window") or "-"),
                _e(v.get("device") or "-"),
                _num(h.get("roc_auc"), 4),
                _num(h.get("average_precision"), 4),
                _a(links.get("MLflow run"), v["run_id"][:8]),
            ]
        )
    parts.append(
        _table(["version", "trained", "status", "window", "device", "AUC", "AP", "run"], rows, "versions")
    )

    parts.append("<h2>Champion timeline</h2>")
    rows = []
    for e in health.timeline:
        review = e.get("review") or {}
        rv = (
            f"{review.get('decision')} by {review.get('by')}"
            + (f": {review['comment']}" if review.get("comment") else "")
            if review
            else ""
        )
        cls = "ok" if e["action"] == "promote" else "bad"
        rows.append(
            [
                _e(e["time"][:19]),
                f'<span class="{cls}">{_e(e["action"])}</span>',
                _e(f"v{e['version']}"),
                _e(f"v{e['previous_version']}" if e.get("previous_version") else "-"),
                _e(e["actor"]),
                _e(e["trigger"]),
                _e(e["reason"]),
                _e(rv),
            ]
        )
    parts.append(
        _table(["when", "what", "version", "previous", "who", "trigger", "why", "review"], rows, "timeline")
    )

    parts.append("<h2>Days</h2>")
    rows = []
    for r in reversed(health.days):
        cells = [_e(r["dt"])]
        for kind in ("events", "labels"):
            b = r.get(kind)
            if not b:
                cells.append('<span class="muted">-</span>')
                continue
            status = "valid" if b["valid"] else "QUARANTINED"
            cls = "ok" if b["valid"] else "bad"
            docs = _a(link(b.get("data_docs")), "Data Docs") if b.get("data_docs") else ""
            report = _a(link(b.get("report")), "report")
            detail = "" if b["valid"] else f"<br><small>{_e(b['reason'])}</small>"
            cells.append(f'<span class="{cls}">{status}</span> {b["rows"]:,} rows {report} {docs}{detail}')
        cells.append(_e(f"v{r['scored_by']}" if r.get("scored_by") else "-"))
        share = _num(r.get("drift_share"), 2) + ("*" if r.get("drifting") else "")
        cells.append(_a(link(r.get("drift_report")), share) if r.get("drift_report") else _e(share))
        auc = _num(r.get("roc_auc"))
        cells.append(_a(link(r.get("performance_report")), auc) if r.get("performance_report") else _e(auc))
        notes = [f"{d['action']}: {d['reason']}" for d in r.get("retrain", [])]
        cells.append(_e("; ".join(notes)))
        rows.append(cells)
    parts.append(
        _table(["day", "events", "labels", "scored by", "drift share", "live AUC", "retrain"], rows, "days")
    )

    parts.append("<h2>Recent retrains</h2>")
    rows = [
        [
            _e(d["decided_at"][:19]),
            _e(d["day"]),
            _e(d["action"] + (" (forced)" if d["forced"] else "")),
            _e(d.get("status") or "-"),
            _e(f"v{d['version']}" if d.get("version") else "-"),
            _e(d["actor"]),
            _e(", ".join(d["alerts"]) or "-"),
            _e(d["reason"]),
        ]
        for d in health.retrains
    ]
    parts.append(
        _table(
            ["decided", "data day", "action", "outcome", "version", "who", "alerts", "why"], rows, "retrains"
        )
    )

    parts.append("<h2>Incidents and recoveries</h2>")
    rec = health.delivery["recoveries"]
    rows = [
        [_e(r["since"][:19]), _e(r["incident"]), _e(r["recovered"][:19]), _e(r["by"]), _num(r["hours"], 2)]
        for r in rec
    ]
    parts.append(
        "<h3>Recoveries</h3>" + _table(["since", "incident", "recovered", "by", "hours"], rows, "recoveries")
    )
    rows = [[_e(i["time"][:19]), _e(i["kind"]), _e(i["what"])] for i in health.incidents[:20]]
    parts.append("<h3>Incidents (latest 20)</h3>" + _table(["when", "kind", "what"], rows, "incidents"))
    leads = health.delivery["lead_time_hours"]["each"]
    parts.append("<h2>Lead times</h2>")
    rows = [[_e(f"v{x['version']}"), _e(x["landed"][:19]), _num(x["hours"], 2)] for x in leads]
    parts.append(_table(["version", "newest data landed", "hours to champion"], rows, "leadtimes"))

    head = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Model health: {_e(health.dataset)}</title>"
    )
    return f"{head}<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
