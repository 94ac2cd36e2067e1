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

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        """A DuckDB connection with the batch as the view ``batch`` (``connect_args`` key
        ``nightshift_batch``: its query): GX reads the view's columns from DuckDB's catalog,
        where a query asset costs a query, which decodes a row group of every column, per part."""
        query = cparams.pop(BATCH_ARG, None)
        conn = super().connect(*cargs, **cparams)
        if query is not None:
            conn.execute(f"CREATE VIEW {_ident(VIEW)} AS {query}")
        return conn

    def get_columns(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        """The columns from DuckDB's ``DESCRIBE`` (duckdb-engine asks Postgres' catalog, which
        DuckDB does not fully emulate, so GX fell back to a ``SELECT * LIMIT 1`` per part)."""
        where = f"{_ident(schema)}.{_ident(table_name)}" if schema else _ident(table_name)
        rows = connection.exec_driver_sql(f"DESCRIBE {where}").fetchall()
        return [
            {"name": name, "type": _sa_type(str(dtype)), "nullable": null == "YES", "default": None}
            for name, dtype, null, *_ in rows
        ]

    def get_pk_constraint(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return {"constrained_columns": [], "name": None}  # a view over a file has no keys

    def do_begin(self, dbapi_connection: Any) -> None:
        pass

    def do_commit(self, dbapi_connection: Any) -> None:
        pass

    def do_rollback(self, dbapi_connection: Any) -> None:
        pass


registry.register("duckdb.nightshift", __name__, "ReadOnlyDuckDB")

# the batch's view in each connection, and the connect argument that carries its query
VIEW = "batch"
BATCH_ARG = "nightshift_batch"

# DuckDB's session settings: never download an extension (a validation must not reach the
# network), and instants in UTC whatever the machine's zone (as the pandas engine shows them)
CONNECT_ARGS: dict[str, Any] = {"config": {"autoinstall_known_extensions": False, "TimeZone": "UTC"}}


def _sa_type(duckdb_type: str) -> Any:
    """The SQLAlchemy type of a DuckDB type name (``NullType`` for one not listed)."""
    from sqlalchemy import types

    name = duckdb_type.upper()
    if name.startswith("TIMESTAMP"):
        return types.TIMESTAMP(timezone="TIME ZONE" in name)
    if name.startswith("DECIMAL"):
        return types.Numeric()
    simple: dict[str, Any] = {
        "BOOLEAN": types.Boolean,
        "TINYINT": types.SmallInteger,
        "SMALLINT": types.SmallInteger,
        "INTEGER": types.Integer,
        "BIGINT": types.BigInteger,
        "HUGEINT": types.BigInteger,
        "UTINYINT": types.SmallInteger,
        "USMALLINT": types.Integer,
        "UINTEGER": types.BigInteger,
        "UBIGINT": types.BigInteger,
        "FLOAT": types.Float,
        "DOUBLE": types.Float,
        "VARCHAR": types.String,
        "DATE": types.Date,
        "TIME": types.Time,
        "BLOB": types.LargeBinary,
    }
    return simple.get(name, types.NullType)()


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


def connect_args(path: Path) -> dict[str, Any]:
    """DuckDB's connect arguments for a batch at ``path``: :data:`CONNECT_ARGS`, the view's query,
    and a spill folder beside the file (DuckDB's default is ``.tmp`` in the working directory,
    a worker's; beside the staged file it goes with the ingest's staging folder)."""
    config = {**CONNECT_ARGS["config"], "temp_directory": str(path.parent / "duckdb-spill")}
    return {**CONNECT_ARGS, "config": config, BATCH_ARG: batch_query(path)}


def add_source(ctx: Any, path: Path, name: str = "nightshift") -> Any:
    """A SQL datasource on DuckDB with the Parquet file as its one batch (the view ``batch``);
    its batch definition."""
    args = connect_args(path)
    source = ctx.data_sources.add_sql(name, connection_string=URL, kwargs={"connect_args": args})
    return source.add_table_asset("batch", table_name=VIEW).add_batch_definition_whole_table("all")
