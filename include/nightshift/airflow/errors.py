"""One mapping from nightshift's error family (:mod:`nightshift.errors`) to Airflow's outcomes.

:func:`map_errors` wraps a task body:

- a :class:`~nightshift.errors.DataError` fails the task at once, without retries
  (``AirflowFailException``; ``Quarantined`` for a rejected batch, so the failure notification
  says *quarantine*): the data will not change by retrying;
- a :class:`~nightshift.errors.ServiceError` is logged and re-raised as it is, so Airflow
  retries it with the task's retries and back-off;
- anything else (Airflow's own exceptions included) is re-raised untouched.

The original error stays the failure's cause (``__cause__``), so the task log keeps its
traceback. Light at parse time: the standard library and ``airflow.sdk`` only.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar, overload

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from nightshift.airflow.notify import Quarantined
from nightshift.errors import DataError, retryable

P = ParamSpec("P")
R = TypeVar("R")
Errors = tuple[type[BaseException], ...]


def failure(exc: BaseException) -> AirflowFailException:
    """The no-retry failure for a data error (named by its type; a quarantine by its report)."""
    if isinstance(exc, DataError) and exc.quarantined:
        return Quarantined(str(exc))
    return AirflowFailException(f"{type(exc).__name__}: {exc}")


@overload
def map_errors(func: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def map_errors(*, data: Errors = ()) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def map_errors(
    func: Callable[P, R] | None = None, /, *, data: Errors = ()
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Map the errors of a task body (see the module's doc). ``data`` names exceptions from
    outside the family that this task also treats as data errors (a plain ``ValueError`` from
    validating a run's Params, the ``FileNotFoundError`` of a day that was never curated)."""

    def decorate(body: Callable[P, R]) -> Callable[P, R]:
        log = logging.getLogger(body.__module__)

        @functools.wraps(body)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return body(*args, **kwargs)
            except AirflowException:
                raise
            except Exception as exc:
                retry = retryable(exc)
                if retry is None and isinstance(exc, data):
                    retry = False
                if retry is None:
                    raise
                if retry:
                    what = f"{type(exc).__name__}: {exc}"
                    log.error("%s: infrastructure error, to be retried: %s", body.__name__, what)
                    raise
                raise failure(exc) from exc

        return wrapper

    return decorate if func is None else decorate(func)
