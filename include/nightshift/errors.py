"""One family for nightshift's errors: whether a failure is worth retrying is decided here, once.

- :class:`DataError`: the input is wrong (a spec, a batch, a label window, a training or
  promotion request, a gate refusal about the data) or the set-up it names is (no GPU on a
  GPU-only worker). Retrying the same task sees the same input and fails the same way, so it
  fails at once.
- :class:`ServiceError`: something the task needs did not answer or could not be used (the
  store, the local staging disk, the MLflow server, a notification channel, the Airflow API,
  the upstream delivery of a day's files). Retrying later may succeed.

The public error classes of the core keep their names, modules and builtin bases (a
``SpecError`` is still a ``ValueError``, a ``StorageError`` a ``RuntimeError``) and add one of
the two branches. ``nightshift.airflow.errors.map_errors`` turns them into Airflow's outcomes.
A class in both branches (``RegistryUnavailable`` is a ``RegistryError`` for the callers that
catch every registry problem) counts as a service error: see :func:`retryable`.

This module imports nothing but the standard library: the packaged model carries it.
"""

from __future__ import annotations

from typing import ClassVar


class NightshiftError(Exception):
    """The base of every error nightshift raises on purpose; the message names the problem."""


class DataError(NightshiftError):
    """Retrying cannot help: the input (or the set-up it names) is wrong. Fails at once."""

    #: a rejected batch that was quarantined: the task's failure is reported as a quarantine
    quarantined: ClassVar[bool] = False


class ServiceError(NightshiftError):
    """A service or resource the task needs failed; retrying later may succeed."""


def retryable(exc: BaseException) -> bool | None:
    """``True`` for a service error, ``False`` for a data error, ``None`` for an error outside
    the family (the caller decides). A service error wins over a data error."""
    if isinstance(exc, ServiceError):
        return True
    if isinstance(exc, DataError):
        return False
    return None
