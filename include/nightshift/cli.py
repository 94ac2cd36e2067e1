"""``nightshift`` command line: onboard a dataset, generate demo data, write suites; run the loop's
steps on ranges of days without Airflow (ingest, train, score, monitor), replay a range under
three retraining policies and compare them (backtest), or let landed days pass through the
running scheduler (replay); summarise, audit, roll back.

Exit codes: 0 all went well; 1 a day failed or was quarantined (each named on stderr), or the
step could not run; 2 bad usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from nightshift.spec import BATCH_KINDS, SpecError, find_spec, parse_dt
from nightshift.storage import StorageError, Store

if TYPE_CHECKING:
    from nightshift.backends import Backends


def _store(args: argparse.Namespace) -> Store:
    return Store(args.store) if args.store else Store()


def _backends(args: argparse.Namespace) -> Backends:
    """The command's backends, built once (after :func:`_use_stack`): ``--store``, the registry."""
    from nightshift.backends import Backends

    return Backends.local(_store(args))


def _bad(values: Sequence[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for v in values:
        day, _, kind = v.partition(":")
        if not day.isdigit() or not kind:
            raise SystemExit(f"--bad expects DAY_INDEX:KIND (e.g. 5:null_spike), got {v!r}")
        out[int(day)] = kind
    return out


def cmd_generate(args: argparse.Namespace) -> int:
    from nightshift.demo.datagen import Scenario, generate

    spec = find_spec(args.dataset)
    scenario = Scenario(
        covariate_drift_from=args.covariate_drift_from,
        concept_drift_from=args.concept_drift_from,
        bad_batches=_bad(args.bad),
    )
    store = _store(args)
    start = parse_dt(args.start)
    generate(store, spec, start, args.days, args.rows, args.seed, scenario)
    end = start + timedelta(days=args.days - 1)
    bad = ", ".join(f"{start + timedelta(days=i)}={k}" for i, k in sorted(scenario.bad_batches.items()))
    print(f"generated {args.days} day(s) {start}..{end} x {args.rows} rows of {spec.name} into {store.url}")
    if bad:
        print(f"bad batches: {bad}")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from nightshift.validate import write_suite

    spec = find_spec(args.dataset)
    for kind in BATCH_KINDS:
        print(write_suite(spec, kind, overwrite=args.overwrite))
    return 0


def _date(value: str) -> date:
    try:
        return parse_dt(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _days(args: argparse.Namespace) -> list[date] | None:
    """The days of ``--from``/``--to`` (or ``--dt``); ``None`` after printing a usage error."""
    from nightshift.runner import day_range

    start, end = (args.dt, args.dt) if getattr(args, "dt", None) else (args.start, args.end)
    problem = None
    if getattr(args, "dt", None) and (args.start or args.end):
        problem = "give --dt DAY or --from DAY --to DAY, not both"
    elif start is None or end is None:
        problem = "--from DAY and --to DAY are required" + (" (or --dt DAY)" if hasattr(args, "dt") else "")
    else:
        try:
            return day_range(start, end)
        except ValueError as exc:
            problem = str(exc)
    print(f"nightshift {args.command}: {problem}", file=sys.stderr)
    return None


def _finish(results: Sequence[Any], what: str) -> int:
    """Print the range's summary; name each failed or quarantined day on stderr; the exit code."""
    from nightshift.runner import summary

    print(summary(results, what))
    bad = [r for r in results if not r.ok]
    for r in bad:
        print(f"nightshift: {r.day} {r.status}: {r.message}", file=sys.stderr)
    return 1 if bad else 0


def _use_stack() -> None:
    """The running stack's MLflow server when ``make up`` started one (and
    ``$MLFLOW_TRACKING_URI`` is unset); else the embedded SQLite default stays."""
    from nightshift.stack import use_stack_mlflow

    use_stack_mlflow()


def _quiet_libraries() -> None:
    """Keep MLflow's chatter (database set-up, pickling and type-hint advice) out of the
    command's output; set before anything imports mlflow."""
    import os
    import warnings

    from nightshift.settings import library_defaults

    library_defaults(MLFLOW_LOGGING_LEVEL="ERROR")
    # MLflow shows some of its advice under its own `simplefilter("once")`, past any filter
    # set here: those are dropped where they would be shown
    show = warnings.showwarning

    def show_unless_mlflow(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if not (issubclass(category, UserWarning) and f"{os.sep}mlflow{os.sep}" in filename):
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = show_unless_mlflow


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingest each day of the range (events, labels or both): the DAG's core, without Airflow."""
    from nightshift.runner import ingest_day, kinds_of, reporter_for, run_days

    spec = find_spec(args.dataset)
    days = _days(args)
    if days is None:
        return 2
    store, kinds = _store(args), kinds_of(args.kind)
    results = run_days(
        days, lambda d: ingest_day(store, spec, d, kinds), reporter_for(sys.stdout), f"ingest {spec.name}"
    )
    return _finish(results, "ingested")


# long: train -> gate -> serving check -> promote, a progress line each, in the DAG's order
def cmd_train(args: argparse.Namespace) -> int:
    """Train on the window, gate against the champion and the baseline, check the candidate
    served by a fresh ``nightshift serve`` (the gate's serving check), promote or reject
    (audited; the actor is the OS user). A borderline verdict (``gate.review``) waits for a
    human: ``--review approve|reject`` is that human's answer."""
    import getpass
    import socket
    from datetime import UTC, datetime

    from nightshift import registry
    from nightshift.features import FeatureError
    from nightshift.servecheck import ServingCheckError
    from nightshift.steps.gate import decide_step, gate_step, serving_check_step
    from nightshift.steps.train import TrainRequest, train_step
    from nightshift.train import DeviceError, InsufficientData

    _use_stack()
    spec, b = find_spec(args.dataset), _backends(args)
    user = getpass.getuser()
    now = datetime.now(UTC)
    key = f"cli/{user}@{socket.gethostname()}/train.{spec.name}/{now:%Y%m%dT%H%M%S.%fZ}"
    request = TrainRequest(as_of=args.as_of, window_days=args.window_days)
    try:
        trained = train_step(b, spec, key, request, {"run_type": "cli", "triggered_by": user})
        where = f" on {trained.window}, device {trained.device}" if trained.window else ""
        print(f"trained:  MLflow run {trained.run_id}{where}")
        verdict = gate_step(b, spec, trained.run_id, key)
        auc = verdict.challenger_metrics.get("roc_auc")
        says = "promote" if verdict.promote else "reject"
        print(
            (f"holdout:  AUC {auc:.4f} (the trained model, scored by the gate)\n" if auc is not None else "")
            + f"gate:     v{verdict.version}: {says}: {verdict.reason}"
        )
        verdict = serving_check_step(b, spec, verdict)
        print(f"serving:  {(verdict.serving or {}).get('detail')}")
        review = None
        if verdict.review:
            if not args.review:
                print(
                    f"nightshift train: v{verdict.version} is borderline ({verdict.review}): a human "
                    f"decides; run again with --review approve or --review reject, or promote it from the "
                    f"Airflow UI (nightshift_promote.{spec.name}, version={verdict.version})",
                    file=sys.stderr,
                )
                return 1
            review = {
                "needed": True,
                "decision": args.review,
                "by": user,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "comment": f"nightshift train --review {args.review}",
            }
        event = decide_step(
            b,
            spec,
            verdict,
            actor=user,
            trigger=f"cli: nightshift train --dataset {spec.name} (run {trained.run_id})",
            review=review,
            triggered_by=user,
            run_key=key,
        )
    except (InsufficientData, DeviceError, FeatureError, registry.RegistryError, ServingCheckError) as exc:
        print(f"nightshift train: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    name = registry.model_name(spec.name)
    before = f"v{event.previous_version}" if event.previous_version else "none"
    if event.action == "promote":
        print(f"promoted: {name} v{event.version} is the champion (previous: {before}); audited as {user}")
    else:
        print(f"rejected: {name} v{event.version} not promoted (champion stays {before}): {event.reason}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score each curated day of the range with the champion (the DAG's step)."""
    from nightshift import registry
    from nightshift.runner import reporter_for, run_days, score_day

    _use_stack()
    spec = find_spec(args.dataset)
    days = _days(args)
    if days is None:
        return 2
    b = _backends(args)
    store = b.store
    try:
        pinned = registry.alias_version(b.client, spec.name, registry.CHAMPION)
    except registry.RegistryError as exc:
        print(f"nightshift score: {exc}", file=sys.stderr)
        return 1
    if pinned is None:
        print(f"nightshift score: {spec.name}: no champion yet; train one: nightshift train --dataset "
              f"{spec.name}", file=sys.stderr)  # fmt: skip
        return 1
    results = run_days(
        days, lambda d: score_day(store, spec, d, pinned), reporter_for(sys.stdout), f"score {spec.name}"
    )
    return _finish(results, "scored")


def cmd_monitor(args: argparse.Namespace) -> int:
    """Drift and performance reports of the scored days not reported yet (as of a day), then the
    alert policy (an alert is shown; under the scheduler it would start nightshift_retrain)."""
    from nightshift import registry
    from nightshift.monitor import MonitoringError
    from nightshift.steps.monitor import alert_step, monitor_step

    _use_stack()
    spec, b = find_spec(args.dataset), _backends(args)
    try:
        result = monitor_step(b, spec, as_of=args.as_of)
        alert = alert_step(b, spec)
    except (MonitoringError, FileNotFoundError, registry.RegistryError) as exc:
        print(f"nightshift monitor: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for d in result.drift:
        flag = " DRIFTING" if d.drifting else ""
        share = "-" if d.drift_share is None else f"{d.drift_share:.2f}"
        print(f"{d.dt}  drift        v{d.version}: share {share}{flag}  {d.report}")
    for p in result.performance:
        auc = "-" if p.roc_auc is None else f"{p.roc_auc:.4f}"
        print(f"{p.dt}  performance  v{p.version}: AUC {auc}  {p.report}")
    if not result.drift and not result.performance:
        print(f"{spec.name}: nothing new to monitor" + (f" as of {args.as_of}" if args.as_of else ""))
    print(f"history:  {result.history or '-'} ({result.history_rows} row(s))")
    if alert:
        print(f"alert:    {alert.kind} on v{alert.version} since {alert.onset}: {alert.reason}")
        print(f"          (the scheduler would start nightshift_retrain.{spec.name}; here: "
              f"nightshift train --dataset {spec.name})")  # fmt: skip
    else:
        print("alert:    none")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Let landed days pass through the running scheduler (``make up``) via its REST API."""
    from nightshift import stack
    from nightshift.restclient import AirflowAPI, ApiError, ApiUnavailable
    from nightshift.runner import replay, reporter_for

    spec = find_spec(args.dataset)
    days = _days(args)
    if days is None:
        return 2
    info = stack.StackInfo.read()
    base = stack.api_base(args.api, None if args.api else info)
    user = args.user or (info.user if info else stack.DEFAULT_USER)
    store = _store(args) if args.store or not (info and info.store) else Store(info.store)
    unpause = ("score", "train", "monitor", "retrain") if "all" in args.unpause else tuple(args.unpause)
    try:
        AirflowAPI(base, user, "").check()  # nothing running: say so before asking for a password
        api = AirflowAPI(base, user, stack.password(user, stack.passwords_file(info)))
        results = replay(
            api, store, spec, days, reporter_for(sys.stdout), together=args.together,
            timeout_s=args.timeout, unpause=unpause,
        )  # fmt: skip
    except (ApiUnavailable, ApiError, stack.CredentialsError) as exc:
        print(f"nightshift replay: {exc}", file=sys.stderr)
        return 1
    return _finish(results, "replayed")


def cmd_backtest(args: argparse.Namespace) -> int:
    """Replay the landed days of a range in one process under three policies (never retrain
    after the first model, retrain every day, the spec's policy) with the DAGs' steps, each
    on a store and an MLflow registry of its own under ``--out``; print the day-by-day table
    and the comparison, write ``backtest.json`` and ``backtest.png``. Exit 0: compared; 1: no
    policy ever had a model (said per policy), nothing landed, a day failed or was quarantined
    (each named; the other days still ran), or a step failed; 2: bad usage."""
    import logging
    from pathlib import Path

    from nightshift import backtest, registry
    from nightshift.monitor import MonitoringError
    from nightshift.runner import reporter_for
    from nightshift.storage import default_state_dir

    spec = find_spec(args.dataset)
    days = _days(args)
    if days is None:
        return 2
    default = default_state_dir() / "backtest" / f"{spec.name}-{days[0]}-{days[-1]}"
    out = Path(args.out) if args.out else default
    # every training warns the same (device fallback, cheap features): each day's line and
    # backtest.json say what happened, the repeated warnings would bury them
    logger = logging.getLogger("nightshift")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        result = backtest.run(_store(args), spec, days, out, reporter_for(sys.stderr))
    except backtest.OutError as exc:
        print(f"nightshift backtest: {exc}", file=sys.stderr)
        return 2
    except (backtest.BacktestError, registry.RegistryError, MonitoringError) as exc:
        print(f"nightshift backtest: {exc}", file=sys.stderr)
        return 1
    finally:
        logger.setLevel(level)
    print(backtest.format_table(result))
    print()
    print("\n".join(backtest.summary_lines(result)))
    print(f"wrote:    {out / backtest.RESULT}, {out / backtest.PLOT}")
    for day in result["quarantined_days"] + result["failed_days"]:
        r = next(x for x in result["days"] if x["day"] == day)
        print(
            f"nightshift backtest: {day} {r['ingest']['status']}: {r['ingest']['message']}", file=sys.stderr
        )
    if result["summary"]["no_model"]:
        why = next(iter(result["summary"]["no_model"].values()))
        print(
            f"nightshift backtest: no policy ever served a model, nothing to compare ({why})", file=sys.stderr
        )
        return 1
    return 1 if result["quarantined_days"] or result["failed_days"] else 0


def cmd_summary(args: argparse.Namespace) -> int:
    from nightshift.report import day_rows, format_table, loop_story, plot

    spec = find_spec(args.dataset)
    rows = day_rows(_store(args), spec.name, parse_dt(args.start), args.days)
    print(format_table(rows))
    drift_from = parse_dt(args.drift_from) if args.drift_from else None
    if any(r["scored_by"] for r in rows):
        print()
        print("\n".join(loop_story(rows, drift_from)))
    if args.plot:
        print(f"plot: {plot(rows, args.plot, spec.alerts.drift_share, drift_from)}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    import json

    from nightshift.registry import read_audit

    events = read_audit(_store(args), find_spec(args.dataset).name)
    if args.json:
        print(json.dumps([e.to_dict() for e in events], indent=2))
        return 0
    if not events:
        print(f"no registry decisions recorded for {args.dataset} yet")
        return 0
    print(f"{'time (UTC)':<25}{'action':<10}{'version':<9}{'before':<8}{'actor':<16}reason / trigger")
    for e in events:
        before = f"v{e.previous_version}" if e.previous_version else "-"
        print(f"{e.time[:23]:<25}{e.action:<10}{'v' + e.version:<9}{before:<8}{e.who[:15]:<16}{e.reason}")
        deltas = ", ".join(f"{k} {v:+.4f}" for k, v in sorted(e.deltas.items()))
        print(f"{'':<68}{e.trigger}{'; ' + deltas if deltas else ''}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    import getpass

    from nightshift import registry

    _use_stack()
    spec, b = find_spec(args.dataset), _backends(args)
    try:
        event = registry.rollback(
            b.client,
            b.store,
            spec.name,
            actor=getpass.getuser(),
            on_behalf_of=args.actor,
            triggered_by=getpass.getuser(),
            trigger="cli: nightshift rollback",
            reason=args.reason,
        )
    except registry.RegistryError as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 1
    name = registry.model_name(spec.name)
    print(f"{name}: champion is v{event.version} again (v{event.previous_version} rolled back)")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Infer ``datasets/NAME.yaml`` and its GX suites from a sample file. Exit 0: written;
    1: a file that cannot be used, or files that exist without ``--force`` (nothing written,
    each named); 2: bad usage (a missing option, a bad name or time zone)."""
    from pathlib import Path

    from nightshift import infer
    from nightshift.spec import NAME_RE, default_datasets_dir, zone_of
    from nightshift.validate import default_gx_dir

    usage = None
    if not NAME_RE.match(args.dataset):
        usage = f"--dataset {args.dataset!r}: lower-case letters, digits and '_', starting with a letter"
    elif not args.label:
        usage = "--label COL is required: the binary outcome, in --labels FILE or else in --events FILE"
    elif len({args.id, args.time, args.label}) < 3:
        usage = "--id, --time and --label must name three different columns"
    else:
        try:
            zone_of(args.timezone)
        except ValueError as exc:
            usage = f"--timezone: {exc}"
    if usage:
        print(f"nightshift init: {usage}", file=sys.stderr)
        return 2
    try:
        events = infer.read_sample(args.events, "events")
        labels = infer.read_sample(args.labels, "labels") if args.labels else None
        inferred = infer.infer_spec(
            args.dataset, events, args.id, args.time, args.label, labels, args.timezone
        )
        datasets_dir = Path(args.datasets_dir) if args.datasets_dir else default_datasets_dir()
        gx_dir = Path(args.gx_dir) if args.gx_dir else default_gx_dir()
        written = infer.write_spec(inferred, datasets_dir, gx_dir, force=args.force)
    except (infer.InferError, FileExistsError, SpecError) as exc:
        print(f"nightshift init: {exc}", file=sys.stderr)
        return 1
    kinds = {r: sum(f.role == r for f in inferred.features) for r in ("numeric", "categorical", "excluded")}
    features = f"{kinds['numeric']} numeric and {kinds['categorical']} categorical feature(s)"
    print(f"wrote {written[0]}: {features}, {kinds['excluded']} column(s) left out; "
          f"{inferred.checks} line(s) marked 'check:' to review")  # fmt: skip
    for path in written[1:]:
        print(f"wrote {path}")
    return 0


def champion_summary(dataset: str) -> dict[str, Any] | None:
    """The champion's version, holdout metrics, device and window, from the registry."""
    from nightshift import registry

    client = registry.configure()
    version = registry.alias_version(client, dataset, registry.CHAMPION)
    if version is None:
        return None
    mv = client.get_model_version(registry.model_name(dataset), version)
    run = client.get_run(mv.run_id)
    m, t = run.data.metrics, run.data.tags
    return {
        "model": registry.model_name(dataset),
        "version": version,
        "previous": registry.alias_version(client, dataset, registry.PREVIOUS),
        "run_id": mv.run_id,
        "experiment_id": run.info.experiment_id,
        "holdout": {k: m.get(f"holdout_{k}") for k in ("roc_auc", "average_precision", "log_loss", "rows")},
        "device": t.get("nightshift.device"),
        "device_reason": t.get("nightshift.device_reason"),
        "window": t.get("nightshift.window"),
        "verdict": t.get("nightshift.verdict_reason"),
        "tracking_uri": registry.tracking_uri(),
    }


def cmd_champion(args: argparse.Namespace) -> int:
    import json

    _use_stack()
    info = champion_summary(find_spec(args.dataset).name)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    if info is None:
        print(f"{args.dataset}: no champion yet")
        return 0
    h = info["holdout"]
    previous = f"v{info['previous']}" if info["previous"] else "none"
    print(f"champion:     {info['model']} v{info['version']} (previous: {previous})")
    print(f"holdout:      AUC {h['roc_auc']:.4f}, average precision {h['average_precision']:.4f}, "
          f"log loss {h['log_loss']:.4f} on {h['rows']:.0f} rows")  # fmt: skip
    print(f"trained on:   {info['window']}, device {info['device']} ({info['device_reason']})")
    print(f"gate:         {info['verdict']}")
    print(f"MLflow run:   {info['run_id']} (experiment {info['experiment_id']})")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The champion behind HTTP until SIGTERM/SIGINT (``nightshift.serve``)."""
    from nightshift.serve import serve

    spec = find_spec(args.dataset)
    store = None
    if spec.serving.log_requests and not args.no_request_log:  # its store; S3 endpoint as boto3 reads it
        from nightshift.settings import settings
        from nightshift.storage import StorageOptions

        endpoint = settings().s3_endpoint
        url = args.store or None
        store = Store(url, StorageOptions(endpoint_url=endpoint) if endpoint else None)
    version = None
    if args.version is not None:
        version = args.version.strip().lstrip("v")
        if not version.isdigit() or int(version) < 1:
            print(
                f"nightshift serve: --version must be a positive integer, not {args.version!r}",
                file=sys.stderr,
            )
            return 2
    return serve(
        spec,
        args.host,
        args.port,
        store,
        version=version,
        socket_fd=args.socket_fd,
        stop_with_stdin=args.stop_with_stdin,
    )


# long: one argparse tree for every subcommand: the CLI's reference, read top to bottom
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nightshift", description=__doc__)
    p.add_argument("--store", help="store URL (default $NIGHTSHIFT_STORE_URL or file://.nightshift/store)")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write synthetic landing files for the demo dataset")
    g.add_argument("--dataset", default="payments")
    g.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    g.add_argument("--days", type=int, default=14)
    g.add_argument("--rows", type=int, default=1000, help="rows per day (1k to 10M)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--covariate-drift-from", type=int, default=None, metavar="DAY_INDEX")
    g.add_argument("--concept-drift-from", type=int, default=None, metavar="DAY_INDEX")
    g.add_argument("--bad", action="append", default=[], metavar="DAY_INDEX:KIND", help="a bad batch")
    g.set_defaults(func=cmd_generate)

    s = sub.add_parser("suite", help="write the GX suites generated from a spec into great_expectations/")
    s.add_argument("--dataset", default="payments")
    s.add_argument("--overwrite", action="store_true", help="replace edited suite files")
    s.set_defaults(func=cmd_suite)

    def days_of(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument(
            "--from", dest="start", type=_date, metavar="DAY", help="first local day, YYYY-MM-DD"
        )
        cmd.add_argument("--to", dest="end", type=_date, metavar="DAY", help="last local day (included)")

    i = sub.add_parser("ingest", help="ingest and validate days without Airflow (same core as the DAG)")
    i.add_argument("--dataset", default="payments")
    days_of(i)
    i.add_argument("--dt", type=_date, metavar="DAY", help="one day (the same as --from DAY --to DAY)")
    i.add_argument("--kind", choices=[*BATCH_KINDS, "both"], default="both", help="default: both")
    i.set_defaults(func=cmd_ingest)

    t = sub.add_parser("train", help="train -> gate -> promote or reject, audited (actor: the OS user)")
    t.add_argument("--dataset", default="payments")
    t.add_argument("--as-of", type=_date, metavar="DAY", help="train on the window ending by DAY")
    t.add_argument(
        "--window-days", type=int, metavar="N", help="labelled days in the window (spec's default)"
    )
    t.add_argument("--review", choices=("approve", "reject"), help="your answer to a borderline verdict")
    t.set_defaults(func=cmd_train)

    sc = sub.add_parser("score", help="score curated days with the champion (same step as the DAG)")
    sc.add_argument("--dataset", default="payments")
    days_of(sc)
    sc.set_defaults(func=cmd_score)

    mo = sub.add_parser("monitor", help="drift and performance reports, then the alert policy")
    mo.add_argument("--dataset", default="payments")
    mo.add_argument("--as-of", type=_date, metavar="DAY", help="only what was known on DAY")
    mo.set_defaults(func=cmd_monitor)

    rp = sub.add_parser("replay", help="let landed days pass through the running scheduler (make up)")
    rp.add_argument("--dataset", default="payments")
    days_of(rp)
    rp.add_argument("--together", action="store_true", help="trigger every day at once, wait once")
    rp.add_argument(
        "--unpause",
        nargs="*",
        default=[],
        choices=("score", "train", "monitor", "retrain", "all"),
        help="DAG families to unpause besides ingest (all: the whole loop)",
    )
    rp.add_argument("--timeout", type=float, default=1200, metavar="S", help="per day (default 1200)")
    rp.add_argument("--api", metavar="URL", help="Airflow API (default: the running stack's, or :8080)")
    rp.add_argument("--user", help="Airflow user (default: the running stack's, admin)")
    rp.set_defaults(func=cmd_replay)

    bt = sub.add_parser(
        "backtest", help="replay landed days under never / daily / the spec's retraining policy, compared"
    )
    bt.add_argument("--dataset", default="payments")
    days_of(bt)
    bt.add_argument(
        "--out", metavar="DIR", help="its own store, registry and results (default .nightshift/backtest/...)"
    )
    bt.set_defaults(func=cmd_backtest)

    m = sub.add_parser("summary", help="per-day table: batches, scoring version, drift, AUC, retrains")
    m.add_argument("--dataset", default="payments")
    m.add_argument("--start", required=True)
    m.add_argument("--days", type=int, default=14)
    m.add_argument("--plot", metavar="PNG", help="also draw AUC and drift over time into this file")
    m.add_argument("--drift-from", metavar="YYYY-MM-DD", help="when the (simulated) drift began")
    m.set_defaults(func=cmd_summary)

    a = sub.add_parser("audit", help="the registry's decisions: promotions, rejections, rollbacks")
    a.add_argument("--dataset", default="payments")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_audit)

    r = sub.add_parser("rollback", help="put the champion alias back on the previous version (audited)")
    r.add_argument("--dataset", default="payments")
    r.add_argument("--reason", required=True)
    r.add_argument("--actor", default=None, help="on whose behalf (the OS user is always recorded)")
    r.set_defaults(func=cmd_rollback)

    n = sub.add_parser("init", help="infer datasets/NAME.yaml and its GX suites from a sample file")
    n.add_argument("--dataset", required=True, metavar="NAME", help="the dataset's name (and file name)")
    n.add_argument("--events", required=True, metavar="FILE", help="a sample of the events (CSV or Parquet)")
    n.add_argument("--id", required=True, metavar="COL", help="the id column (unique per event)")
    n.add_argument("--time", required=True, metavar="COL", help="the event-time column")
    n.add_argument("--labels", metavar="FILE", help="a sample of the labels feed (default: the events file)")
    n.add_argument("--label", metavar="COL", help="the label column (two values)")
    n.add_argument(
        "--timezone", default="UTC", metavar="ZONE", help="IANA zone of the local days (default UTC)"
    )
    n.add_argument("--force", action="store_true", help="replace an existing spec and its suites")
    n.add_argument("--datasets-dir", metavar="DIR", help="default $NIGHTSHIFT_DATASETS_DIR or datasets/")
    n.add_argument(
        "--gx-dir", metavar="DIR", help="suites go to DIR/expectations/ (default $NIGHTSHIFT_GX_DIR)"
    )
    n.set_defaults(func=cmd_init)

    c = sub.add_parser("champion", help="the champion model: version, holdout metrics, device")
    c.add_argument("--dataset", default="payments")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_champion)

    sv = sub.add_parser("serve", help="score online: the champion behind HTTP, following promotions")
    sv.add_argument("--dataset", default="payments")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)")
    sv.add_argument("--port", type=int, default=8090)
    sv.add_argument("--version", help="serve this registered version, never following the champion alias")
    sv.add_argument(
        "--socket-fd", type=int, help="listen on this inherited, bound socket (instead of --host/--port)"
    )
    sv.add_argument(
        "--no-request-log", action="store_true", help="do not log requests (serving.log_requests)"
    )
    sv.add_argument(
        "--stop-with-stdin", action="store_true", help="stop when stdin closes (its parent's end)"
    )
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # bad usage (argparse printed why: 2) or --help (0)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    _quiet_libraries()
    try:
        return int(args.func(args))
    except (SpecError, StorageError, ValueError) as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
