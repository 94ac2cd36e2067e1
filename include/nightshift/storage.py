"""The store: one layout over local files or S3, chosen by URL.

Layout (every area partitioned by day)::

    landing/<dataset>/<kind>/dt=YYYY-MM-DD/<files>     what upstream delivers (kind: events|labels)
    curated/<dataset>/dt=YYYY-MM-DD/part-0.parquet     validated events
    labels/<dataset>/dt=YYYY-MM-DD/part-0.parquet      validated labels (dt = arrival day)
    quarantine/<dataset>/<kind>/dt=YYYY-MM-DD/          rejected files + validation result + Data Docs
    reports/<dataset>/<topic>/dt=YYYY-MM-DD/            reports (validation summaries, later drift)
    predictions/<dataset>/dt=YYYY-MM-DD/part-0.parquet  scores of the champion, version in every row
    audit/<dataset>/<action>-v<version>-<key>.json      registry decisions (one immutable object each)

Writes go to a temporary name and are then moved into place, so a reader sees the old file
or the new one, never half of one; a re-run replaces, never duplicates.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import math
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from nightshift.spec import BatchKind, parse_dt

DEFAULT_STATE_DIR = ".nightshift"


class StorageError(RuntimeError):
    """A store that cannot be reached or used; the message names the URL."""


@dataclass(frozen=True)
class StorageOptions:
    """Connection details for S3-compatible stores (from an Airflow connection or env)."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by ``None``, recursively (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def default_state_dir() -> Path:
    """``$NIGHTSHIFT_HOME`` or ``.nightshift/`` in the current directory."""
    return Path(os.environ.get("NIGHTSHIFT_HOME", DEFAULT_STATE_DIR)).resolve()


def default_store_url() -> str:
    """``$NIGHTSHIFT_STORE_URL`` or ``file://<state dir>/store``."""
    return os.environ.get("NIGHTSHIFT_STORE_URL") or (default_state_dir() / "store").as_uri()


def _s3_filesystem(bucket: str, opts: StorageOptions) -> pafs.S3FileSystem:
    kwargs: dict[str, Any] = {}
    if opts.access_key:
        kwargs.update(access_key=opts.access_key, secret_key=opts.secret_key)
        if opts.session_token:
            kwargs["session_token"] = opts.session_token
    if opts.region:
        kwargs["region"] = opts.region
    if opts.endpoint_url:
        ep = urlparse(opts.endpoint_url)
        kwargs["endpoint_override"] = ep.netloc or ep.path
        kwargs["scheme"] = ep.scheme or "https"
        kwargs.setdefault("region", "us-east-1")
    kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=3)
    kwargs["connect_timeout"] = 5
    kwargs["request_timeout"] = 60
    return pafs.S3FileSystem(**kwargs)


