"""Human approval of borderline promotions: an Airflow human-in-the-loop task between the gate
and the promotion. It waits only when the gate's verdict falls in the spec's review band
(``gate.review``); otherwise it returns at once and the gate decides alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from nightshift.airflow.notify import NightshiftNotifier
from nightshift.airflow.urls import health_url
from nightshift.review import APPROVE, REJECT


class ReviewOperator(HITLOperator):
    """Approve or reject a borderline challenger in the Airflow UI (*Required actions*).

    Returns ``{"needed": False}`` outside the band, else the review the audit trail records:
    ``decision`` (approve/reject), ``by`` (the approver), ``at``, ``comment``, ``timed_out``.
    No answer within ``gate.review.timeout_hours``: ``gate.review.on_timeout`` decides."""

    def __init__(self, *, dataset: str, gate_task_id: str = "gate", **kwargs: Any) -> None:
        # the DAG's own params arrive here too; the form shows only the task's (the comment)
        kwargs.pop("params", None)
        super().__init__(
            subject=f"{dataset}: promote the challenger?",
            options=[APPROVE, REJECT],
            params={
                "comment": Param(
                    "", type=["null", "string"], maxLength=1000, description="Why (kept in the audit trail)"
                )
            },
            notifiers=[NightshiftNotifier("review")],
            **kwargs,
        )
        self.dataset = dataset
        self.gate_task_id = gate_task_id

    def execute(self, context: Any) -> Any:
        from nightshift.airflow.store import store_of
        from nightshift.airflow.xcom import from_xcom
        from nightshift.monitor import read_history
        from nightshift.review import evidence_markdown
        from nightshift.spec import find_spec
        from nightshift.verdict import GateResult

        verdict = from_xcom(GateResult, context["ti"].xcom_pull(task_ids=self.gate_task_id))
        if not verdict.review:
            self.log.info("not borderline: the gate decides alone (%s)", verdict.reason)
            return {"needed": False}
        spec = find_spec(self.dataset)
        rules = spec.gate.review
        assert rules is not None  # the gate only asks for a review when the spec has a band
        self.response_timeout = timedelta(hours=rules.timeout_hours)
        self.defaults = [APPROVE if rules.on_timeout == "gate" and verdict.promote else REJECT]
        self.subject = f"{self.dataset}: promote v{verdict.version} over champion v{verdict.champion}?"
        self.body = evidence_markdown(
            spec, verdict, read_history(store_of(), self.dataset), health_url(self.dataset)
        )
        self.log.info("borderline verdict, waiting for a human: %s", verdict.review)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        from nightshift.review import answer

        super().execute_complete(context, event)
        review = {"needed": True, **answer(event)}
        self.log.info("review: %s by %s", review["decision"], review["by"])
        return review
