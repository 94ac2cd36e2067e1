"""The developer toolkit of this repository: what ``scripts/``, ``tests/`` and ``bench/`` share.

- :mod:`nightshift_dev.env`: the Airflow environment of each local stack (``make up``/``make demo``,
  the system tests, the Celery services, the overhead benchmark, the tests' ``dag.test()``);
  ``python -m nightshift_dev.env demo`` prints ``scripts/env.sh``'s exports.
- :mod:`nightshift_dev.client`: the REST client (the core's :class:`~nightshift.restclient.AirflowAPI`
  with what tests and benchmarks poll for; its ``wait_idle`` is the one idle wait).
- :mod:`nightshift_dev.stack`: an Airflow stack of its own (LocalExecutor, SQLite) for a test or
  a benchmark; :mod:`nightshift_dev.services`: the Celery topology (``make services-up``).
- :func:`free_port`.

It lives next to the package (``include/``, on the venv's path through the editable install) but
is not part of the distribution, and nothing in ``nightshift`` may import it.
"""

from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
