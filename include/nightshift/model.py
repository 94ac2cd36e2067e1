"""The packaged model: an XGBoost booster plus its feature transform, as an MLflow pyfunc.

Scoring loads ``models:/<name>/<version>`` and calls ``predict(frame)``; the transform inside
the package is the one training used, so nothing outside the model decides column order or
category codes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from nightshift.features import FeatureTransform

BOOSTER = "booster"
TRANSFORM = "transform"


class NightshiftModel(PythonModel):
    """``predict(frame) -> probability of the positive class`` for each row."""

    def load_context(self, context: Any) -> None:
        import xgboost as xgb

        with open(context.artifacts[TRANSFORM], encoding="utf-8") as f:
            self.transform = FeatureTransform.from_json(f.read())
        booster = xgb.Booster()
        booster.load_model(context.artifacts[BOOSTER])
        booster.set_param({"device": "cpu", "nthread": 0})
        self.booster = booster

    # no annotations: MLflow reads predict's type hints as a schema and warns on Any
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return predict(self.booster, self.transform, model_input)


def predict(booster: Any, transform: FeatureTransform, data: Any) -> np.ndarray:
    """Probabilities from a booster through ``transform`` (best iteration when early-stopped)."""
    import xgboost as xgb

    dm = xgb.DMatrix(
        transform.matrix(data),
        feature_names=transform.feature_names,
        feature_types=transform.feature_types,
        enable_categorical=True,
        nthread=0,
    )
    best = booster.attributes().get("best_iteration")
    rng = (0, int(best) + 1) if best is not None else (0, 0)
    return np.asarray(booster.predict(dm, iteration_range=rng), dtype=np.float64)