class Store:
    """A store rooted at ``url`` (``file:///abs/path`` or ``s3://bucket/prefix``)."""

    def __init__(self, url: str | None = None, options: StorageOptions | None = None) -> None:
        self.url = (url or default_store_url()).rstrip("/")
        parsed = urlparse(self.url)
        self.scheme = parsed.scheme or "file"
        if self.scheme == "file":
            root = Path(unquote(parsed.path) if parsed.scheme else self.url).resolve()
            root.mkdir(parents=True, exist_ok=True)
            self.fs: pafs.FileSystem = pafs.LocalFileSystem()
            self.root = str(root)
        elif self.scheme == "s3":
            if not parsed.netloc:
                raise StorageError(f"store URL {self.url!r} has no bucket (expected s3://bucket/prefix)")
            self.fs = _s3_filesystem(parsed.netloc, options or StorageOptions())
            self.root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        else:
            raise StorageError(
                f"store URL {self.url!r}: unsupported scheme {self.scheme!r} (use file:// or s3://)"
            )

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    # ---- layout ----------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """Filesystem path (no scheme) under the root."""
        return "/".join([self.root, *[p.strip("/") for p in parts if p]])

    def uri(self, path: str) -> str:
        """The full URL of a filesystem path, for messages and reports."""
        return ("file://" if self.scheme == "file" else "s3://") + path

    @staticmethod
    def dt_part(dt: date) -> str:
        return f"dt={dt.isoformat()}"

    def landing_dir(self, dataset: str, kind: BatchKind, dt: date) -> str:
        return self.path("landing", dataset, kind, self.dt_part(dt))

    def published_file(self, dataset: str, kind: BatchKind, dt: date) -> str:
        """Where a validated batch is published: curated/ for events, labels/ for labels."""
        area = "curated" if kind == "events" else "labels"
        return self.path(area, dataset, self.dt_part(dt), "part-0.parquet")

    def predictions_file(self, dataset: str, dt: date) -> str:
        """Scores of the curated partition ``dt`` (one file per day, replaced on re-score)."""
        return self.path("predictions", dataset, self.dt_part(dt), "part-0.parquet")

    def quarantine_dir(self, dataset: str, kind: BatchKind, dt: date) -> str:
        return self.path("quarantine", dataset, kind, self.dt_part(dt))

    def reports_dir(self, dataset: str, topic: str, dt: date) -> str:
        return self.path("reports", dataset, topic, self.dt_part(dt))

    def resolve_inside(self, path: str) -> str | None:
        """``path`` with its symlinks resolved if that real path lies inside the store root,
        else ``None``. Object stores have no links: their paths come back as given."""
        if self.scheme != "file":
            return path
        root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        return real if real == root or real.startswith(root.rstrip("/") + "/") else None

    # ---- reads -----------------------------------------------------------------------
    def _info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as exc:
            raise StorageError(f"store {self.url}: cannot reach {self.uri(path)}: {exc}") from exc

    def exists(self, path: str) -> bool:
        return self._info(path).type != pafs.FileType.NotFound

    def is_file(self, path: str) -> bool:
        return self._info(path).type == pafs.FileType.File

    def size(self, path: str) -> int:
        return int(self._info(path).size or 0)

    def list_files(self, directory: str, pattern: str = "*") -> list[str]:
        """Files directly in ``directory`` matching ``pattern`` (sorted); hidden/temp names skipped."""
        if not self.exists(directory):
            return []
        sel = pafs.FileSelector(directory, recursive=False)
        try:
            infos = self.fs.get_file_info(sel)
        except OSError as exc:
            raise StorageError(f"store {self.url}: cannot list {self.uri(directory)}: {exc}") from exc
        out = []
        for info in infos:
            name = info.base_name
            if info.type != pafs.FileType.File or name.startswith((".", "_")):
                continue
            if fnmatch.fnmatch(name, pattern):
                out.append(info.path)
        return sorted(out)

    def list_partitions(self, directory: str) -> list[date]:
        """The ``dt=`` partitions under ``directory`` (sorted)."""
        if not self.exists(directory):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(directory, recursive=False))
        out = []
        for info in infos:
            if info.type == pafs.FileType.Directory and info.base_name.startswith("dt="):
                with contextlib.suppress(ValueError):
                    out.append(parse_dt(info.base_name[3:]))
        return sorted(out)

    def open_input(self, path: str) -> pa.NativeFile:
        try:
            return self.fs.open_input_file(path)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StorageError(f"store {self.url}: cannot open {self.uri(path)}: {exc}") from exc

    def read_bytes(self, path: str) -> bytes:
        with self.open_input(path) as f:
            return bytes(f.read())

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    # ---- atomic writes ---------------------------------------------------------------
    def _tmp_name(self, path: str) -> str:
        head, _, tail = path.rpartition("/")
        return f"{head}/.tmp-{uuid.uuid4().hex[:12]}-{tail}"

    @contextlib.contextmanager
    def open_output_atomic(self, path: str) -> Iterator[pa.NativeFile]:
        """Yield a stream to a temporary name; on success move it to ``path``.

        On error the temporary file is removed and ``path`` is left as it was.
        """
        head = path.rpartition("/")[0]
        self.makedirs(head)
        tmp = self._tmp_name(path)
        try:
            with self.fs.open_output_stream(tmp) as out:
                yield out
            self.fs.move(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                self.fs.delete_file(tmp)
            raise

    def write_bytes_atomic(self, path: str, data: bytes) -> None:
        with self.open_output_atomic(path) as out:
            out.write(data)

    def write_json_atomic(self, path: str, obj: Any) -> None:
        self.write_bytes_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def upload_file_atomic(self, local_path: str | Path, path: str, chunk: int = 8 << 20) -> None:
        """Copy a local file into the store under ``path`` atomically."""
        with open(local_path, "rb") as src, self.open_output_atomic(path) as out:
            while block := src.read(chunk):
                out.write(block)

    def makedirs(self, directory: str) -> None:
        if self.scheme == "file":
            self.fs.create_dir(directory, recursive=True)

    def delete_dir(self, directory: str) -> None:
        if self.exists(directory):
            self.fs.delete_dir(directory)

    def put_file(self, local_path: str | Path, path: str) -> None:
        """Publish a local file at ``path``: a rename on local disks, an upload on S3."""
        if self.scheme == "file":
            import shutil

            self.makedirs(path.rpartition("/")[0])
            tmp = self._tmp_name(path)
            shutil.move(str(local_path), tmp)
            os.replace(tmp, path)
        else:
            self.upload_file_atomic(local_path, path)

    def publish_dir(
        self, directory: str, local_dir: str | Path | None = None, copies: dict[str, str] | None = None
    ) -> None:
        """Replace ``directory`` with the files of ``local_dir`` plus store files ``copies``
        (store path -> relative name), staged under a temporary name first."""
        staged = directory.rstrip("/") + f".tmp-{uuid.uuid4().hex[:8]}"
        self.makedirs(staged)
        try:
            for src, rel in (copies or {}).items():
                self.makedirs(f"{staged}/{rel}".rpartition("/")[0])
                self.fs.copy_file(src, f"{staged}/{rel}")
            if local_dir is not None:
                local = Path(local_dir)
                for f in sorted(local.rglob("*")):
                    if f.is_file():
                        self.upload_file_atomic(f, f"{staged}/{f.relative_to(local).as_posix()}")
            self.replace_dir(staged, directory)
        except BaseException:
            with contextlib.suppress(OSError):
                self.delete_dir(staged)
            raise

    def replace_dir(self, staged: str, directory: str) -> None:
        """Put the staged directory in place of ``directory`` (a rename on local disks)."""
        if self.scheme == "file":
            old = None
            if self.exists(directory):
                old = directory.rstrip("/") + f".old-{uuid.uuid4().hex[:8]}"
                os.rename(directory, old)
            self.makedirs(directory.rpartition("/")[0])
            os.rename(staged, directory)
            if old:
                self.fs.delete_dir(old)
        else:
            # S3 has no directory rename: each object is published whole, then the staging
            # prefix is dropped; readers only read the files a report names.
            self.delete_dir(directory)
            infos = self.fs.get_file_info(pafs.FileSelector(staged, recursive=True))
            for info in infos:
                if info.type == pafs.FileType.File:
                    self.fs.copy_file(info.path, directory + info.path[len(staged) :])
            self.fs.delete_dir(staged)
