"""A stand-in for ``nightshift serve`` in tests/unit/test_servecheck.py: stdlib HTTP on an
inherited socket, scoring ``sigmoid(a + b)`` (a missing value as 0) as the tests' model does.

``python servecheck_standin.py <fd> <version> <mode> <pid file>``; modes: ``ok``, ``off`` (every
score 1e-5 off), ``slow`` (one-row requests take 80 ms), ``busy-once`` (the first 23 one-row
requests take 80 ms, as on a host busy for a while), ``wrong-version``, ``some-500`` (every
tenth request fails), ``load`` / ``unreachable`` (the version cannot be loaded / the registry
cannot be reached: 503 with ``/version``'s load error), ``exit`` (exits before it is ready),
``never-ready`` (503 without a reason).
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

FD, VERSION, MODE, PID_FILE = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])


def score(a: float | None, b: float | None) -> float:
    return 1.0 / (1.0 + math.exp(-((a or 0.0) + (b or 0.0))))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes
    served = 0
    single = 0

    def _send(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if MODE in ("load", "unreachable", "never-ready"):
            if self.path == "/health":
                return self._send(503, {"status": "unavailable"})
            error = (
                None if MODE == "never-ready" else f"2026-01-01T00:00:00Z: v{VERSION} cannot be served: gone"
            )
            return self._send(200, {"load_error": error, "load_error_retryable": MODE == "unreachable"})
        self._send(200, {"status": "ready", "model_version": VERSION})

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        split = doc["dataframe_split"]
        a, b = split["columns"].index("a"), split["columns"].index("b")
        rows = split["data"]
        Handler.served += 1
        if MODE == "some-500" and Handler.served % 10 == 0:
            return self._send(500, {"error_code": "INTERNAL_ERROR", "message": "scoring failed (injected)"})
        if len(rows) == 1:
            Handler.single += 1
            if MODE == "slow" or (MODE == "busy-once" and Handler.single <= 23):
                time.sleep(0.08)
        off = 1e-5 if MODE == "off" else 0.0
        version = "999" if MODE == "wrong-version" else VERSION
        self._send(200, {"model_version": version, "predictions": [score(r[a], r[b]) + off for r in rows]})

    def log_message(self, *args: Any) -> None:
        pass


PID_FILE.write_text(str(os.getpid()))
if MODE == "exit":
    raise SystemExit(4)
server = HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket.close()
server.socket = socket.socket(fileno=FD)
server.serve_forever()
