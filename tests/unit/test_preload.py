"""The preload (``nightshift.airflow.preload``): importing it only imports, and processes forked
after it — as the Task SDK forks every task from its worker — run the real work correctly:
XGBoost with OpenMP threads, Arrow's thread pools, a GX validation (an ingest), an MLflow client.

One fresh interpreter plays the worker (it imports the preload, as the forkserver or a Celery
worker does, then forks "tasks" one after the other and side by side); a child that hangs or
fails fails the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from nightshift.airflow.taskstart import HEAVY, IMPORTS_ITSELF, INHERITED, NOT_INHERITED, inherited

ROOT = Path(__file__).resolve().parents[2]
PRELUDE = """
import json, logging, os, socket, sys, threading, time, traceback
from datetime import date

def native_threads():
    return len(os.listdir("/proc/self/task"))

lines = []  # the task-start lines

class Keep(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())

logging.getLogger("nightshift.airflow.taskstart").addHandler(Keep())
logging.getLogger("nightshift.airflow.taskstart").setLevel(logging.INFO)
"""


def _python(code: str, timeout: float = 900) -> Any:
    """Run ``code`` (after :data:`PRELUDE`) in a fresh interpreter; its last stdout line is JSON."""
    out = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert out.returncode == 0, f"{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


WORKER = """
calls = []
def refuse(*args, **kwargs):
    calls.append(repr(args)[:200])
    raise OSError("no network at import")
real = socket.socket.connect, socket.create_connection, socket.getaddrinfo
socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse
# nothing set by the stack: no tracking URI, MLflow's telemetry not switched off
for name in ("MLFLOW_TRACKING_URI", "MLFLOW_DISABLE_TELEMETRY", "GX_ANALYTICS_ENABLED"):
    os.environ.pop(name, None)
import nightshift.airflow.preload
import mlflow.telemetry.client as telemetry
from mlflow.tracking._tracking_service import utils as tracking
socket.socket.connect, socket.create_connection, socket.getaddrinfo = real
imported = {
    "network": calls,
    "python_threads": [t.name for t in threading.enumerate()],
    "native_threads": native_threads(),
    "modules": sorted(m for m in sys.modules if "." not in m),
    "first_use_missing": [m for m in nightshift.airflow.preload.FIRST_USE if m not in sys.modules],
    "telemetry_client": telemetry.get_telemetry_client() is not None,
    "tracking_uri_set": tracking._tracking_uri is not None,
}
inherited = native_threads()

def ingest():  # GX validation, Arrow's CSV reader and Parquet writer (thread pools)
    from nightshift.airflow.taskstart import log_inherited
    from nightshift.ingest import ingest_partition
    from nightshift.spec import find_spec
    from nightshift.storage import Store
    log_inherited({})
    outcome = ingest_partition(Store(STORE), find_spec("payments"), "events", DAY)
    assert outcome.success and outcome.rows == 3000, outcome.message()
    import xgboost, mlflow.pyfunc, great_expectations, evidently, sklearn.linear_model
    assert len(lines) == 1, lines  # the task-start line, and nothing imported itself
    with open(ROOT + "/task.log", "w") as f:
        json.dump(lines, f)

def train():  # Arrow's thread pool reading Parquet, XGBoost on two OpenMP threads
    import numpy as np, pyarrow.compute as pc, pyarrow.parquet as pq, xgboost as xgb
    table = pq.read_table(ROOT + "/store/curated/payments", use_threads=True)
    x = np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype("float32") for n in NUMERIC])
    first = table.column(NUMERIC[0])
    y = pc.greater(first, pc.approximate_median(first)).to_numpy(zero_copy_only=False).astype("float32")
    params = {"nthread": 2, "max_depth": 3, "objective": "binary:logistic"}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=30)
    p = booster.predict(xgb.DMatrix(x))
    assert np.isfinite(p).all() and 0.8 < float(((p > 0.5) == (y > 0.5)).mean())
    assert native_threads() > inherited, "no thread pool started in the child"

def registry():  # an MLflow client made in the child, on its own SQLite store
    from mlflow import MlflowClient
    client = MlflowClient(tracking_uri="sqlite:///" + ROOT + "/mlflow.db")
    exp = client.create_experiment("fork-" + str(os.getpid()))
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "auc", 0.9)
    assert client.get_run(run.info.run_id).data.metrics == {"auc": 0.9}

