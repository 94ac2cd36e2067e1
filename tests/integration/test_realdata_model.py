"""The real dataset from its landed files to a champion, the way its README section says: the
committed spec (made by ``nightshift init``, then edited), ``nightshift ingest`` over a range of
local days, then a first model that trains and passes the gate — through the core
(``nightshift train``) and through the DAGs (``dag.test()``), each with a registry of its own.

MplsStops: ~140 stops a local day in America/Chicago, labels (``personSearch``, "YES"/"NO")
three days later as id + outcome only. Before issue 14 every day and every labels file of it was
quarantined and the first model lost to its baseline every night.
"""

from __future__ import annotations

import getpass
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import realdata
from modelkit import model_env, run_dag, task_states
from nightshift.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "tests" / "specs" / f"{realdata.DATASET}.yaml"


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The window's days landed and ingested with ``nightshift ingest --from --to``."""
    from nightshift.spec import load_spec
    from nightshift.storage import Store

    spec = load_spec(SPEC)
    tmp = tmp_path_factory.mktemp("mpls")
    datasets = tmp / "datasets"
    datasets.mkdir()
    shutil.copy(SPEC, datasets / SPEC.name)
    store = Store((tmp / "store").as_uri())
    # a full training window of labelled days: the labels of the last day land `delay` days later
    days = realdata.land(store, realdata.FIRST_DAY, spec.training.window_days + spec.label.delay_days)
    mp = pytest.MonkeyPatch()
    mp.setenv("NIGHTSHIFT_DATASETS_DIR", str(datasets))
    mp.setenv("NIGHTSHIFT_GX_DIR", str(tmp / "gx"))
    mp.setenv("NIGHTSHIFT_STORE_URL", store.url)
    try:
        yield {"spec": spec, "store": store, "days": days, "tmp": tmp}
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def ingested(landed: dict[str, Any]) -> dict[str, Any]:
    first, last = landed["days"][0], landed["days"][-1]
    code = main(["ingest", "--dataset", realdata.DATASET, "--from", str(first), "--to", str(last)])
    return {**landed, "code": code}


def test_every_local_day_and_every_labels_file_ingests_valid(ingested: dict[str, Any]) -> None:
    store, spec, days = ingested["store"], ingested["spec"], ingested["days"]
    assert ingested["code"] == 0
    assert store.list_partitions(store.path("curated", spec.name)) == days
    assert store.list_partitions(store.path("quarantine", spec.name, "events")) == []
    delay = timedelta(days=spec.label.delay_days)
    arrivals = [d + delay for d in days if d + delay <= days[-1]]
    assert store.list_partitions(store.path("labels", spec.name)) == arrivals
    assert store.list_partitions(store.path("quarantine", spec.name, "labels")) == []


def _champion_checks(client: Any, verdict: dict[str, Any]) -> str:
    from nightshift import registry

    version = registry.alias_version(client, realdata.DATASET, "champion")
    assert version is not None
    assert verdict["promote"], verdict["reason"]
    checks = {c["name"]: c for c in verdict["checks"]}
    assert all(c["passed"] for c in checks.values()), [c for c in checks.values() if not c["passed"]]
    assert {"stability", "serving_skew"} <= set(checks)
    return version


def test_the_first_model_trains_and_passes_the_gate_through_the_core(
    ingested: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from nightshift import registry

    tmp = ingested["tmp"]
    with model_env(ingested["store"].url, f"sqlite:///{tmp / 'core-mlflow.db'}", tmp / "core-artifacts"):
        capsys.readouterr()
        assert main(["train", "--dataset", realdata.DATASET]) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        client = registry.configure()
        version = registry.alias_version(client, realdata.DATASET, "champion")
        assert version == "1", out
        (event,) = registry.read_audit(ingested["store"], realdata.DATASET)
        assert (event.action, event.version, event.actor) == ("promote", "1", getpass.getuser())
        mv = client.get_model_version(registry.model_name(realdata.DATASET), "1")
        holdout = client.get_run(mv.run_id).data.metrics["holdout_roc_auc"]
        assert holdout >= ingested["spec"].gate.min_metrics["roc_auc"]
        assert mv.tags["nightshift.model_kind"] in ("xgboost", "logistic")


def test_the_first_model_trains_and_passes_the_gate_through_the_dags(
    ingested: dict[str, Any], airflow_db: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from nightshift import registry

    tmp = ingested["tmp"]
    with model_env(ingested["store"].url, f"sqlite:///{tmp / 'dag-mlflow.db'}", tmp / "dag-artifacts"):
        bag = DagBag(str(ROOT / "dags"))
        assert not bag.import_errors, bag.import_errors
        dr = run_dag(bag.dags[f"nightshift_train.{realdata.DATASET}"])
        assert task_states(dr) == {
            "train": "success",
            "gate": "success",
            "serving_check": "success",
            "review": "success",
            "promote": "success",
        }
        verdict = dr.get_task_instance("gate").xcom_pull(task_ids="gate")
        assert _champion_checks(registry.configure(), verdict) == "1"
        # the champion scores the newest curated day, pinned in every row
        last = ingested["days"][-1]
        score = run_dag(bag.dags[f"nightshift_score.{realdata.DATASET}"], {"dt": last.isoformat()})
        assert task_states(score) == {"score": "success"}
        store = ingested["store"]
        assert store.is_file(store.predictions_file(realdata.DATASET, last))
