"""Serving skew: the packaged MLflow pyfunc, fed as scoring feeds it, must score the holdout
rows as the in-process booster did at training (``nightshift.evaluate.serving_skew``); and
one example's inference step by step (``nightshift.evaluate.explain``).

The model is a real pyfunc (``nightshift.model.NightshiftModel`` saved and loaded by MLflow),
so the check sees what ``registry.load_model`` would load.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from modelkit import toy_spec, toy_table
from nightshift.evaluate import Evaluation, gate, score_stats, serving_skew, skew_sample
from nightshift.features import FeatureTransform, labels
from nightshift.spec import DatasetSpec, Gate


@pytest.fixture(scope="module")
def toy() -> DatasetSpec:
    return toy_spec()


def _table(n: int, seed: int, first_id: int = 0) -> pa.Table:
    return toy_table(n, seed, first_id=first_id, x_effect=-1.0)


@pytest.fixture(scope="module")
def trained(toy: DatasetSpec, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A booster trained in process, its holdout scores, and the same booster packaged as
    the pipeline packages it: once faithfully, once with its categories reordered."""
    import mlflow.pyfunc
    import xgboost as xgb

    from nightshift.model import BOOSTER, TRANSFORM, NightshiftModel
    from nightshift.model import predict as booster_predict

    train, holdout = _table(3000, 1), _table(1500, 2, first_id=10_000)
    transform = FeatureTransform.from_spec(toy, train)
    dtrain = xgb.DMatrix(
        transform.matrix(train),
        labels(train, toy),
        feature_names=transform.feature_names,
        feature_types=transform.feature_types,
        enable_categorical=True,
    )
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "seed": 0}, dtrain, 30)
    root = tmp_path_factory.mktemp("pyfunc")
    booster_path = root / "booster.ubj"
    booster.save_model(str(booster_path))

    def package(name: str, packaged: FeatureTransform) -> Any:
        transform_path = root / f"{name}-transform.json"
        transform_path.write_text(packaged.to_json())
        mlflow.pyfunc.save_model(
            str(root / name),
            python_model=NightshiftModel(),
            artifacts={BOOSTER: str(booster_path), TRANSFORM: str(transform_path)},
        )
        return mlflow.pyfunc.load_model(str(root / name))

    # a packaging bug of the kind the check exists for: the category codes the booster learnt
    # are not the ones the packaged transform produces
    reordered = dataclasses.replace(transform, categorical={"kind": ("z", "y", "x")})
    return {
        "holdout": holdout,
        "booster": booster,
        "transform": transform,
        "scores": booster_predict(booster, transform, holdout),
        "faithful": package("faithful", transform),
        "skewed": package("skewed", reordered),
    }


def test_the_packaged_model_scores_as_training_did(toy: DatasetSpec, trained: dict[str, Any]) -> None:
    recorded = skew_sample(toy, trained["holdout"], trained["scores"])
    assert len(recorded["positions"]) == 1000 and recorded["positions"] == sorted(recorded["positions"])
    json.dumps(recorded)  # logged as a run artifact
    check = serving_skew(trained["faithful"], trained["holdout"], toy, recorded)
    assert check.name == "serving_skew" and check.passed, check.detail
    assert "on 1000 holdout rows" in check.detail


def test_training_scores_only_the_sampled_rows(toy: DatasetSpec, trained: dict[str, Any]) -> None:
    """Training passes a scoring function (the holdout itself is scored once, by the gate): it
    sees the sampled rows only, and the sample is the one the whole holdout's scores give."""
    from nightshift.model import predict as booster_predict

    asked: list[int] = []

    def score(rows: pa.Table) -> np.ndarray:
        asked.append(rows.num_rows)
        return booster_predict(trained["booster"], trained["transform"], rows)

    recorded = skew_sample(toy, trained["holdout"], score)
    assert asked == [1000]
    whole = skew_sample(toy, trained["holdout"], trained["scores"])
    assert recorded["positions"] == whole["positions"] and recorded["ids"] == whole["ids"]
    np.testing.assert_allclose(recorded["scores"], whole["scores"], rtol=0, atol=1e-12)
    assert serving_skew(trained["faithful"], trained["holdout"], toy, recorded).passed


def test_a_packaged_model_that_scores_differently_fails_the_gate(
    toy: DatasetSpec, trained: dict[str, Any]
) -> None:
    recorded = skew_sample(toy, trained["holdout"], trained["scores"])
    check = serving_skew(trained["skewed"], trained["holdout"], toy, recorded)
    assert not check.passed
    assert "holdout rows score differently in the packaged model than in training" in check.detail
    assert "> 1e-06" in check.detail
    ev = Evaluation("challenger", {"roc_auc": 0.9, "rows": 1500.0, "positives": 500.0}, {}, [], None,
                    score_stats(trained["scores"]))  # fmt: skip
    v = gate(Gate(min_metrics={"roc_auc": 0.5}), ev, None, None, skew=check)
    assert not v.promote
    assert [c.name for c in v.failed] == ["serving_skew"]
    assert v.reason.startswith("rejected: serving_skew: ")


