"""Model health of one dataset, from the store and the registry: the champion and its
timeline (the audit trail: who, what, when, why), holdout and live metrics over time, drift,
the last validation verdict of each day, recent retrains and their reasons, and the delivery
metrics of the pipeline itself. The UI plugin renders it; no Airflow here.

Delivery metrics (DORA, applied to models):

* **deployment frequency**: champion changes (promotions and rollbacks) per week, over the
  span from the first recorded decision to now;
* **lead time**: from the landing (validation) of the newest batch a promoted model was
  trained on — its last day's events, or the labels of its window, whichever landed later — to
  its promotion;
* **mean time to recover**: from a failed training run or a rejected / rolled-back promotion
  (the first of a streak) to the next promotion;
* **change-failure rate**: (rejected + rolled-back promotions) / (promotion attempts).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from nightshift.spec import DatasetSpec, parse_dt
from nightshift.storage import Store, finite

MAX_DAYS = 120  # the page shows at most this many recent days


@dataclass
class Incident:
    """Something that needed recovering from: a failed run, a rejection, a rollback."""

    time: str
    kind: str  # failed | rejected | rolled_back
    what: str


@dataclass
class Health:
    dataset: str
    generated_at: str
    champion: dict[str, Any] | None
    timeline: list[dict[str, Any]]
    versions: dict[str, dict[str, Any]]
    days: list[dict[str, Any]]
    retrains: list[dict[str, Any]]
    delivery: dict[str, Any]
    incidents: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(finite(asdict(self)))


def _ts(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _window(tag: str | None) -> tuple[date, date] | None:
    """``2026-01-01..2026-01-10 (10 days)`` → the first and last day."""
    if not tag or ".." not in tag:
        return None
    first, _, rest = tag.partition("..")
    try:
        return parse_dt(first.strip()), parse_dt(rest.split()[0])
    except (ValueError, IndexError):
        return None


def version_info(client: Any, dataset: str, versions: list[str]) -> dict[str, dict[str, Any]]:
    """Holdout metrics, window, device and run of each model version (from MLflow)."""
    from nightshift import registry

    out: dict[str, dict[str, Any]] = {}
    name = registry.model_name(dataset)
    with registry.speaking_errors(f"reading the versions of {name}"):
        for v in versions:
            mv = client.get_model_version(name, v)
            run = client.get_run(mv.run_id)
            m, t = run.data.metrics, run.data.tags
            out[v] = {
                "version": v,
                "run_id": mv.run_id,
                "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
                "status": (mv.tags or {}).get("nightshift.status"),
                "window": t.get("nightshift.window"),
                "device": t.get("nightshift.device"),
                "holdout": {k[8:]: m[k] for k in sorted(m) if k.startswith("holdout_")},
            }
    return out


def audit_incidents(audit: list[dict[str, Any]]) -> list[Incident]:
    """Rejections and rollbacks in the audit trail, as incidents."""
    out = []
    for e in audit:
        if e["action"] == "reject":
            out.append(Incident(e["time"], "rejected", f"v{e['version']} rejected: {e['reason'][:200]}"))
        elif e["action"] == "rollback":
            what = f"v{e['previous_version']} rolled back to v{e['version']}: {e['reason'][:200]}"
            out.append(Incident(e["time"], "rolled_back", what))
    return out


# long: the four delivery metrics from one pass over the audit trail
def delivery_metrics(
    audit: list[dict[str, Any]],
    failed_runs: list[Incident],
    windows: dict[str, tuple[date, date]],
    landings: dict[tuple[str, str], str],
    label_delay: int,
    now: datetime,
) -> dict[str, Any]:
    """The four delivery metrics (see the module doc); ``None`` where there is nothing to measure.

    Incidents are ``failed_runs`` plus the audit trail's rejections and rollbacks. ``landings``
    maps (kind, day) to when that batch was validated; ``windows`` a version to the first and
    last day it was trained on."""
    promotions = [e for e in audit if e["action"] == "promote"]
    rejects = [e for e in audit if e["action"] == "reject"]
    rollbacks = [e for e in audit if e["action"] == "rollback"]
    deployments = len(promotions) + len(rollbacks)
    first = min((_ts(e["time"]) for e in audit), default=None)
    span_days = max((now - first).total_seconds() / 86400, 1.0) if first else None
    per_week = deployments / (span_days / 7) if span_days else None

    leads: list[dict[str, Any]] = []
    for e in promotions:
        w = windows.get(str(e["version"]))
        if w is None:
            continue
        lo, hi = w
        landed = [
            t
            for (kind, day), t in landings.items()
            if t and lo <= parse_dt(day) <= (hi if kind == "events" else hi + timedelta(days=label_delay))
        ]
        if landed:
            newest = max(_ts(t) for t in landed)
            hours = (_ts(e["time"]) - newest).total_seconds() / 3600
            leads.append({"version": e["version"], "landed": newest.isoformat(), "hours": round(hours, 3)})

    incidents = [*failed_runs, *audit_incidents(audit)]
    events = sorted(
        [(_ts(i.time), "incident", i) for i in incidents]
        + [(_ts(e["time"]), "promote", e) for e in promotions],
        key=lambda x: x[0],
    )
    recoveries: list[dict[str, Any]] = []
    open_since: datetime | None = None
    opened_by: Incident | None = None
    for t, what, item in events:
        if what == "incident" and open_since is None:
            open_since, opened_by = t, item  # type: ignore[assignment]
        elif what == "promote" and open_since is not None and opened_by is not None:
            recoveries.append(
                {
                    "incident": opened_by.what,
                    "since": open_since.isoformat(),
                    "recovered": t.isoformat(),
                    "by": f"v{item['version']}",  # type: ignore[index]
                    "hours": round((t - open_since).total_seconds() / 3600, 3),
                }
            )
            open_since, opened_by = None, None
    attempts = len(promotions) + len(rejects)
    return {
        "deployments": deployments,
        "promotions": len(promotions),
        "rejections": len(rejects),
        "rollbacks": len(rollbacks),
        "span_days": round(span_days, 2) if span_days else None,
        "deployment_frequency_per_week": round(per_week, 2) if per_week is not None else None,
        "lead_time_hours": {
            "median": round(statistics.median(x["hours"] for x in leads), 3) if leads else None,
            "mean": round(statistics.fmean(x["hours"] for x in leads), 3) if leads else None,
            "each": leads,
        },
        "mttr_hours": round(statistics.fmean(r["hours"] for r in recoveries), 3) if recoveries else None,
        "recoveries": recoveries,
        "open_incident": {"since": open_since.isoformat(), "what": opened_by.what}
        if open_since and opened_by
        else None,
        "change_failure_rate": round((len(rejects) + len(rollbacks)) / attempts, 4) if attempts else None,
        "change_failures": len(rejects) + len(rollbacks),
        "attempts": attempts,
    }


# long: every panel of the Model health page, gathered in one pass over the store and the registry
def collect(
    store: Store,
    spec: DatasetSpec,
    client: Any = None,
    failed_runs: list[Incident] | None = None,
    now: datetime | None = None,
) -> Health:
    """Everything the Model health page shows. ``client`` (MLflow) adds each version's holdout
    metrics and window; ``failed_runs`` are the orchestrator's failed training runs. What
    cannot be read is named in ``errors``, the rest is still shown."""
    from nightshift import registry, retrain
    from nightshift.report import day_rows

    now = now or datetime.now(UTC)
    errors: list[str] = []
    # "who": the actor, on behalf of whom, and who ran it (e.g. "admin on behalf of bob")
    audit = [{**e.to_dict(), "who": e.who} for e in registry.read_audit(store, spec.name)]
    records = retrain.read_records(store, spec.name)
    reported = store.list_partitions(store.path("reports", spec.name, "validation"))
    days: list[dict[str, Any]] = []
    if reported:
        start = max(reported[0], reported[-1] - timedelta(days=MAX_DAYS - 1))
        days = day_rows(store, spec.name, start, (reported[-1] - start).days + 1)
    landings = {
        (kind, r["dt"]): r[kind]["validated_at"]
        for r in days
        for kind in ("events", "labels")
        if r.get(kind) and r[kind]["valid"] and r[kind].get("validated_at")
    }

    champion = previous = None
    versions: dict[str, dict[str, Any]] = {}
    if client is not None:
        try:
            champion = registry.alias_version(client, spec.name, registry.CHAMPION)
            previous = registry.alias_version(client, spec.name, registry.PREVIOUS)
            wanted = sorted(
                {str(e["version"]) for e in audit} | {v for v in (champion, previous) if v}, key=int
            )
            versions = version_info(client, spec.name, wanted)
        except registry.RegistryError as exc:
            errors.append(f"{exc}; the champion shown is the audit trail's")
            client = None
    if client is None:
        # without the registry: the audit trail's last champion-moving decision
        moved = [e for e in audit if e["action"] in ("promote", "rollback")]
        champion = str(moved[-1]["version"]) if moved else None
        previous = str(moved[-1]["previous_version"]) if moved and moved[-1]["previous_version"] else None
    for v, info in versions.items():
        # the aliases are the truth; a status tag of a former champion/previous goes stale
        if v in (champion, previous):
            info["status"] = "champion" if v == champion else "previous"
        elif info.get("status") in ("champion", "previous"):
            info["status"] = "retired"
    windows = {v: w for v, info in versions.items() if (w := _window(info.get("window")))}

    incidents = list(failed_runs or [])
    for e in audit:
        if e["action"] == "reject":
            incidents.append(
                Incident(e["time"], "rejected", f"v{e['version']} rejected: {e['reason'][:200]}")
            )
        elif e["action"] == "rollback":
            what = f"v{e['previous_version']} rolled back to v{e['version']}: {e['reason'][:200]}"
            incidents.append(Incident(e["time"], "rolled_back", what))
    delivery = delivery_metrics(audit, incidents, windows, landings, spec.label.delay_days, now)

    champ_info = None
    if champion:
        promoted = [
            e for e in audit if e["action"] in ("promote", "rollback") and str(e["version"]) == champion
        ]
        champ_info = {
            "version": champion,
            "previous": previous,
            "since": promoted[-1]["time"] if promoted else None,
            **versions.get(champion, {}),
        }
    retrains = [
        {
            "decided_at": d.decided_at,
            "day": d.day,
            "action": d.action,
            "reason": d.reason,
            "forced": d.forced,
            "actor": d.actor,
            "who": d.who,
            "alerts": [f"{a['kind']} (onset {a['onset']})" for a in d.alerts],
            "status": (d.outcome or {}).get("status"),
            "version": (d.outcome or {}).get("version"),
            "run_key": d.run_key,
        }
        for d in records[-20:]
    ]
    return Health(
        dataset=spec.name,
        generated_at=now.isoformat(timespec="seconds"),
        champion=champ_info,
        timeline=audit[::-1],
        versions=versions,
        days=days,
        retrains=retrains[::-1],
        delivery=delivery,
        incidents=[asdict(i) for i in sorted(incidents, key=lambda i: i.time, reverse=True)],
        errors=errors,
    )
