"""Task wiring shared by DAG files (light: imported at parse time)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, task

from nightshift.airflow.dagconfig import REGISTRY_POOL
from nightshift.airflow.notify import NightshiftNotifier
from nightshift.airflow.review import ReviewOperator


def gate_and_promote(name: str, champion: Asset, trained: Any) -> Any:
    """``gate`` (challenger vs champion and baseline, register) → ``serving_check`` (the
    candidate served by a fresh ``nightshift serve`` answers as in process, fast enough; a
    failure rejects it) → ``review`` (a human decides a borderline verdict; passes through
    otherwise) → ``promote`` (pool ``nightshift_registry``, emits the *champion* Asset event) on
    a ``train`` task's output. The check comes before the review: nobody reviews a candidate
    that cannot serve."""

    @task(multiple_outputs=False)
    def gate(trained: dict[str, Any], **context: Any) -> dict[str, Any]:
        from nightshift.airflow.tasks.gate import run_gate

        return run_gate(name, trained, context)  # type: ignore[arg-type]

    @task(multiple_outputs=False)
    def serving_check(verdict: dict[str, Any], **context: Any) -> dict[str, Any]:
        from nightshift.airflow.tasks.gate import run_serving_check

        return run_serving_check(name, verdict, context)  # type: ignore[arg-type]

    @task(
        multiple_outputs=False,
        pool=REGISTRY_POOL,
        outlets=[champion],
        on_success_callback=[NightshiftNotifier("promotion")],
    )
    def promote(verdict: dict[str, Any], review: dict[str, Any] | None, **context: Any) -> dict[str, Any]:
        from nightshift.airflow.tasks.gate import run_promote

        return run_promote(name, verdict, context, champion, review)  # type: ignore[arg-type]

    verdict = serving_check(gate(trained))  # type: ignore[arg-type]
    review = ReviewOperator(task_id="review", dataset=name, gate_task_id="serving_check")
    verdict >> review
    return promote(verdict, review.output)  # type: ignore[arg-type]