def test_a_difference_beyond_the_tolerance_is_caught(toy: DatasetSpec, trained: dict[str, Any]) -> None:
    recorded = skew_sample(toy, trained["holdout"], trained["scores"])
    recorded["scores"][7] += 5e-6  # what a float32 vs float64 or CPU vs GPU summation could do
    check = serving_skew(trained["faithful"], trained["holdout"], toy, recorded)
    assert not check.passed
    assert check.detail.startswith("1 of 1000 holdout rows")
    assert f"id {recorded['ids'][7]}" in check.detail


def test_other_holdout_rows_are_not_compared_as_if_they_were_the_same(
    toy: DatasetSpec, trained: dict[str, Any]
) -> None:
    recorded = skew_sample(toy, trained["holdout"], trained["scores"])
    shuffled = trained["holdout"].take(pa.array(np.arange(trained["holdout"].num_rows)[::-1]))
    check = serving_skew(trained["faithful"], shuffled, toy, recorded)
    assert not check.passed and "ids differ" in check.detail
    short = trained["holdout"].slice(0, 10)
    assert "the holdout has 10" in serving_skew(trained["faithful"], short, toy, recorded).detail


def test_a_run_without_training_scores_is_reported_not_compared(
    toy: DatasetSpec, trained: dict[str, Any]
) -> None:
    check = serving_skew(trained["faithful"], trained["holdout"], toy, None)
    assert check.passed and check.detail.startswith("not compared")


def test_small_holdouts_are_compared_whole(toy: DatasetSpec, trained: dict[str, Any]) -> None:
    small = trained["holdout"].slice(0, 40)
    recorded = skew_sample(toy, small, trained["scores"][:40])
    assert recorded["positions"] == list(range(40))
    assert serving_skew(trained["faithful"], small, toy, recorded).passed


def test_one_examples_inference_step_by_step(toy: DatasetSpec, trained: dict[str, Any]) -> None:
    from nightshift.evaluate import explain

    rows = trained["holdout"].slice(0, 4)
    rows = rows.set_column(rows.column_names.index("kind"), "kind", pa.array(["z", "x", "unseen", "y"]))
    rows = rows.set_column(rows.column_names.index("a"), "a", pa.array([0.3, None, 1.0, -2.0]))
    out = explain(trained["booster"], trained["transform"], rows)
    assert len(out) == 4
    for e in out:
        assert e["matches"], e
        total = e["bias"] + sum(f["contribution"] for f in e["features"])
        assert total == pytest.approx(e["margin"], abs=1e-5)
        assert e["probability"] == pytest.approx(e["served"], abs=1e-5)
        assert {f["feature"] for f in e["features"]} == {"a", "b", "kind"}
        contributions = [abs(f["contribution"]) for f in e["features"]]
        assert contributions == sorted(contributions, reverse=True)  # what moved the score most first
    kind = [next(f for f in e["features"] if f["feature"] == "kind") for e in out]
    assert [(k["raw"], k["model_input"], k["category"]) for k in kind] == [
        ("z", 2.0, "z"),
        ("x", 0.0, "x"),
        ("unseen", None, None),  # an unknown category is missing for the model
        ("y", 1.0, "y"),
    ]
    a = next(f for f in out[1]["features"] if f["feature"] == "a")
    assert a["raw"] is None and a["model_input"] is None
    json.dumps(out)


def test_a_model_loaded_from_the_registry_leaves_no_copy_behind_and_still_scores(
    toy: DatasetSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow downloads ``runs:/`` and served ``models:/`` URIs to a temporary folder it never
    removes (a package copy per scoring, gate or serve reload); ``registry.load_pyfunc`` deletes
    it, and the model, which read its artifacts in ``load_context``, still scores."""
    import tempfile

    import mlflow
    import mlflow.pyfunc
    import xgboost as xgb

    from nightshift import registry
    from nightshift.model import BOOSTER, TRANSFORM, NightshiftModel
    from nightshift.model import predict as booster_predict

    train = _table(500, 3)
    transform = FeatureTransform.from_spec(toy, train)
    matrix = xgb.DMatrix(
        transform.matrix(train), labels(train, toy), feature_names=transform.feature_names,
        feature_types=transform.feature_types, enable_categorical=True,
    )  # fmt: skip
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, matrix, 5)
    (tmp_path / "booster.ubj").write_bytes(booster.save_raw("ubj"))
    (tmp_path / "transform.json").write_text(transform.to_json())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("leak", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.pyfunc.log_model(
            name="model",
            python_model=NightshiftModel(),
            artifacts={BOOSTER: str(tmp_path / "booster.ubj"), TRANSFORM: str(tmp_path / "transform.json")},
            pip_requirements=["xgboost"],
        )
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    uri = f"runs:/{run.info.run_id}/model"
    mlflow.pyfunc.load_model(uri)
    assert len(list(scratch.iterdir())) == 1  # what MLflow alone leaves behind
    model = registry.load_pyfunc(uri)
    assert len(list(scratch.iterdir())) == 1
    expected = booster_predict(booster, transform, train)
    np.testing.assert_allclose(np.asarray(model.predict(transform.frame(train))), expected, rtol=1e-6)
