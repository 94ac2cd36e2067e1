"""Ranges of days for the command line: every day runs, each result is named, and progress is a
bar on a terminal and one line per day otherwise."""

from __future__ import annotations

import io
import os
from datetime import date

import pytest

from nightshift.runner import BarReporter, DayResult, LineReporter, day_range, reporter_for, run_days, summary


def test_a_range_includes_both_ends_and_refuses_from_after_to() -> None:
    assert day_range(date(2026, 2, 27), date(2026, 3, 2)) == [
        date(2026, 2, 27),
        date(2026, 2, 28),
        date(2026, 3, 1),
        date(2026, 3, 2),
    ]
    assert day_range(date(2026, 3, 1), date(2026, 3, 1)) == [date(2026, 3, 1)]
    with pytest.raises(ValueError, match="--from 2026-03-02 is after --to 2026-03-01"):
        day_range(date(2026, 3, 2), date(2026, 3, 1))


def _step(day: date) -> DayResult:
    if day.day == 2:
        return DayResult(day, "failed", "no events files for x in file:///s/landing/x/events/dt=2026-01-02")
    if day.day == 3:
        return DayResult(day, "quarantined", "x events dt=2026-01-03 quarantined: 1 check(s) failed")
    return DayResult(day, "ok", "events 10 rows")


def test_a_failed_day_does_not_stop_the_others_and_each_is_one_line_when_not_a_terminal() -> None:
    out = io.StringIO()
    reporter = reporter_for(out)
    assert isinstance(reporter, LineReporter)
    results = run_days(day_range(date(2026, 1, 1), date(2026, 1, 4)), _step, reporter, "ingest x")
    assert [r.status for r in results] == ["ok", "failed", "quarantined", "ok"]
    assert [r.ok for r in results] == [True, False, False, True]
    lines = out.getvalue().splitlines()
    assert lines == [r.line() for r in results]
    assert lines[1].startswith("2026-01-02  failed") and "dt=2026-01-02" in lines[1]
    assert summary(results, "ingested") == "4 day(s) ingested: 2 ok, 1 quarantined, 1 failed"


def test_on_a_terminal_the_range_has_a_progress_bar() -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        reporter = reporter_for(tty)
        assert isinstance(reporter, BarReporter)
        results = run_days(day_range(date(2026, 1, 1), date(2026, 1, 3)), _step, reporter, "ingest x")
        tty.flush()
        shown = b""
        os.set_blocking(master, False)
        try:
            while chunk := os.read(master, 65536):
                shown += chunk
        except BlockingIOError:
            pass
    os.close(master)
    text = shown.decode(errors="replace")
    assert len(results) == 3
    # each finished day's line is printed above the bar; the bar counted them
    for r in results:
        assert str(r.day) in text
    assert "quarantined" in text and "3/3" in text
