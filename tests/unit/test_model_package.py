"""The packaged model carries only what it imports (``nightshift.model.CODE``), and that is
enough: a process where nightshift is not installed loads and scores it from the package's own
code. The demo generator stays out of the core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelkit import source_imports, toy_spec, toy_table
from nightshift.features import FeatureTransform, labels
from nightshift.spec import DatasetSpec

PACKAGE = Path(__file__).resolve().parents[2] / "include" / "nightshift"


def _imports(path: Path) -> set[str]:
    """The ``nightshift.*`` modules a file imports (:func:`modelkit.source_imports`)."""
    return {n for n in source_imports(path) if n.startswith("nightshift.")}


def test_the_package_carries_exactly_what_the_model_imports(tmp_path: Path) -> None:
    from nightshift.model import CODE
    from nightshift.steps.train import _code_dir

    copied = sorted(p.name for p in _code_dir(tmp_path).iterdir())
    assert copied == ["__init__.py", "errors.py", "features.py", "logistic.py", "model.py", "spec.py"]
    assert copied == sorted(CODE)
    # ... which is model.py's own imports, transitively (a new one must be carried too)
    seen, todo = {"nightshift.model"}, ["nightshift.model"]
    while todo:
        for module in _imports(PACKAGE / (todo.pop().removeprefix("nightshift.") + ".py")) - seen:
            seen.add(module)
            todo.append(module)
    assert sorted(["__init__.py", *(m.removeprefix("nightshift.") + ".py" for m in seen)]) == copied


def test_the_core_does_not_import_the_demo() -> None:
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.parent.name != "demo"
        and p.name != "cli.py"  # `nightshift generate`, a demo tool by nature (imported in its command)
        and any(m.startswith("nightshift.demo") for m in _imports(p))
    ]
    assert not offenders, f"core modules import the demo package: {offenders}"
    assert (PACKAGE / "demo" / "datagen.py").is_file() and not (PACKAGE / "datagen.py").exists()


@pytest.fixture(scope="module")
def toy() -> DatasetSpec:
    return toy_spec()


# run in a fresh interpreter: every sys.path entry holding a nightshift package (the repo's
# include/, the editable install's path) is taken off before anything imports nightshift, so
# only the models' own code can provide it
_LOAD = r"""
import json, sys
from pathlib import Path
sys.path[:] = [p for p in sys.path if p and not (Path(p) / "nightshift").exists()]
import importlib.util
assert importlib.util.find_spec("nightshift") is None, "nightshift importable without the model"
import mlflow.pyfunc
import pandas as pd
frame = pd.read_parquet(sys.argv[1])
scores = {}
for path in sys.argv[2:]:
    scores[path] = [float(v) for v in mlflow.pyfunc.load_model(path).predict(frame)]
mods = {k: getattr(m, "__file__", None) for k, m in sys.modules.items() if k.split(".")[0] == "nightshift"}
print(json.dumps({"scores": scores, "modules": mods}))
"""


def test_a_packaged_model_loads_and_scores_where_nightshift_is_not_installed(
    toy: DatasetSpec, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    import xgboost as xgb

    from nightshift.evaluate import baseline_fit
    from nightshift.model import BOOSTER, CODE, LOGISTIC_ARTIFACT, TRANSFORM, NightshiftModel, predict
    from nightshift.steps.train import _code_dir

    train, rows = toy_table(1500, 1), toy_table(200, 2)
    transform = FeatureTransform.from_spec(toy, train)
    (tmp_path / "transform.json").write_text(transform.to_json())
    matrix = xgb.DMatrix(
        transform.matrix(train), labels(train, toy), feature_names=transform.feature_names,
        feature_types=transform.feature_types, enable_categorical=True,
    )  # fmt: skip
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "seed": 0}, matrix, 10)
    booster.save_model(str(tmp_path / "booster.ubj"))
    logistic = baseline_fit(transform, train, labels(train, toy), seed=1)
    logistic.save(tmp_path / "logistic.pkl")
    code = str(_code_dir(tmp_path / "pkg"))
    expected: dict[str, np.ndarray] = {}
    for name, model, artifact in (
        ("xgboost", booster, {BOOSTER: str(tmp_path / "booster.ubj")}),
        ("logistic", logistic, {LOGISTIC_ARTIFACT: str(tmp_path / "logistic.pkl")}),
    ):
        mlflow.pyfunc.save_model(
            str(tmp_path / name),
            python_model=NightshiftModel(),
            artifacts={**artifact, TRANSFORM: str(tmp_path / "transform.json")},
            code_paths=[code],
            pip_requirements=["xgboost", "scikit-learn"],
        )
        expected[str(tmp_path / name)] = predict(model, transform, rows)
    transform.frame(rows).to_parquet(tmp_path / "rows.parquet")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", _LOAD, str(tmp_path / "rows.parquet"), *expected],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for path, scores in expected.items():
        np.testing.assert_allclose(got["scores"][path], scores, rtol=1e-6)
    modules = got["modules"]
    assert sorted(modules) == ["nightshift", *(f"nightshift.{m.removesuffix('.py')}" for m in CODE[1:])]
    root = tmp_path.resolve()
    outside = {k: f for k, f in modules.items() if not f or root not in Path(f).resolve().parents}
    assert not outside, f"modules loaded from outside the models' code: {outside}"
