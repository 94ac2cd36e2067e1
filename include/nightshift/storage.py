"""The store: one layout over local files or S3, chosen by URL.

Layout (every area partitioned by day)::

    landing/<dataset>/<kind>/dt=YYYY-MM-DD/<files>     what upstream delivers (kind: events|labels)
    curated/<dataset>/dt=YYYY-MM-DD/part-0.parquet     validated events
    labels/<dataset>/dt=YYYY-MM-DD/part-0.parquet      validated labels (dt = arrival day)
    quarantine/<dataset>/<kind>/dt=YYYY-MM-DD/          rejected files + validation result + Data Docs
    reports/<dataset>/<topic>/dt=YYYY-MM-DD/            reports (validation summaries, later drift)
    predictions/<dataset>/dt=YYYY-MM-DD/part-0.parquet  scores of the champion, version in every row
    serving/<dataset>/dt=YYYY-MM-DD/part-<uuid>.parquet rows answered online (nightshift.serve)
    audit/<dataset>/<action>-v<version>-<key>.json      registry decisions (one immutable object each)

Writes go to a temporary name and are then moved into place, so a reader sees the old file
or the new one, never half of one; a re-run replaces, never duplicates. A directory published
whole (quarantine evidence, Data Docs) is swapped in one step on local disks; on S3, which has
no rename, its objects go under a fresh version prefix and a small marker object is switched
last (see :meth:`Store.publish_dir`); readers resolve names through :meth:`Store.published_path`.
What a killed attempt leaves behind (``.tmp-*``, ``.old-*``, unnamed versions) is removed by
:meth:`Store.sweep` once it is older than :data:`LEFTOVER_MAX_AGE_S`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import functools
import json
import logging
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from nightshift.errors import ServiceError
from nightshift.spec import BatchKind, parse_dt

# leftovers of a killed attempt older than this are removed; younger ones may be a running attempt's
LEFTOVER_MAX_AGE_S = 6 * 3600
# S3: the marker of a published directory, and the prefix of its versions (hidden from list_files)
MARKER = "_CURRENT.json"
VERSION_PREFIX = ".v-"
LEFTOVER = re.compile(r"\.(tmp|old)-[0-9a-f]{8}")  # .tmp-<hex>-name files, <dir>.tmp-/.old-<hex> folders
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

log = logging.getLogger(__name__)


class StorageError(ServiceError, RuntimeError):
    """A store that cannot be reached or used; the message names the URL. An infrastructure
    error: retrying may succeed, the data is not at fault."""


def io_problem(exc: BaseException, remote: bool) -> str:
    """What kind of failure an I/O error is: ``disk full``, ``network error`` or ``disk error``."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL:
        return "disk full"
    return "network error" if remote else "disk error"


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
    from nightshift.settings import settings

    return settings().state_dir


