"""Inclusion analysis (ML Test Score, Model 7): is the model's quality sufficient for every group
of rows, not only the spec's ``slices``?

Trains on generated clean days of a spec (the pure core, as ``tests/integration/test_drift_scenarios.py``),
then reports the holdout AUC of every group: each value of each categorical feature and each
quartile band of each numeric feature, with its rows, positives and gap to the overall AUC.
Groups with fewer than ``gate.slice_min_rows`` rows or ``gate.slice_min_positives`` positives are
listed apart (too small to judge). It reports; it never fails. About 30 s.

    python bench/inclusion.py [--rows 4000] [--days 10] [--worst 12] [--features customer_age country]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from harness import REPO

START = date(2026, 6, 1)
SEED = 31


def groups(spec: Any, table: pa.Table) -> dict[str, np.ndarray]:
    """``{"feature=value" or "feature in [lo, hi)": row mask}`` for every feature."""
    out: dict[str, np.ndarray] = {}
    for f in spec.features.categorical:
        col = np.asarray(
            table.column(f.name).cast(pa.string()).fill_null("<missing>").to_pylist(), dtype=object
        )
        for v in sorted(set(col.tolist())):
            out[f"{f.name}={v}"] = col == v
    for f in spec.features.numeric:
        x = table.column(f.name).cast(pa.float64()).to_numpy(zero_copy_only=False)
        edges = np.unique(np.nanquantile(x, [0.0, 0.25, 0.5, 0.75, 1.0]))
        for lo, hi in itertools.pairwise(edges):
            last = hi == edges[-1]
            out[f"{f.name} in [{lo:.4g}, {hi:.4g}{']' if last else ')'}"] = (x >= lo) & (
                (x <= hi) if last else (x < hi)
            )
        if np.isnan(x).any():
            out[f"{f.name} missing"] = np.isnan(x)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default=str(REPO / "datasets" / "payments.yaml"))
    p.add_argument("--rows", type=int, default=4000, help="rows a day")
    p.add_argument("--days", type=int, default=10, help="training window (days)")
    p.add_argument("--worst", type=int, default=12, help="groups to list, lowest AUC first")
    p.add_argument("--features", nargs="*", default=[], help="also list every group of these features")
    ns = p.parse_args(argv)

    from nightshift.demo.datagen import Scenario, generate_day
    from nightshift.evaluate import metrics
    from nightshift.features import labels
    from nightshift.model import predict
    from nightshift.spec import load_spec
    from nightshift.train import Window, choose_device, split_days, train

    spec = load_spec(ns.spec)
    days = [START + timedelta(days=i) for i in range(ns.days)]
    parts = []
    for i, d in enumerate(days):
        pairs = list(generate_day(spec, d, i, ns.rows, SEED, Scenario()))
        events = pa.Table.from_batches([e for e, _ in pairs])
        lab = pa.Table.from_batches([lb for _, lb in pairs]).select([spec.id_column, spec.label.column])
        t = events.join(lab, keys=spec.id_column).sort_by(spec.event_time_column)
        parts.append(t.append_column("__dt", pa.array([d] * t.num_rows, pa.date32())))
    t = spec.training
    window = Window(pa.concat_tables(parts), [], split_days(days, t.validation_days, t.holdout_days))
    result = train(spec, window, choose_device())
    hold = window.split("holdout")
    y, score = labels(hold, spec), predict(result.booster, result.transform, hold)
    overall = metrics(y, score)
    g = spec.gate
    judged: list[tuple[str, int, int, float]] = []
    small: list[tuple[str, int, int, float]] = []
    for name, mask in groups(spec, hold).items():
        m = metrics(y[mask], score[mask])
        row = (name, int(m["rows"]), int(m["positives"]), m["roc_auc"])
        (
            judged if m["rows"] >= g.slice_min_rows and m["positives"] >= g.slice_min_positives else small
        ).append(row)
    judged.sort(key=lambda r: r[3])
    print(f"{spec.name}: holdout {int(overall['rows'])} rows, {int(overall['positives'])} positives, "
          f"AUC {overall['roc_auc']:.3f}; {len(judged)} groups judged, {len(small)} too small")  # fmt: skip
    print(f"{'group':<44} {'rows':>6} {'pos':>5} {'AUC':>6} {'gap':>7}")
    for name, rows, pos, auc in judged[: ns.worst]:
        print(f"{name:<44} {rows:6d} {pos:5d} {auc:6.3f} {auc - overall['roc_auc']:+7.3f}")
    for feature in ns.features:
        for name, rows, pos, auc in judged + small:
            if name.startswith((f"{feature}=", f"{feature} ")):
                print(f"{name:<44} {rows:6d} {pos:5d} {auc:6.3f} {auc - overall['roc_auc']:+7.3f}")
    floor = g.slice_min_metric
    below = [r for r in judged if floor is not None and r[3] < floor]
    print(f"groups below gate.slice_min_metric ({floor}): {', '.join(r[0] for r in below) or 'none'}")
    print(f"too small to judge: {', '.join(f'{r[0]} ({r[1]} rows, {r[2]} pos)' for r in small) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
