"""Human review of borderline gate verdicts: the evidence shown to the approver, and the
approver's answer turned into the decision the registry records (no Airflow here)."""

from __future__ import annotations

import math
from typing import Any

from nightshift.spec import DatasetSpec
from nightshift.verdict import GateResult

APPROVE = "Approve"
REJECT = "Reject"


def _num(v: Any, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.4f}" if signed else f"{v:.4f}"


def evidence_markdown(
    spec: DatasetSpec,
    verdict: GateResult,
    history: list[dict[str, Any]],
    health_url: str | None = None,
    days: int = 7,
) -> str:
    """The approval form's body: the gate's recommendation and why it is borderline, metric
    deltas, the slice table, the champion's recent drift and live AUC, and links."""
    m = spec.gate.metric
    rec = "promote" if verdict.promote else "reject"
    lines = [
        f"**Borderline verdict on {spec.name} v{verdict.version}** (champion v{verdict.champion})",
        "",
        f"{verdict.review or ''}.",
        "",
        f"The gate recommends **{rec}**: {verdict.reason}",
        "",
        "| metric | challenger | champion | delta |",
        "|---|---|---|---|",
    ]
    cm, ch, deltas = verdict.metrics, verdict.champion_metrics, verdict.deltas
    for k in ("roc_auc", "average_precision", "log_loss", "brier"):
        if k in cm:
            lines.append(f"| {k} | {_num(cm.get(k))} | {_num(ch.get(k))} | {_num(deltas.get(k), True)} |")
    slices = verdict.slices
    if slices:
        lines += [
            "",
            f"| slice | rows | positives | challenger {m} | champion {m} | delta |",
            "|---|---|---|---|---|---|",
        ]
        for s in slices:
            lines.append(
                f"| {s.slice} | {s.rows} | {s.positives} | {_num(s.challenger)} | "
                f"{_num(s.champion)} | {_num(s.delta, True)} |"
            )
    failed = verdict.failed
    if failed:
        lines += ["", "Failed checks:"] + [f"- `{c.name}`: {c.detail}" for c in failed]
    recent = sorted(history, key=lambda r: (r["dt"], str(r.get("version"))))[-days:]
    if recent:
        lines += ["", f"Recent monitoring (last {len(recent)} day(s), the version that scored each):", ""]
        lines += ["| day | version | drift share | drifting | live AUC |", "|---|---|---|---|---|"]
        for r in recent:
            drifting = "yes" if r.get("drifting") else "no"
            lines.append(
                f"| {r['dt']} | v{r.get('version')} | {_num(r.get('drift_share'))} | {drifting} | "
                f"{_num(r.get('roc_auc'))} |"
            )
    else:
        lines += ["", "No monitored day yet."]
    links = dict(verdict.links)
    if health_url:
        links["Model health"] = health_url
    if links:
        lines += ["", " · ".join(f"[{name}]({url})" for name, url in links.items())]
    return "\n".join(lines)


def answer(event: dict[str, Any]) -> dict[str, Any]:
    """The approver's answer (a HITL response event) as the review the audit trail records."""
    chosen = list(event.get("chosen_options") or [])
    user = event.get("responded_by_user")
    by = (user.get("name") or user.get("id")) if isinstance(user, dict) else user
    at = event.get("responded_at")
    params = event.get("params_input") or {}
    timed_out = bool(event.get("timedout"))
    return {
        "decision": "approve" if chosen == [APPROVE] else "reject",
        "by": str(by) if by else ("timeout" if timed_out else "unknown"),
        "at": at.isoformat() if at is not None and hasattr(at, "isoformat") else (str(at) if at else None),
        "comment": str(params.get("comment") or "").strip() or None,
        "timed_out": timed_out,
    }
