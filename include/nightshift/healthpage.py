"""The Model health page as one self-contained HTML document (plots inlined as PNG), from a
:class:`nightshift.health.Health`, and the plugin's other small pages. Addresses are the
caller's: ``link`` turns a store URI into something a browser can open, ``actions`` names the
operator actions (URL per label).

Every page is rendered by Jinja2 templates (``nightshift/templates/``) with autoescaping on
everything: no value reaches the HTML unescaped, and an address is made a link only when it
is http(s) or relative (:func:`safe_href`); anything else (``javascript:``, ``data:``) is
shown as plain text.
"""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nightshift.health import Health
from nightshift.spec import DatasetSpec

if TYPE_CHECKING:
    from jinja2 import Environment

# C0 controls, space and DEL: browsers drop some of them inside a scheme ("java\tscript:")
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def safe_href(url: str | None) -> str | None:
    """``url`` if a browser may follow it from the page: absolute http(s) with a host, or a
    relative address with no scheme; ``None`` for anything else (shown as text)."""
    if not url or _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme:
        return url if parts.scheme.lower() in ("http", "https") and parts.netloc else None
    # no scheme: relative, but "//host" is another site without a scheme: allow only paths
    return None if url.startswith("//") else url


@dataclass(frozen=True)
class Piece:
    """One part of a table cell: text, a link (``href``), a styled span (``cls``), or a note
    on its own line (``note``). The template escapes ``text`` and ``href``."""

    text: str
    href: str | None = None
    cls: str | None = None
    target: str | None = "_blank"
    note: bool = False


def text(v: Any) -> Piece:
    return Piece("" if v is None else str(v))


def anchor(url: str | None, label: Any, target: str | None = "_blank") -> Piece:
    """A link to ``url`` (opened in ``target``) if it is safe to follow, else the label as text."""
    return Piece(str(label), href=safe_href(url), target=target)


