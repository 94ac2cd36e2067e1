"""Steps over ranges of local days, for the command line: one :class:`DayResult` per day, a
day that fails never stops the others, and progress shown as a bar on a terminal or one line
per day otherwise.

The steps are the ones the DAGs call (``ingest_partition``, ``score_step``); :func:`replay`
lets landed days pass through a running scheduler instead, through its REST API. Imports no
airflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from nightshift.spec import BatchKind, DatasetSpec
from nightshift.storage import StorageError, Store

Status = Literal["ok", "warning", "skipped", "quarantined", "failed"]
BAD: tuple[Status, ...] = ("quarantined", "failed")


@dataclass(frozen=True)
class DayResult:
    """How one day went: ``ok``, ``warning`` (published with warnings), ``skipped`` (nothing was
    due), ``quarantined`` or ``failed``; ``message`` says what happened, naming the problem."""

    day: date
    status: Status
    message: str

    @property
    def ok(self) -> bool:
        return self.status not in BAD

    def line(self) -> str:
        return f"{self.day}  {self.status:<11}  {self.message}"


def day_range(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included; ``ValueError`` when ``start > end``."""
    if start > end:
        raise ValueError(f"--from {start} is after --to {end}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def summary(results: Sequence[DayResult], what: str) -> str:
    """``12 day(s) ingested: 10 ok, 1 skipped, 1 quarantined``."""
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "warning", "skipped", *BAD)}
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return f"{len(results)} day(s) {what}: {parts or 'nothing to do'}"


# ---- progress ----------------------------------------------------------------------------


class Reporter(Protocol):
    """Shows a range's progress: :meth:`step` while a day runs, :meth:`done` when it ended."""

    def start(self, total: int, what: str) -> None: ...

    def step(self, text: str) -> None: ...

    def done(self, result: DayResult) -> None: ...

    def close(self) -> None: ...


