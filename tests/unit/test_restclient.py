"""``AirflowAPI.wait_idle``: idle means no run queued or running and no Asset event queued,
``quiet_polls`` polls in a row (a busy poll in between starts the count again)."""

from __future__ import annotations

import time

import pytest

from nightshift.restclient import AirflowAPI


class Scripted(AirflowAPI):
    """An API whose :meth:`busy` answers from a script (no server)."""

    def __init__(self, answers: list[list[str]]) -> None:
        super().__init__("http://127.0.0.1:9", "admin", "")
        self.answers = answers
        self.polls = 0

    def busy(self, dataset: str) -> list[str]:
        self.polls += 1
        return self.answers.pop(0) if self.answers else []


def test_idle_needs_two_quiet_polls_in_a_row_by_default() -> None:
    # score finished, its predictions event not yet a monitor run: still busy (queued event)
    api = Scripted([["score(1 run(s))"], [], ["monitor(0 run(s), events queued)"], [], []])
    api.wait_idle("payments", time.monotonic() + 10, poll_s=0.01)
    assert api.polls == 5


def test_still_busy_at_the_deadline_names_what() -> None:
    api = Scripted([["monitor(1 run(s))"]] * 50)
    with pytest.raises(TimeoutError, match=r"still busy: monitor\(1 run\(s\)\)"):
        api.wait_idle("payments", time.monotonic() + 0.05, poll_s=0.01)


def test_a_quiet_poll_is_confirmed_soon_not_a_whole_poll_later(monkeypatch: pytest.MonkeyPatch) -> None:
    import nightshift.restclient as rc

    slept: list[float] = []
    monkeypatch.setattr(rc.time, "sleep", slept.append)
    api = Scripted(
        [["ingest(1 run(s))"], ["score(1 run(s))"], [], ["monitor(0 run(s), events queued)"], [], []]
    )
    api.wait_idle("payments", time.monotonic() + 10, poll_s=1.0, confirm_s=0.25)
    assert api.polls == 6
    assert slept == [1.0, 1.0, 0.25, 1.0, 0.25]
