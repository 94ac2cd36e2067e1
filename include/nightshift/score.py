"""Batch scoring: a curated partition through a pinned model version into predictions/.

The caller resolves the champion alias once and passes the version; every row written
carries that version, and the file is replaced atomically, so a re-score never mixes models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nightshift.spec import DatasetSpec
from nightshift.storage import Store

log = logging.getLogger(__name__)

SCORE = "score"
MODEL_VERSION = "model_version"


@dataclass(frozen=True)
class ScoreOutcome:
    dt: str
    rows: int
    model_version: str
    uri: str


def predictions_schema(spec: DatasetSpec, id_type: pa.DataType, time_type: pa.DataType) -> pa.Schema:
    return pa.schema(
        [
            (spec.id_column, id_type),
            (spec.event_time_column, time_type),
            (SCORE, pa.float64()),
            (MODEL_VERSION, pa.string()),
        ]
    )


def score_partition(store: Store, spec: DatasetSpec, dt: date, model: Any, version: str) -> ScoreOutcome:
    """Score ``curated/<dataset>/dt=<dt>/`` with ``model`` (a pyfunc of ``version``) in
    batches of ``scoring.batch_rows``; write ``predictions/<dataset>/dt=<dt>/`` atomically."""
    from nightshift.features import model_input

    src = store.published_file(spec.name, "events", dt)
    if not store.exists(src):
        raise FileNotFoundError(f"no curated partition to score: {store.uri(src)}")
    pf = pq.ParquetFile(store.open_input(src))
    schema = predictions_schema(
        spec,
        pf.schema_arrow.field(spec.id_column).type,
        pf.schema_arrow.field(spec.event_time_column).type,
    )
    numeric = [f.name for f in spec.features.numeric]
    categorical = [f.name for f in spec.features.categorical]
    out_path = store.predictions_file(spec.name, dt)
    rows = 0
    with store.open_output_atomic(out_path) as sink, pq.ParquetWriter(sink, schema) as writer:
        for batch in pf.iter_batches(batch_size=spec.scoring.batch_rows):
            table = pa.Table.from_batches([batch])
            frame = model_input(table, numeric, categorical)
            scores = np.asarray(model.predict(frame), dtype=np.float64).reshape(-1)
            writer.write_table(
                pa.table(
                    [
                        table.column(spec.id_column),
                        table.column(spec.event_time_column),
                        pa.array(scores, pa.float64()),
                        pa.array(np.full(len(scores), version, dtype=object), pa.string()),
                    ],
                    schema=schema,
                )
            )
            rows += len(scores)
    return ScoreOutcome(dt.isoformat(), rows, version, store.uri(out_path))


def unscored_days(store: Store, spec: DatasetSpec, catchup_days: int | None = None) -> list[date]:
    """Curated days of the last ``scoring.catchup_days`` (counted back from the newest
    curated day) that have no predictions yet."""
    days = store.list_partitions(store.path("curated", spec.name))
    if not days:
        return []
    n = spec.scoring.catchup_days if catchup_days is None else catchup_days
    first = days[-1] - timedelta(days=max(n - 1, 0))
    return [
        d
        for d in days
        if d >= first
        and store.exists(store.published_file(spec.name, "events", d))
        and not store.exists(store.predictions_file(spec.name, d))
    ]