def default_store_url() -> str:
    """``$NIGHTSHIFT_STORE_URL`` or ``file://<state dir>/store``."""
    from nightshift.settings import settings

    return settings().store_url or (default_state_dir() / "store").as_uri()


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
    def io_error(self, doing: str, path: str, exc: OSError) -> StorageError:
        """A :class:`StorageError` for an I/O failure: disk full, disk error or network error."""
        what = io_problem(exc, remote=self.scheme != "file")
        return StorageError(f"store {self.url}: {what} while {doing} {self.uri(path)}: {exc}")

    def _tmp_name(self, path: str) -> str:
        head, _, tail = path.rpartition("/")
        return f"{head}/.tmp-{uuid.uuid4().hex[:12]}-{tail}"

    @contextlib.contextmanager
    def open_output_atomic(self, path: str) -> Iterator[pa.NativeFile]:
        """Yield a stream to a temporary name; on success move it to ``path``.

        On error the temporary file is removed, ``path`` is left as it was and an I/O failure
        is raised as :class:`StorageError`. On S3 the final object appears whole too: the move
        is one server-side copy, and an S3 object is only ever visible complete.
        """
        head = path.rpartition("/")[0]
        tmp = self._tmp_name(path)
        try:
            self.makedirs(head)
            with self.fs.open_output_stream(tmp) as out:
                yield out
            self.fs.move(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                self.fs.delete_file(tmp)
            if isinstance(exc, OSError):
                raise self.io_error("writing", path, exc) from exc
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
        """Remove ``directory`` and everything in it (on S3 its marker first, so that readers
        stop resolving into it before its objects go)."""
        if self.scheme != "file":
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(f"{directory.rstrip('/')}/{MARKER}")
        if self.exists(directory):
            self.fs.delete_dir(directory)

    def put_file(self, local_path: str | Path, path: str) -> None:
        """Publish a local file at ``path``: a rename on local disks (a copy to a temporary name
        first when the file is on another disk), an upload on S3; atomic either way.

        On failure nothing is left under a temporary name and the old ``path`` stays; a full
        disk or an I/O error is raised as :class:`StorageError` (retrying may succeed).
        """
        if self.scheme != "file":
            self.upload_file_atomic(local_path, path)
            return
        tmp = self._tmp_name(path)
        try:
            self.makedirs(path.rpartition("/")[0])
            shutil.move(str(local_path), tmp)
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self.io_error("publishing", path, exc) from exc
            raise

    def publish_dir(
        self, directory: str, local_dir: str | Path | None = None, copies: dict[str, str] | None = None
    ) -> None:
        """Replace ``directory`` with the files of ``local_dir`` plus store files ``copies``
        (store path -> relative name); readers see the old directory or the new one whole.

        Local disks: the new directory is staged next to the old one and swapped in with one
        rename. S3: the objects are written under ``<directory>/.v-<stamp>-<id>/`` and the
        marker ``<directory>/_CURRENT.json`` is switched to that version last; the version
        it named before is deleted after the switch (read through :meth:`published_path`).
        On failure nothing half-written is left (what a killed attempt leaves, :meth:`sweep`
        removes later) and the old directory is intact.
        """
        files: list[tuple[str | Path, str, bool]] = [(src, rel, True) for src, rel in (copies or {}).items()]
        if local_dir is not None:
            local = Path(local_dir)
            files += [
                (f, f.relative_to(local).as_posix(), False) for f in sorted(local.rglob("*")) if f.is_file()
            ]
        if self.scheme == "file":
            self._publish_local(directory.rstrip("/"), files)
        else:
            self._publish_versioned(directory.rstrip("/"), files)

    def _publish_local(self, directory: str, files: list[tuple[str | Path, str, bool]]) -> None:
        staged = directory + f".tmp-{uuid.uuid4().hex[:8]}"
        try:
            self.makedirs(staged)
            for src, rel, in_store in files:
                self.makedirs(f"{staged}/{rel}".rpartition("/")[0])
                if in_store:
                    self.fs.copy_file(str(src), f"{staged}/{rel}")
                else:
                    shutil.copyfile(src, f"{staged}/{rel}")
            self.replace_dir(staged, directory)
        except BaseException as exc:
            shutil.rmtree(staged, ignore_errors=True)
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise self.io_error("publishing", directory, exc) from exc
            raise

    def _publish_versioned(self, directory: str, files: list[tuple[str | Path, str, bool]]) -> None:
        previous = self.current_version(directory)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        version = f"{VERSION_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}"
        base = f"{directory}/{version}"
        try:
            for src, rel, in_store in files:
                if in_store:
                    self.fs.copy_file(str(src), f"{base}/{rel}")
                else:  # straight to its name: the version is invisible until the marker names it
                    with open(src, "rb") as f, self.fs.open_output_stream(f"{base}/{rel}") as out:
                        while block := f.read(8 << 20):
                            out.write(block)
            marker = {"version": version, "published_at": datetime.now(UTC).isoformat(timespec="seconds")}
            self.write_json_atomic(f"{directory}/{MARKER}", marker)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                self.fs.delete_dir(base)
            if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
                raise self.io_error("publishing", directory, exc) from exc
            raise
        # after the switch: the version named before, and objects of the plain layout of old
        # (a concurrent publisher's version in progress is neither, and is left alone)
        try:
            for info in self.fs.get_file_info(pafs.FileSelector(directory, recursive=False)):
                name = info.base_name
                if name == previous or not name.startswith((".", MARKER)):
                    if info.type == pafs.FileType.Directory:
                        self.fs.delete_dir(info.path)
                    else:
                        self.fs.delete_file(info.path)
        except OSError as exc:
            log.warning("published %s; the old version stays until a sweep: %s", self.uri(directory), exc)

    def current_version(self, directory: str) -> str | None:
        """The version prefix the marker of a published S3 directory names (``None``: none)."""
        if self.scheme == "file":
            return None
        try:
            version = self.read_json(f"{directory.rstrip('/')}/{MARKER}").get("version")
        except FileNotFoundError:
            return None
        except (ValueError, AttributeError):
            log.warning("unreadable marker in %s", self.uri(directory))
            return None
        return str(version) if isinstance(version, str) and version.startswith(VERSION_PREFIX) else None

    def published_path(self, path: str) -> str:
        """Where the object behind ``path`` is: ``path`` itself on local disks and outside
        published directories; on S3 inside a directory published by :meth:`publish_dir`, the
        same name in the version its marker names. Every reader of quarantine evidence and
        Data Docs goes through this."""
        if self.scheme == "file":
            return path
        root = self.root.rstrip("/") + "/"
        if not path.startswith(root):
            return path
        parts = path[len(root) :].split("/")
        if any(p.startswith(VERSION_PREFIX) for p in parts):
            return path  # already resolved
        for i in range(len(parts) - 1, 0, -1):
            directory = root + "/".join(parts[:i])
            version = self.current_version(directory)
            if version:
                return f"{directory}/{version}/" + "/".join(parts[i:])
        return path

    def replace_dir(self, staged: str, directory: str) -> None:
        """Put the local staged directory in place of ``directory`` in one step (Linux:
        ``renameat2(RENAME_EXCHANGE)``, so that ``directory`` never goes missing); elsewhere
        the old one is set aside, and put back if the new one cannot be moved in."""
        if self.scheme != "file":
            raise StorageError(f"store {self.url}: replace_dir is for local disks; use publish_dir")
        self.makedirs(directory.rpartition("/")[0])
        if not os.path.lexists(directory):
            try:
                os.rename(staged, directory)
                return
            except OSError as exc:  # another attempt published it meanwhile: swap with it
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
        if _exchange(staged, directory):
            shutil.rmtree(staged, ignore_errors=True)  # the old directory, under the staged name
            return
        old = directory + f".old-{uuid.uuid4().hex[:8]}"
        os.rename(directory, old)
        os.utime(old)  # fresh: a sweep must not take it while it may still be put back
        try:
            os.rename(staged, directory)
        except BaseException:
            os.rename(old, directory)
            raise
        shutil.rmtree(old, ignore_errors=True)

    # ---- leftovers ---------------------------------------------------------------------
    def sweep(
        self,
        directories: Iterable[str],
        max_age_s: float = LEFTOVER_MAX_AGE_S,
        now: float | None = None,
    ) -> list[str]:
        """Remove what killed attempts left under ``directories``, once older than ``max_age_s``:
        temporary files and staged folders (``.tmp-*``), folders set aside (``.old-*``) and, on
        S3, versions of a published directory that its marker does not name. Younger ones may
        belong to an attempt still running and are kept. Returns the paths removed."""
        now = time.time() if now is None else now
        removed: list[str] = []
        for directory in directories:
            if self.scheme == "file":
                removed += sweep_local(Path(directory), max_age_s, now, LEFTOVER.search)
            else:
                removed += self._sweep_s3(directory.rstrip("/"), now - max_age_s)
        for path in removed:
            log.info("removed leftover %s", self.uri(path) if self.scheme != "file" else path)
        return removed

    def _sweep_s3(self, directory: str, before: float) -> list[str]:
        if not self.exists(directory):
            return []
        infos = [
            i
            for i in self.fs.get_file_info(pafs.FileSelector(directory, recursive=True))
            if i.type == pafs.FileType.File
        ]
        versions: dict[tuple[str, str], float] = {}  # (published dir, version) -> newest mtime
        stale: list[str] = []
        for info in infos:
            mtime = info.mtime.timestamp() if info.mtime else 0.0
            parts = info.path.split("/")
            at = next((k for k, p in enumerate(parts) if p.startswith(VERSION_PREFIX)), None)
            if at is not None:
                key = ("/".join(parts[:at]), parts[at])
                versions[key] = max(versions.get(key, 0.0), mtime)
            elif LEFTOVER.search(info.base_name) and mtime < before:
                stale.append(info.path)
        seen: dict[str, list[str]] = {}
        for pub, version in versions:
            seen.setdefault(pub, []).append(version)
        for pub, names in seen.items():
            old = [v for v in names if versions[(pub, v)] < before]
            if not old:
                continue
            current = self.current_version(pub)
            stale += [f"{pub}/{v}" for v in old if v != current]
        removed = []
        for path in stale:
            try:
                if self.is_file(path):
                    self.fs.delete_file(path)
                else:
                    self.fs.delete_dir(path)
                removed.append(path)
            except (OSError, StorageError) as exc:
                log.warning("could not remove leftover %s: %s", self.uri(path), exc)
        return removed


def sweep_local(
    directory: Path, max_age_s: float, now: float | None = None, match: Callable[[str], Any] = LEFTOVER.search
) -> list[str]:
    """Remove the files and folders under ``directory`` whose name ``match``es and whose newest
    modification is older than ``max_age_s``; the paths removed."""
    now = time.time() if now is None else now
    removed: list[str] = []
    if not directory.is_dir():
        return removed
    for top, dirs, names in os.walk(directory):
        for name in [*dirs, *names]:
            path = Path(top) / name
            if not match(name):
                continue
            try:
                if _newest_mtime(path) >= now - max_age_s:
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(str(path))
            except FileNotFoundError:
                pass  # another sweep was first
            except OSError as exc:
                log.warning("could not remove leftover %s: %s", path, exc)
        dirs[:] = [d for d in dirs if not match(d)]  # removed or fresh: never walked into
    return removed


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for top, _, names in os.walk(path):
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, (Path(top) / name).lstat().st_mtime)
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, Path(top).lstat().st_mtime)
    return newest


# ---- the atomic directory swap -----------------------------------------------------------------
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Any:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: str, b: str) -> bool:
    """Swap two existing paths atomically; ``False`` where the system or file system cannot."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), a, None, b)