class LineReporter:
    """One line per finished day (for logs, pipes, CI)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def start(self, total: int, what: str) -> None:
        pass

    def step(self, text: str) -> None:
        pass

    def done(self, result: DayResult) -> None:
        print(result.line(), file=self.stream, flush=True)

    def close(self) -> None:
        pass


class BarReporter:
    """A progress bar (rich) with each finished day's line printed above it."""

    def __init__(self, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self.task: Any = None

    def start(self, total: int, what: str) -> None:
        self.progress.start()
        self.what = what
        self.task = self.progress.add_task(what, total=total)

    def step(self, text: str) -> None:
        self.progress.update(self.task, description=f"{self.what}: {text}")

    def done(self, result: DayResult) -> None:
        from rich.text import Text

        style = {"quarantined": "bold red", "failed": "bold red", "warning": "yellow"}.get(result.status, "")
        self.progress.console.print(Text(result.line(), style=style))
        self.progress.advance(self.task)

    def close(self) -> None:
        self.progress.stop()


def reporter_for(stream: IO[str]) -> Reporter:
    """A bar when ``stream`` is a terminal, one line per day otherwise."""
    isatty = getattr(stream, "isatty", None)
    return BarReporter(stream) if callable(isatty) and isatty() else LineReporter(stream)


def run_days(
    days: Iterable[date], step: Callable[[date], DayResult], reporter: Reporter, what: str
) -> list[DayResult]:
    """``step`` on each day in order (a failed day does not stop the others)."""
    days = list(days)
    reporter.start(len(days), what)
    out = []
    try:
        for day in days:
            reporter.step(str(day))
            result = step(day)
            reporter.done(result)
            out.append(result)
    finally:
        reporter.close()
    return out


# ---- ingest ------------------------------------------------------------------------------


def kinds_of(kind: str) -> tuple[BatchKind, ...]:
    return ("events", "labels") if kind == "both" else (kind,)  # type: ignore[return-value]


def landed(store: Store, spec: DatasetSpec, kind: BatchKind, day: date) -> list[str]:
    """The day's landing files matching ``landing.pattern`` (the marker is not checked)."""
    return store.list_files(store.landing_dir(spec.name, kind, day), spec.landing.pattern)


def labels_due(store: Store, spec: DatasetSpec, day: date) -> bool:
    """Labels arriving on ``day`` are due when events landed ``label.delay_days`` earlier (as
    the ingest DAG's labels wait decides)."""
    return bool(landed(store, spec, "events", day - timedelta(days=spec.label.delay_days)))


def ingest_day(
    store: Store, spec: DatasetSpec, day: date, kinds: Sequence[BatchKind], work_dir: Path | None = None
) -> DayResult:
    """Ingest ``kinds`` of one day with ``ingest_partition`` (the DAG's core; staging in
    ``work_dir``, default the state directory's). Labels that are not due and have not landed
    are skipped; anything else missing fails the day."""
    from nightshift.ingest import LandingIncomplete, NoLandingData, StagingError, ingest_partition
    from nightshift.validate import BatchRejected

    parts: list[str] = []
    seen: list[Status] = []
    for kind in kinds:
        if kind == "labels" and not labels_due(store, spec, day) and not landed(store, spec, kind, day):
            source = day - timedelta(days=spec.label.delay_days)
            parts.append(f"labels not due (no events landed on {source})")
            seen.append("skipped")
            continue
        try:
            outcome = ingest_partition(store, spec, kind, day, work_dir=work_dir)
        except BatchRejected as exc:
            parts.append(str(exc))
            seen.append("quarantined")
        except LandingIncomplete as exc:
            parts.append(str(exc))
            seen.append("failed")
        except NoLandingData as exc:
            parts.append(str(exc))
            seen.append("failed")
        except (StagingError, StorageError) as exc:
            parts.append(f"{kind}: infrastructure error (retry): {exc}")
            seen.append("failed")
        else:
            text = f"{kind} {outcome.rows:,} rows"
            if outcome.warnings:
                text += f" with {len(outcome.warnings)} warning(s): {outcome.warning_text(limit=4)}"
                seen.append("warning")
            parts.append(text)
            seen.append("ok")
    rank: dict[Status, int] = {"skipped": 0, "ok": 1, "warning": 2, "failed": 3, "quarantined": 4}
    return DayResult(day, max(seen, key=rank.__getitem__), "; ".join(parts))


# ---- score -------------------------------------------------------------------------------


def score_day(store: Store, spec: DatasetSpec, day: date, pinned: str) -> DayResult:
    """Score one curated day with ``score_step`` (the DAG's step: it resolves the champion);
    the line says when the champion is no longer the version ``pinned`` at the start."""
    from nightshift.registry import RegistryError
    from nightshift.steps.score import score_step

    try:
        result = score_step(store, spec, [day])
    except FileNotFoundError as exc:
        return DayResult(day, "failed", f"{exc} (not ingested, or quarantined)")
    except (RegistryError, StorageError) as exc:
        return DayResult(day, "failed", str(exc))
    version = result.champion
    if version is None:
        return DayResult(day, "failed", f"{spec.name}: no champion any more; nothing scored")
    (scored,) = result.scored
    moved = f" (the champion moved from v{pinned})" if version != pinned else ""
    return DayResult(day, "ok", f"{scored.rows:,} rows scored by v{version}{moved}")


# ---- replay through a running scheduler ---------------------------------------------------


def _ingest_outcome(api: Any, store: Store, spec: DatasetSpec, day: date, run: dict[str, Any]) -> DayResult:
    """A finished ingest run's day: its task states, and the validation verdicts of the
    failed ones (a rejected batch is named *quarantined*, with its failed checks)."""
    from nightshift.restclient import dag_id
    from nightshift.validate import ValidationOutcome

    ingest = dag_id("ingest", spec.name)
    states = api.task_states(ingest, run["dag_run_id"])
    done = ", ".join(
        f"{t.removeprefix('ingest_')} {s}" for t, s in sorted(states.items()) if t.startswith("ingest_")
    )
    if run["state"] == "success":
        return DayResult(day, "ok", f"{ingest} {run['dag_run_id']}: {done}")
    problems: list[str] = []
    status: Status = "failed"
    for kind in ("events", "labels"):
        if states.get(f"ingest_{kind}") != "failed":
            continue
        report = f"{store.reports_dir(spec.name, 'validation', day)}/{kind}.json"
        outcome = None
        if store.exists(report):
            outcome = ValidationOutcome.from_dict(store.read_json(report)["outcome"])
        if outcome is not None and not outcome.success:
            status = "quarantined"
            problems.append(outcome.message())
        else:
            problems.append(f"ingest_{kind} failed (see its task log)")
    failed = [
        t for t, s in states.items() if s in ("failed", "upstream_failed") and not t.startswith("ingest_")
    ]
    problems += [f"{t} {states[t]}" for t in sorted(failed)]
    return DayResult(
        day, status, f"{ingest} {run['dag_run_id']} {run['state']}: {'; '.join(problems) or done}"
    )


def _downstream_failures(api: Any, dataset: str, since: str) -> list[str]:
    """Runs of the dataset's other DAGs queued since ``since`` that failed."""
    from nightshift.restclient import KINDS, dag_id

    out = []
    for kind in KINDS[1:]:
        for r in api.runs(dag_id(kind, dataset), since=since, states=("failed",)):
            out.append(f"{dag_id(kind, dataset)} {r['dag_run_id']} failed")
    return out


def replay(
    api: Any,
    store: Store,
    spec: DatasetSpec,
    days: Sequence[date],
    reporter: Reporter,
    *,
    together: bool = False,
    timeout_s: float = 1200.0,
    unpause: Sequence[str] = (),
    poll_s: float = 1.0,
) -> list[DayResult]:
    """Let landed days pass through the running scheduler: trigger ``nightshift_ingest`` with
    ``dt`` = the day, then wait until every nightshift DAG of the dataset is idle (the scoring,
    monitoring and retraining the day sets off finish before the next day lands). With
    ``together``, every day is triggered at once and waited for once (a backfill).

    A day whose events have not landed is not triggered (its run would wait hours for them)
    and fails, named; a day that does not finish within ``timeout_s`` (per day; for the whole
    range with ``together``) fails and the later days are not triggered. ``unpause`` lists
    DAG families (``score``, ``monitor``, ...) to unpause besides ``ingest``."""
    from nightshift.restclient import dag_id

    api.check()
    ingest = dag_id("ingest", spec.name)
    for kind in ("ingest", *unpause):
        api.dag(dag_id(kind, spec.name))  # a DAG that is not there fails before anything starts
        api.unpause(dag_id(kind, spec.name))
    reporter.start(len(days), f"replay {spec.name}")
    results: dict[date, DayResult] = {}
    try:
        ready = []
        for day in days:
            if landed(store, spec, "events", day):
                ready.append(day)
                continue
            where = store.uri(store.landing_dir(spec.name, "events", day))
            results[day] = DayResult(
                day, "failed", f"no events files for {spec.name} in {where}: not triggered"
            )
            reporter.done(results[day])
        if together:
            _replay_together(api, store, spec, ready, reporter, results, timeout_s, poll_s)
        else:
            for i, day in enumerate(ready):
                t0 = time.monotonic()
                reporter.step(f"{day}: triggered")
                run = api.trigger(ingest, {"dt": day.isoformat()})
                try:
                    time.sleep(poll_s)
                    api.wait_idle(
                        spec.name,
                        t0 + timeout_s,
                        poll_s=poll_s,
                        on_poll=lambda busy, d=day: reporter.step(f"{d}: {', '.join(busy) or 'idle'}"),
                    )
                except TimeoutError as exc:
                    results[day] = DayResult(day, "failed", f"not finished after {timeout_s:.0f} s: {exc}")
                    reporter.done(results[day])
                    for later in ready[i + 1 :]:
                        results[later] = DayResult(later, "failed", f"not triggered: {day} did not finish")
                        reporter.done(results[later])
                    break
                result = _ingest_outcome(api, store, spec, day, api.run(ingest, run["dag_run_id"]))
                failures = _downstream_failures(api, spec.name, run["run_after"])
                if failures:
                    result = DayResult(day, "failed", f"{result.message}; {'; '.join(failures)}")
                took = f" ({time.monotonic() - t0:.0f} s)"
                results[day] = DayResult(day, result.status, result.message + took)
                reporter.done(results[day])
    finally:
        reporter.close()
    return [results[d] for d in days]


def _replay_together(
    api: Any,
    store: Store,
    spec: DatasetSpec,
    days: Sequence[date],
    reporter: Reporter,
    results: dict[date, DayResult],
    timeout_s: float,
    poll_s: float,
) -> None:
    from nightshift.restclient import FINISHED, dag_id

    ingest = dag_id("ingest", spec.name)
    t0 = time.monotonic()
    runs = {day: api.trigger(ingest, {"dt": day.isoformat()}) for day in days}
    since = min((r["run_after"] for r in runs.values()), default=None)

    def collect(busy: list[str]) -> None:
        for day, run in runs.items():
            if day in results:
                continue
            now = api.run(ingest, run["dag_run_id"])
            if now["state"] in FINISHED:
                results[day] = _ingest_outcome(api, store, spec, day, now)
                reporter.done(results[day])
        reporter.step(", ".join(busy) or "idle")

    try:
        time.sleep(poll_s)
        api.wait_idle(spec.name, t0 + timeout_s, poll_s=poll_s, on_poll=collect)
        collect([])
    except TimeoutError as exc:
        for day in days:
            if day not in results:
                results[day] = DayResult(day, "failed", f"not finished after {timeout_s:.0f} s: {exc}")
                reporter.done(results[day])
        return
    if since is not None and (failures := _downstream_failures(api, spec.name, since)):
        last = max(days)
        results[last] = DayResult(last, "failed", f"{results[last].message}; {'; '.join(failures)}")
