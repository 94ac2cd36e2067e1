"""A moto S3 server on 127.0.0.1 whose objects survive a restart.

moto keeps everything in memory. For the local topology (``make services-up``) and its fault
tests the bucket must outlive a stop/start, as a real object store's would: on SIGTERM or
SIGINT the port closes, then every bucket and object is written to ``--data`` (atomically,
by renaming a finished folder), and on start that snapshot is loaded back through the S3 API
before the port is announced ready (the ``--ready`` file appears).

    python scripts/s3server.py --port 9000 --data .nightshift/services/s3 --ready ready.flag
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

from nightshift_dev import free_port

ACCOUNT = {"aws_access_key_id": "snapshot", "aws_secret_access_key": "snapshot", "region_name": "us-east-1"}


def _client(url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=url, **ACCOUNT)


def dump(url: str, data: Path) -> int:
    """Write every bucket and object under ``data/snapshot`` (replacing the old one)."""
    s3 = _client(url)
    tmp = data / "snapshot.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    index: dict[str, list[dict[str, str]]] = {}
    count = 0
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        (tmp / name).mkdir()
        objects = index.setdefault(name, [])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                blob = hashlib.sha1(obj["Key"].encode()).hexdigest()
                (tmp / name / blob).write_bytes(s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read())
                objects.append({"key": obj["Key"], "blob": blob})
                count += 1
    (tmp / "index.json").write_text(json.dumps(index))
    final = data / "snapshot"
    old = data / "snapshot.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return count


def load(url: str, data: Path) -> int:
    """Create the snapshot's buckets and objects on a fresh server."""
    snap = data / "snapshot"
    if not (snap / "index.json").exists():
        return 0
    s3 = _client(url)
    count = 0
    for name, objects in json.loads((snap / "index.json").read_text()).items():
        s3.create_bucket(Bucket=name)
        for obj in objects:
            s3.put_object(Bucket=name, Key=obj["key"], Body=(snap / name / obj["blob"]).read_bytes())
            count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", type=Path, required=True, help="folder for the snapshot")
    ap.add_argument("--ready", type=Path, help="file written once the snapshot is loaded")
    args = ap.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    args.data.mkdir(parents=True, exist_ok=True)
    if args.ready:
        args.ready.unlink(missing_ok=True)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    url = f"http://{args.host}:{args.port}"
    loaded = load(url, args.data)
    print(f"s3server: {url}, {loaded} objects loaded from {args.data}", flush=True)
    if args.ready:
        args.ready.write_text(url)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    if args.ready:
        args.ready.unlink(missing_ok=True)
    # close the public port first (clients see the outage at once), then read the same
    # in-memory state through a private port that only this process knows
    server.stop()
    port = free_port()
    private = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    private.start()
    saved = dump(f"http://127.0.0.1:{port}", args.data)
    private.stop()
    print(f"s3server: {saved} objects saved to {args.data}", flush=True)


if __name__ == "__main__":
    main()
