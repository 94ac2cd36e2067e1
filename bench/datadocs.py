"""What GX Data Docs for every valid batch cost the ingest (issue 6), in one run.

For each size, one clean day of the demo dataset is ingested twice into a scratch store with
``nightshift.ingest.ingest_partition``: as the baseline with ``validation.data_docs_max_rows: 0``
(verdicts only: GX with ``BOOLEAN_ONLY``, the path a valid batch took before Data Docs), and with
Data Docs (one GX context for the whole suite, ``SUMMARY`` results, the site published next to
the day's validation report). Times are the best of ``--repeat`` runs in this process, after a
warm-up ingest so that imports are not counted. It prints the ratio; it never fails on a number.

    python bench/datadocs.py                       # 4k, 50k and 200k rows
    python bench/datadocs.py --rows 4000 --repeat 3
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from harness import REPO

DAY = date(2026, 1, 1)
GOAL = 1.5  # Data Docs may cost at most half again the verdicts-only ingest of a valid day


def _ingest(spec: Any, rows: int, root: Path, docs: bool) -> float:
    from nightshift.demo.datagen import Scenario, write_day
    from nightshift.ingest import ingest_partition
    from nightshift.storage import Store

    shutil.rmtree(root, ignore_errors=True)
    store = Store(root.as_uri())
    max_rows = spec.validation.data_docs_max_rows if docs else 0
    case = spec.model_copy(
        update={"validation": spec.validation.model_copy(update={"data_docs_max_rows": max_rows})}
    )
    write_day(store, case, DAY, 0, rows, 7, Scenario())
    t0 = time.perf_counter()
    outcome = ingest_partition(store, case, "events", DAY, work_dir=root / "work")
    seconds = time.perf_counter() - t0
    assert outcome.success and (outcome.data_docs_uri is not None) == (docs and rows <= max_rows)
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[4_000, 50_000, 200_000])
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    from nightshift.spec import load_spec

    spec = load_spec(REPO / "datasets" / "payments.yaml")
    with tempfile.TemporaryDirectory(prefix="bench-datadocs-") as tmp:
        root = Path(tmp) / "store"
        _ingest(spec, 1_000, root, docs=True)  # warm-up: imports, GX's first context
        print(f"{'rows':>8}  {'verdicts only':>14}  {'with Data Docs':>15}  {'ratio':>6}  goal <= {GOAL}")
        for rows in a.rows:
            base = min(_ingest(spec, rows, root, docs=False) for _ in range(a.repeat))
            docs = min(_ingest(spec, rows, root, docs=True) for _ in range(a.repeat))
            ratio = docs / base
            print(
                f"{rows:>8,}  {base:>13.2f}s  {docs:>14.2f}s  {ratio:>5.2f}x  "
                f"{'PASS' if ratio <= GOAL else 'MISS'}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