def fork(work):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work()
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return pid

def wait(pids, timeout=300):
    deadline, codes = time.monotonic() + timeout, {}
    while len(codes) < len(pids) and time.monotonic() < deadline:
        for pid in pids:
            if pid not in codes:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes[pid] = os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    for pid in set(pids) - set(codes):
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        codes[pid] = "hung"
    return [codes[p] for p in pids]

# one after the other, then side by side, then again: a worker forks task after task
exits = wait([fork(ingest)]) + wait([fork(train), fork(registry)]) + wait([fork(train)])
with open(ROOT + "/task.log") as f:
    task_log = json.load(f)
out = {"imported": imported, "exits": exits, "parent_threads": native_threads(), "inherited": inherited}
print(json.dumps({**out, "task_log": task_log}))
"""


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, spec: Any) -> dict[str, Any]:
    """The worker script's findings, after a day of the demo dataset landed in a fresh store."""
    from nightshift.demo.datagen import Scenario, generate
    from nightshift.storage import Store

    root = tmp_path_factory.mktemp("preload")
    day = date(2026, 5, 1)
    store = Store((root / "store").as_uri())
    generate(store, spec, day, 1, 3000, 5, Scenario())
    numeric = [f.name for f in spec.features.numeric][:4]
    given = f"STORE, DAY, ROOT = {store.url!r}, date({day.year}, {day.month}, {day.day}), {str(root)!r}\n"
    result: dict[str, Any] = _python(given + f"NUMERIC = {numeric!r}\n" + WORKER)
    return result


def test_the_preload_only_imports_no_thread_network_or_client(worker: dict[str, Any]) -> None:
    # the libraries' own load-time thread pools (OpenBLAS of numpy and of scipy, Arrow's
    # jemalloc) are the floor: the preload may start nothing beyond them
    floor = _python("import numpy, scipy.linalg, pyarrow\nprint(json.dumps(native_threads()))")
    got = worker["imported"]
    assert got["network"] == []
    assert got["python_threads"] == ["MainThread"]
    assert got["native_threads"] == floor, "the preload started native threads of its own"
    assert set(HEAVY) <= set(got["modules"])
    assert got["first_use_missing"] == []  # each name is right for the installed versions
    assert not got["telemetry_client"] and not got["tracking_uri_set"]


def test_tasks_forked_after_the_preload_ingest_train_and_log_to_mlflow(worker: dict[str, Any]) -> None:
    assert worker["exits"] == [0, 0, 0, 0], worker
    # the parent (the worker) started nothing for its children's work (OpenBLAS even stops its
    # pool at each fork, through pthread_atfork, until it is used again)
    assert worker["parent_threads"] <= worker["inherited"]


def test_a_task_names_what_it_inherited_and_what_it_imports_itself(worker: dict[str, Any]) -> None:
    assert inherited({m: sys for m in HEAVY}) == (list(HEAVY), [])
    assert inherited({"pyarrow": sys}) == (["pyarrow"], [m for m in HEAVY if m != "pyarrow"])
    # forked after the preload: one line saying so, nothing imported by the task itself
    assert worker["task_log"] == [
        f"{INHERITED} {', '.join(HEAVY)} from its worker (nightshift.airflow.preload loaded)"
    ]
    # without the preload: every heavy library is missing, and the first import of each is named
    got = _python(
        """
        from nightshift.airflow.taskstart import log_inherited
        log_inherited({})
        import pyarrow.compute
        import pyarrow.parquet
        print(json.dumps(lines))
        """
    )
    assert got[0].startswith(f"{NOT_INHERITED}: {', '.join(HEAVY)} (nightshift.airflow.preload not loaded)")
    assert got[1].startswith(f"{IMPORTS_ITSELF} pyarrow itself (pyarrow was not preloaded")
    assert len(got) == 2, got  # once per library


@pytest.mark.parametrize("stack", ["demo", "system"])
def test_the_local_executor_stacks_fork_their_workers_from_the_preload(stack: str, tmp_path: Path) -> None:
    from nightshift_dev.env import demo_env, system_env

    env = demo_env({}) if stack == "demo" else system_env(tmp_path, 8793)
    assert env["AIRFLOW__SCHEDULER__MP_START_METHOD"] == "forkserver"
    assert env["AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD"] == "nightshift.airflow.preload"
