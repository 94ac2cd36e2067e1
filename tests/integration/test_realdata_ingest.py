"""The real dataset through the ingest: MplsStops' stops (UTC ``Z`` times, days in
America/Chicago) are valid day after day, evenings included, and its labels feed (the id and
"YES"/"NO", no event time) is published with every id matched: the two failures that made
every day and every labels file of this dataset quarantined before local days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

import realdata
from nightshift.ingest import ingest_partition
from nightshift.spec import load_spec
from nightshift.storage import Store

SPEC = Path(__file__).resolve().parents[2] / "tests" / "specs" / f"{realdata.DATASET}.yaml"
DAYS = 5  # the labels of the first two days land on days 4 and 5


def test_real_local_days_and_their_label_feed_ingest_clean(tmp_path: Path) -> None:
    spec = load_spec(SPEC)
    store = Store((tmp_path / "store").as_uri())
    days = realdata.land(store, realdata.FIRST_DAY, DAYS)
    kw: dict[str, Any] = {"gx_dir": tmp_path / "gx", "work_dir": tmp_path / "work"}
    evening = 0
    for d in days:
        outcome = ingest_partition(store, spec, "events", d, **kw)
        assert outcome.success, outcome.reason()
        times = pq.read_table(store.published_file(spec.name, "events", d)).column(realdata.TIME)
        # after midnight UTC, still the local day: the rows that used to be "out of the partition"
        next_utc_midnight = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
        evening += sum(t >= next_utc_midnight for t in times.to_pylist())
    assert evening > 0
    for d in days[: DAYS - spec.label.delay_days]:
        arrival = d + timedelta(days=spec.label.delay_days)
        outcome = ingest_partition(store, spec, "labels", arrival, **kw)
        assert outcome.success, outcome.reason()
        assert outcome.label_report is not None and outcome.label_report["unmatched"] == 0
        table = pq.read_table(store.published_file(spec.name, "labels", arrival))
        assert table.column_names == [realdata.ID, realdata.LABEL]
        assert set(table.column(realdata.LABEL).to_pylist()) <= {"YES", "NO"}
