"""What a task inherited from its worker: logged once at the start of every task (the
``on_execute_callback`` of the default args), light at parse time (no heavy import here).

A task forked from a worker that imported :mod:`nightshift.airflow.preload` finds the heavy
libraries in ``sys.modules`` already; one that did not imports them itself (~10 s). The first
line says which; then any module of a heavy library that the task still imports itself is
named (once per library), so a gap in the preload shows in the task's log.
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
import time
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

# the libraries whose import a task must not pay (seconds each, measured alone)
HEAVY = ("great_expectations", "evidently", "mlflow", "xgboost", "sklearn", "pyarrow")
PRELOAD = "nightshift.airflow.preload"
INHERITED = "nightshift preload: inherited"
NOT_INHERITED = "nightshift preload: NOT inherited"
IMPORTS_ITSELF = "nightshift preload: this task imports"


def inherited(modules: dict[str, ModuleType] | None = None) -> tuple[list[str], list[str]]:
    """The heavy libraries already imported (in ``sys.modules``) and those not."""
    mods = sys.modules if modules is None else modules
    return [m for m in HEAVY if m in mods], [m for m in HEAVY if m not in mods]


class ImportWatch(importlib.abc.MetaPathFinder):
    """Names (once per library) a module of a heavy library imported after the task started:
    the import system asks the finders only for modules not in ``sys.modules``."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}  # library -> its first module this task imported
        self.started = time.monotonic()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in HEAVY and top not in self.seen:
            self.seen[top] = fullname
            log.warning(
                "%s %s itself (%s was not preloaded; %.1f s into the task)",
                IMPORTS_ITSELF,
                fullname,
                top,
                time.monotonic() - self.started,
            )
        return None  # the other finders import it as usual


def log_inherited(context: Any = None) -> ImportWatch:
    """Log which heavy libraries this task inherited from its worker, and watch the rest
    (an ``on_execute_callback``: it runs in the task process just before ``execute``)."""
    have, missing = inherited()
    preloaded = PRELOAD in sys.modules
    if not missing:
        log.info("%s %s from its worker (%s loaded)", INHERITED, ", ".join(have), PRELOAD)
    else:
        log.warning(
            "%s: %s (%s %s): this task imports them itself; start the worker with it (%s)",
            NOT_INHERITED,
            ", ".join(missing),
            PRELOAD,
            "loaded" if preloaded else "not loaded",
            "[scheduler] mp_forkserver_preload, or [celery] extra_celery_config imports",
        )
    for finder in sys.meta_path:
        if isinstance(finder, ImportWatch):
            return finder  # a deferred task resumed in the same process, or dag.test()
    watch = ImportWatch()
    sys.meta_path.insert(0, watch)
    return watch
