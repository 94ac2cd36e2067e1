"""``nightshift`` command line: generate demo data, write suites, ingest a day, summarise."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from nightshift.spec import BATCH_KINDS, SpecError, find_spec, parse_dt
from nightshift.storage import StorageError, Store


def _store(args: argparse.Namespace) -> Store:
    return Store(args.store) if args.store else Store()


def _bad(values: Sequence[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for v in values:
        day, _, kind = v.partition(":")
        if not day.isdigit() or not kind:
            raise SystemExit(f"--bad expects DAY_INDEX:KIND (e.g. 5:null_spike), got {v!r}")
        out[int(day)] = kind
    return out


def cmd_generate(args: argparse.Namespace) -> int:
    from nightshift.datagen import Scenario, generate

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


def cmd_ingest(args: argparse.Namespace) -> int:
    from nightshift.ingest import NoLandingData, ingest_partition
    from nightshift.validate import BatchRejected

    spec = find_spec(args.dataset)
    try:
        outcome = ingest_partition(_store(args), spec, args.kind, parse_dt(args.dt))
    except (BatchRejected, NoLandingData) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{spec.name} {args.kind} dt={outcome.dt}: {outcome.rows} rows valid -> {outcome.published_uri}")
    return 0


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

    spec = find_spec(args.dataset)
    client = registry.configure()
    try:
        event = registry.rollback(
            client,
            _store(args),
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
    if spec.serving.log_requests:  # the request log's store; S3 endpoint as boto3 reads it
        import os

        from nightshift.storage import StorageOptions

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        url = args.store or None
        store = Store(url, StorageOptions(endpoint_url=endpoint) if endpoint else None)
    return serve(spec, args.host, args.port, store)


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

    i = sub.add_parser("ingest", help="ingest one day without Airflow (same core as the DAG)")
    i.add_argument("--dataset", default="payments")
    i.add_argument("--kind", choices=BATCH_KINDS, default="events")
    i.add_argument("--dt", required=True)
    i.set_defaults(func=cmd_ingest)

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

    c = sub.add_parser("champion", help="the champion model: version, holdout metrics, device")
    c.add_argument("--dataset", default="payments")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_champion)

    sv = sub.add_parser("serve", help="score online: the champion behind HTTP, following promotions")
    sv.add_argument("--dataset", default="payments")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this host only)")
    sv.add_argument("--port", type=int, default=8090)
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SpecError, StorageError, ValueError) as exc:
        print(f"nightshift: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