def _num(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


@functools.cache
def environment() -> Environment:
    """The templates, autoescaped whatever their names, undefined names an error."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("nightshift", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


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


def _tiles(health: Health) -> list[tuple[str, str, str]]:
    d, c = health.delivery, health.champion or {}
    lead = d["lead_time_hours"]
    return [
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


Cell = list[Piece]


def _table(table_id: str, head: list[str], rows: list[list[Cell]]) -> dict[str, Any]:
    return {"id": table_id, "head": head, "rows": rows}


def _versions(health: Health, mlflow: Callable[[str | None, str | None], dict[str, str]]) -> list[list[Cell]]:
    rows = []
    for v in sorted(health.versions.values(), key=lambda v: -int(v["version"])):
        links = mlflow(v["run_id"], v["version"])
        h = v["holdout"]
        rows.append(
            [
                [anchor(links.get("Model version"), f"v{v['version']}")],
                [text(v["created"][:19])],
                [text(v.get("status") or "-")],
                [text(v.get("window") or "-")],
                [text(v.get("device") or "-")],
                [text(_num(h.get("roc_auc"), 4))],
                [text(_num(h.get("average_precision"), 4))],
                [anchor(links.get("MLflow run"), str(v["run_id"])[:8])],
            ]
        )
    return rows


def _timeline(health: Health) -> list[list[Cell]]:
    rows = []
    for e in health.timeline:
        review = e.get("review") or {}
        rv = (
            f"{review.get('decision')} by {review.get('by')}"
            + (f": {review['comment']}" if review.get("comment") else "")
            if review
            else ""
        )
        rows.append(
            [
                [text(e["time"][:19])],
                [Piece(str(e["action"]), cls="ok" if e["action"] == "promote" else "bad")],
                [text(f"v{e['version']}")],
                [text(f"v{e['previous_version']}" if e.get("previous_version") else "-")],
                [text(e.get("who") or e["actor"])],
                [text(e["trigger"])],
                [text(e["reason"])],
                [text(rv)],
            ]
        )
    return rows


def _days(health: Health, store_link: Callable[[str | None], str | None]) -> list[list[Cell]]:
    rows = []
    for r in reversed(health.days):
        cells: list[Cell] = [[text(r["dt"])]]
        for kind in ("events", "labels"):
            b = r.get(kind)
            if not b:
                cells.append([Piece("-", cls="muted")])
                continue
            warnings = [str(w) for w in b.get("warnings") or []] if b["valid"] else []
            if warnings:
                n = len(warnings)
                verdict = Piece(f"valid, {n} warning{'s' if n != 1 else ''}", cls="warn")
            else:
                verdict = Piece("valid", cls="ok") if b["valid"] else Piece("QUARANTINED", cls="bad")
            cell = [verdict, text(f"{b['rows']:,} rows"), anchor(store_link(b.get("report")), "report")]
            if b.get("data_docs"):
                cell.append(anchor(store_link(b.get("data_docs")), "Data Docs"))
            if not b["valid"]:
                cell.append(Piece(str(b["reason"]), note=True))
            elif warnings:
                cell.append(Piece(", ".join(warnings), note=True))
            cells.append(cell)
        cells.append([text(f"v{r['scored_by']}" if r.get("scored_by") else "-")])
        share = _num(r.get("drift_share"), 2) + ("*" if r.get("drifting") else "")
        cells.append([anchor(store_link(r.get("drift_report")) if r.get("drift_report") else None, share)])
        auc = _num(r.get("roc_auc"))
        perf = r.get("performance_report")
        cells.append([anchor(store_link(perf) if perf else None, auc)])
        cells.append([text("; ".join(f"{d['action']}: {d['reason']}" for d in r.get("retrain", [])))])
        rows.append(cells)
    return rows


def _retrains(health: Health) -> list[list[Cell]]:
    return [
        [
            [text(d["decided_at"][:19])],
            [text(d["day"])],
            [text(d["action"] + (" (forced)" if d["forced"] else ""))],
            [text(d.get("status") or "-")],
            [text(f"v{d['version']}" if d.get("version") else "-")],
            [text(d.get("who") or d["actor"])],
            [text(", ".join(d["alerts"]) or "-")],
            [text(d["reason"])],
        ]
        for d in health.retrains
    ]


def render(
    health: Health,
    spec: DatasetSpec,
    *,
    link: Callable[[str | None], str | None] = lambda uri: None,
    mlflow: Callable[[str | None, str | None], dict[str, str]] = lambda run_id, version: {},
    actions: Mapping[str, str] | None = None,
    datasets: Mapping[str, str] | None = None,
) -> str:
    """The page. ``link(store_uri)`` → a browser address; ``mlflow(run_id, version)`` → MLflow
    UI links; ``actions`` and ``datasets`` → navigation (label → address)."""
    d = health.delivery
    recoveries = [
        [[text(r["since"][:19])], [text(r["incident"])], [text(r["recovered"][:19])], [text(r["by"])],
         [text(_num(r["hours"], 2))]]
        for r in d["recoveries"]
    ]  # fmt: skip
    incidents = [
        [[text(i["time"][:19])], [text(i["kind"])], [text(i["what"])]] for i in health.incidents[:20]
    ]
    leads = [
        [[text(f"v{x['version']}")], [text(x["landed"][:19])], [text(_num(x["hours"], 2))]]
        for x in d["lead_time_hours"]["each"]
    ]
    return render_template(
        "health.html",
        health=health,
        description=spec.description,
        datasets=[anchor(u, n) for n, u in (datasets or {}).items()] if len(datasets or {}) > 1 else [],
        actions=[anchor(u, n, target="_top") for n, u in (actions or {}).items()],
        tiles=_tiles(health),
        open_incident=d.get("open_incident"),
        plots=plots(health, spec),
        versions=_table(
            "versions",
            ["version", "trained", "status", "window", "device", "AUC", "AP", "run"],
            _versions(health, mlflow),
        ),
        timeline=_table(
            "timeline",
            ["when", "what", "version", "previous", "who", "trigger", "why", "review"],
            _timeline(health),
        ),
        days=_table(
            "days",
            ["day", "events", "labels", "scored by", "drift share", "live AUC", "retrain"],
            _days(health, link),
        ),
        retrains=_table(
            "retrains",
            ["decided", "data day", "action", "outcome", "version", "who", "alerts", "why"],
            _retrains(health),
        ),
        recoveries=_table("recoveries", ["since", "incident", "recovered", "by", "hours"], recoveries),
        incidents=_table("incidents", ["when", "kind", "what"], incidents),
        leadtimes=_table("leadtimes", ["version", "newest data landed", "hours to champion"], leads),
    )


def render_index(datasets: Mapping[str, str], message: str | None = None) -> str:
    """The list of datasets (name → address) the user may read, or a message."""
    return render_template(
        "index.html", datasets=[anchor(u, n, target=None) for n, u in datasets.items()], message=message
    )
