"""The retraining guard rails, one by one (pure: alerts, earlier decisions, labelled days)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from nightshift.monitor import Alert
from nightshift.retrain import RetrainDecision, decide, find_record, finish, read_records, write_record
from nightshift.spec import DatasetSpec, parse_spec
from nightshift.storage import Store

D0 = date(2026, 5, 1)
T0 = datetime(2026, 5, 20, 12, tzinfo=UTC)


def _day(i: int) -> date:
    return D0 + timedelta(days=i)


@pytest.fixture
def spec(spec: DatasetSpec) -> DatasetSpec:
    data = spec.model_dump()
    data["retrain"] = {"cooldown_days": 3, "max_per_week": 2, "since_onset": True, "min_days_after_onset": 6}
    return parse_spec(data)


def _alert(dt: int, onset: int, version: str = "3", raised: datetime = T0, kind: str = "drift") -> Alert:
    return Alert(
        "payments", kind, _day(dt).isoformat(), version, _day(onset).isoformat(), "r", [], raised.isoformat()
    )


def _ran(key: str, day: int, decided: datetime, finished: datetime | None) -> RetrainDecision:
    return RetrainDecision(
        dataset="payments",
        run_key=key,
        action="retrain",
        reason="r",
        decided_at=decided.isoformat(),
        day=_day(day).isoformat(),
        outcome={"status": "promoted", "finished_at": finished.isoformat()} if finished else None,
    )


LABELLED = [_day(i) for i in range(0, 27)]


def _decide(
    spec: DatasetSpec, alerts: list[Alert], records: Sequence[RetrainDecision] = (), **kw: Any
) -> RetrainDecision:
    args = {"champion": "3", "labelled": LABELLED, "quarantined": [], "now": T0, **kw}
    return decide(spec, "nightshift_retrain.payments/run", alerts, list(records), **args)


def test_an_alert_with_enough_labelled_days_since_the_onset_retrains_on_them(spec: DatasetSpec) -> None:
    d = _decide(spec, [_alert(29, 18)])
    assert d.action == "retrain" and d.since == _day(18).isoformat()
    assert d.window == [_day(i).isoformat() for i in range(18, 27)]
    assert [c["name"] for c in d.checks] == ["alert", "current", "budget", "data"]
    assert all(c["ok"] for c in d.checks) and "drift" in d.reason


def test_no_alert_skips_unless_forced(spec: DatasetSpec) -> None:
    d = _decide(spec, [])
    assert d.action == "skip" and "no alert" in d.reason
    forced = _decide(spec, [], force=True, actor="ops")
    assert forced.action == "retrain" and forced.forced and forced.since is None
    assert forced.window == [_day(i).isoformat() for i in range(17, 27)]  # the last window_days
    assert "forced by ops" in forced.reason


def test_alerts_about_a_replaced_champion_are_stale(spec: DatasetSpec) -> None:
    d = _decide(spec, [_alert(29, 18, version="2")])
    assert d.action == "skip" and "replaced" in d.reason


def test_alerts_raised_while_a_retrain_ran_are_merged_into_it(spec: DatasetSpec) -> None:
    running = _ran(
        "nightshift_retrain.payments/earlier", 20, T0 - timedelta(hours=1), T0 + timedelta(hours=1)
    )
    merged = _decide(spec, [_alert(24, 18, raised=T0), _alert(25, 18, raised=T0)], [running])
    assert merged.action == "skip" and merged.merged_into == running.run_key
    assert "merged into retrain" in merged.reason and len(merged.alerts) == 2
    # a retrain with no recorded end (killed) stops merging after the grace period
    killed = _ran("nightshift_retrain.payments/killed", 10, T0 - timedelta(days=2), None)
    assert _decide(spec, [_alert(29, 18)], [killed]).action == "retrain"


def test_cooldown_after_a_retrain(spec: DatasetSpec) -> None:
    last = _ran("nightshift_retrain.payments/last", 27, T0 - timedelta(days=1), T0 - timedelta(hours=20))
    d = _decide(spec, [_alert(29, 18)], [last])
    assert d.action == "skip" and "cooldown" in d.reason and str(_day(30)) in d.reason
    assert _decide(spec, [_alert(30, 18)], [last]).action == "retrain"


def test_weekly_budget(spec: DatasetSpec) -> None:
    old = T0 - timedelta(days=9)
    two = [
        _ran(f"k{i}", day, old + timedelta(hours=i), old + timedelta(hours=i, minutes=30))
        for i, day in enumerate((20, 22))
    ]
    d = _decide(spec, [_alert(26, 18)], two)
    assert d.action == "skip" and "weekly budget" in d.reason
    # the older one leaves the 7-day window
    assert _decide(spec, [_alert(27, 18)], two).action == "retrain"


def test_waits_for_labelled_days_after_the_onset(spec: DatasetSpec) -> None:
    d = _decide(spec, [_alert(24, 23)])
    assert d.action == "skip" and "waiting for labels after the onset" in d.reason and "4 of 6" in d.reason


def test_never_trains_on_quarantined_days(spec: DatasetSpec) -> None:
    bad = [_day(20), _day(22)]
    d = _decide(spec, [_alert(29, 18)], quarantined=bad)
    assert d.action == "retrain"
    assert _day(20).isoformat() not in d.window and _day(22).isoformat() not in d.window
    assert d.excluded_quarantined == [_day(20).isoformat(), _day(22).isoformat()]
    # too few clean days left after the onset: wait instead of training on bad data
    many = [_day(i) for i in range(19, 26)]
    assert _decide(spec, [_alert(29, 18)], quarantined=many).action == "skip"


def test_records_are_written_found_and_finished(tmp_path: Any, spec: DatasetSpec) -> None:
    store = Store(tmp_path.as_uri())
    d = _decide(spec, [_alert(29, 18)])
    write_record(store, d)
    assert find_record(store, "payments", d.run_key) == d
    done = finish(store, "payments", d.run_key, "promoted", version="4")
    assert done is not None and done.outcome is not None and done.outcome["version"] == "4"
    (again,) = read_records(store, "payments")
    assert again.outcome == done.outcome


# ---- a manual retrain's overrides ---------------------------------------------------------------


def test_a_forced_retrain_takes_its_overrides_and_records_them(spec: DatasetSpec) -> None:
    overrides = {
        "since": _day(10).isoformat(),
        "window_days": 8,
        "xgb_params": {"max_depth": 6},
        "note": "why",
    }
    d = _decide(spec, [], force=True, actor="alice", overrides=overrides)
    assert d.action == "retrain" and d.forced and d.actor == "alice"
    assert d.since == _day(10).isoformat()
    assert d.window == [_day(i).isoformat() for i in range(19, 27)]  # the newest 8 since day 10
    assert d.overrides == {**overrides, "xgb_params": {"max_depth": 6}}
    assert "forced by alice (why)" in d.reason and "max_depth" in d.reason and "window_days=8" in d.reason


@pytest.mark.parametrize(
    ("overrides", "force", "message"),
    [
        ({"window_days": 8}, False, "overrides apply to a manual retrain only: set force=true"),
        ({"since": "yesterday"}, True, "since: "),
        ({"window_days": 3}, True, "window_days: 3 is not an integer >= 5"),
        ({"xgb_params": {"max_dept": 5}}, True, "xgb_params.max_dept: not an overridable XGBoost parameter"),
        ({"xgb_params": {"max_depth": 2.5}}, True, "xgb_params.max_depth: 2.5 is not an integer"),
        ({"xgb_params": {"eta": "fast"}}, True, "xgb_params.eta: 'fast' is not a number"),
        ({"num_boost_round": 0}, True, "num_boost_round: 0 is not an integer in 1..100000"),
        ({"windows": 3}, True, "unknown override 'windows'"),
    ],
)
def test_bad_overrides_are_refused_naming_the_problem(
    spec: DatasetSpec, overrides: dict[str, Any], force: bool, message: str
) -> None:
    with pytest.raises(ValueError, match="invalid retrain request") as err:
        _decide(spec, [], force=force, overrides=overrides)
    assert message in str(err.value)


def test_empty_overrides_change_nothing(spec: DatasetSpec) -> None:
    plain = _decide(spec, [_alert(29, 18)])
    same = _decide(spec, [_alert(29, 18)], overrides={"since": None, "xgb_params": {}, "window_days": None})
    assert (same.action, same.window, same.overrides) == (plain.action, plain.window, {})


def test_a_forced_retrain_names_who_ran_it_and_on_whose_behalf(tmp_path: Any, spec: DatasetSpec) -> None:
    d = _decide(spec, [], force=True, actor="alice", triggered_by="alice", on_behalf_of="bob")
    assert (d.actor, d.on_behalf_of, d.triggered_by, d.who) == (
        "alice",
        "bob",
        "alice",
        "alice on behalf of bob",
    )
    assert "forced by alice on behalf of bob: training on" in d.reason
    assert d.checks[0]["detail"].startswith("manual retrain by alice on behalf of bob")
    # a record written before these fields existed still reads
    store = Store(tmp_path.as_uri())
    write_record(store, d)
    old = {k: v for k, v in d.to_dict().items() if k not in ("triggered_by", "on_behalf_of")}
    store.write_json_atomic(
        store.path("reports", "payments", "retrain", "old.json"), {**old, "run_key": "old"}
    )
    assert {r.run_key: r.who for r in read_records(store, "payments")} == {d.run_key: d.who, "old": "alice"}


# ---- the bootstrap guard rail (no champion yet) ------------------------------------------------


def _boot(
    spec: DatasetSpec, key: str, records: list[RetrainDecision], last_day: int, at: int
) -> RetrainDecision:
    from nightshift.retrain import decide_bootstrap

    labelled = [_day(i) for i in range(last_day + 1)]
    return decide_bootstrap(spec, key, records, labelled, now=T0 + timedelta(hours=at))


def test_bootstrap_trains_at_most_once_per_period_and_tells_a_wait_once(spec: DatasetSpec) -> None:
    from nightshift.retrain import NOT_TRAINED

    assert spec.retrain.bootstrap_every_days == 3  # the default
    first = _boot(spec, "a", [], 9, 0)
    assert first.ran and first.day == _day(9).isoformat() and first.actor == "nightshift-bootstrap"
    first.outcome = {"status": "rejected"}
    records = [first]
    # the next days' automatic runs wait; the first skip of the wait is told, not the next ones
    skip1 = _boot(spec, "b", records, 10, 1)
    assert not skip1.ran
    assert (
        "last bootstrap attempt (data of 2026-05-10) was rejected: next attempt on data from 2026-05-13"
        in (skip1.reason)
    )
    notify = {c["name"]: c["ok"] for c in skip1.checks}
    assert notify == {"bootstrap": False, "notify": True}
    records.append(skip1)
    skip2 = _boot(spec, "c", records, 11, 2)
    assert not skip2.ran and {c["name"]: c["ok"] for c in skip2.checks}["notify"] is False
    records.append(skip2)
    # three labelled days later: another attempt
    again = _boot(spec, "d", records, 12, 3)
    assert again.ran
    # an attempt that found too little data does not count; 0 = every run
    empty = _boot(spec, "e", [], 9, 0)
    empty.outcome = {"status": NOT_TRAINED}
    assert _boot(spec, "f", [empty], 10, 1).ran
    data = spec.model_dump()
    data["retrain"]["bootstrap_every_days"] = 0
    assert _boot(parse_spec(data), "g", records, 10, 4).ran


def test_bootstrap_records_live_apart_from_the_retrain_records(spec: DatasetSpec, tmp_path: Any) -> None:
    from nightshift.retrain import BOOTSTRAP

    store = Store((tmp_path / "s").as_uri())
    d = _boot(spec, "nightshift_train.payments/a", [], 9, 0)
    write_record(store, d, BOOTSTRAP)
    assert read_records(store, "payments") == []
    assert find_record(store, "payments", d.run_key, BOOTSTRAP) == d
    done = finish(store, "payments", d.run_key, "rejected", BOOTSTRAP, version="1")
    assert done is not None and done.outcome is not None and done.outcome["version"] == "1"
    assert finish(store, "payments", "no-such-run", "rejected", BOOTSTRAP) is None


def test_the_retrain_reads_each_triggering_alert_once_when_it_came_through_an_alias() -> None:
    """Airflow lists an event emitted through an alias (the alert task's
    ``assets.when_due``) under the Asset and under the alias: one alert, not two."""
    from types import SimpleNamespace

    from airflow.sdk import Asset, AssetAlias

    from nightshift.airflow.tasks.retrain import _alerts
    from nightshift.airflow.tasks.score import _days_to_score
    from nightshift.monitor import Alert

    alert = {"kind": "drift", "version": "1", "dt": "2026-03-20", "onset": "2026-03-19"}
    alert.update(dataset="x", reason="drift on 2 days", raised_at="2026-03-20T01:00:00+00:00")
    event = SimpleNamespace(extra=alert)
    alias = AssetAlias(name="nightshift.x.alert.when_due")
    events = {Asset(name="nightshift.x.alert"): [event], alias: [event]}
    assert _alerts({"triggering_asset_events": events}) == [Alert.from_dict(alert)]
    curated = SimpleNamespace(extra={"dt": "2026-03-20"})
    twice = {Asset(name="nightshift.x.curated"): [curated, curated]}  # a day triggered twice
    days = _days_to_score({"triggering_asset_events": twice})
    assert days == [date(2026, 3, 20)]
