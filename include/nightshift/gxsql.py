"""GX's SQL execution engine on DuckDB, over a staged Parquet file (the ingest's validation).

GX runs each metric as one SQL query; DuckDB answers it from the Parquet file, reading only
the columns the query names, on every core, without copying the batch into pandas. This is
the same GX (the same expectations, results, severities and Data Docs) on another engine: at
1M rows a suite takes a fraction of the pandas engine's time and memory.

Imported only when a Parquet batch is validated: it imports DuckDB and its SQLAlchemy dialect.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb_engine
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.dialects import registry

# the SQLAlchemy URL of an in-memory DuckDB with the dialect below
URL = "duckdb+nightshift:///:memory:"


class ReadOnlyDuckDB(duckdb_engine.Dialect):
    """duckdb-engine for read-only queries: no transaction around them.

    GX fetches a query's rows after it has handed the connection back, and SQLAlchemy ends
    the connection's (implicit) transaction then; DuckDB's cursor is its connection, so that
    ROLLBACK discarded the rows and every metric read as empty. GX only reads here, so there
    is no transaction to begin, commit or roll back."""

    supports_statement_cache = False  # as duckdb-engine's own dialect (says so, not warned about)

    def do_begin(self, dbapi_connection: Any) -> None:
        pass

    def do_commit(self, dbapi_connection: Any) -> None:
        pass

    def do_rollback(self, dbapi_connection: Any) -> None:
        pass


registry.register("duckdb.nightshift", __name__, "ReadOnlyDuckDB")

# DuckDB's session settings: never download an extension (a validation must not reach the
# network; without the ICU extension DuckDB's instants are UTC)
CONNECT_ARGS: dict[str, Any] = {"config": {"autoinstall_known_extensions": False}}


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def batch_query(path: Path) -> str:
    """The SQL that GX sees as the batch: every column of the Parquet file, a float NaN read as
    NULL (as the pandas engine counts it: a missing value, not an out-of-range one)."""
    schema = pq.read_schema(path)
    cols = []
    for f in schema:
        name = _ident(f.name)
        if pa.types.is_floating(f.type):
            cols.append(f"CASE WHEN isnan({name}) THEN NULL ELSE {name} END AS {name}")
        else:
            cols.append(name)
    return f"SELECT {', '.join(cols)} FROM read_parquet({_literal(str(path))})"


def sql_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Suite parameters as SQL can take them: an instant as ISO-8601 text with its offset
    (GX renders each bound as a literal, and SQLAlchemy has no literal for a pandas
    Timestamp); DuckDB casts it to the column's type when it compares."""

    def one(v: Any) -> Any:
        if isinstance(v, datetime):  # pandas' Timestamp is a datetime
            return v.isoformat()
        if isinstance(v, date):
            return v.isoformat()
        return v

    return {k: one(v) for k, v in parameters.items()}


def add_source(ctx: Any, path: Path, name: str = "nightshift") -> Any:
    """A SQL datasource on DuckDB with the Parquet file as its one batch; its batch definition."""
    source = ctx.data_sources.add_sql(name, connection_string=URL, kwargs={"connect_args": CONNECT_ARGS})
    return source.add_query_asset("batch", query=batch_query(path)).add_batch_definition_whole_table("all")
