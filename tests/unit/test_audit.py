"""The audit trail's records: who acted, on whose behalf, who ran it; records written before
these fields existed still read (pure: the store only, no MLflow)."""

from __future__ import annotations

from typing import Any

from nightshift.health import collect
from nightshift.registry import AuditEvent, read_audit, write_audit
from nightshift.spec import DatasetSpec
from nightshift.storage import Store


def test_who_names_the_actor_on_whose_behalf_and_who_ran_it() -> None:
    def who(actor: str, triggered_by: str | None, on_behalf_of: str | None) -> str:
        e = AuditEvent("promote", "payments", "2", "1", actor, "t", "r")
        e.triggered_by, e.on_behalf_of = triggered_by, on_behalf_of
        return e.who

    assert who("alice", "alice", "bob") == "alice on behalf of bob"
    assert who("alice", "alice", None) == "alice"
    assert who("nightshift-gate", "scheduler", None) == "nightshift-gate (run by scheduler)"
    assert who("admin", "carol", None) == "admin (run by carol)"  # an approver of carol's run
    assert who("alice", None, "alice") == "alice"


def test_records_from_before_the_new_fields_still_read_and_show_who(tmp_path: Any, spec: DatasetSpec) -> None:
    store = Store(tmp_path.as_uri())
    old: dict[str, Any] = {
        "action": "rollback",
        "dataset": "payments",
        "version": "1",
        "previous_version": "2",
        "actor": "alice",
        "trigger": "cli: nightshift rollback",
        "reason": "bad scores",
        "deltas": {},
        "run_id": None,
        "time": "2026-05-01T00:00:00.000+00:00",
        "review": None,
    }
    store.write_json_atomic(store.path("audit", "payments", "rollback-v1-old.json"), old)
    new = AuditEvent(
        "promote", "payments", "3", "1", "dag_test", "t", "r", time="2026-05-02T00:00:00.000+00:00"
    )
    new.on_behalf_of, new.triggered_by, new.run_key = "bob", "dag_test", "nightshift_promote.payments/r1"
    write_audit(store, new)
    first, second = read_audit(store, "payments")
    assert (first.actor, first.triggered_by, first.on_behalf_of, first.run_key) == ("alice", None, None, None)
    assert second == new
    timeline = collect(store, spec).timeline
    assert [e["who"] for e in timeline] == ["dag_test on behalf of bob", "alice"]
