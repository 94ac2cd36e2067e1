"""Worker identity for task instances (Airflow's ``[core] hostname_callable``)."""

from __future__ import annotations

import socket


def hostname() -> str:
    """``$NIGHTSHIFT_WORKER_NAME`` when set, else the fully qualified host name.

    Several Celery workers on one host (the local topology of ``make services-up``) would all
    record the same host name on their task instances; naming them keeps "which worker ran
    this" answerable from the task instance alone.
    """
    from nightshift.settings import settings

    return settings().worker_name or socket.getfqdn()
