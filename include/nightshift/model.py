"""The packaged model: an XGBoost booster, or the logistic baseline, plus its feature transform,
as an MLflow pyfunc.

Scoring loads ``models:/<name>/<version>`` and calls ``predict(frame)``; the transform inside
the package is the one training used, so nothing outside the model decides column order or
category codes. The kind of model is the artifact the package carries: ``booster``
(``booster.ubj``, XGBoost) or ``logistic`` (``logistic.pkl``, the gate's scikit-learn baseline
when it won); both are fed the same transform's matrix and return the positive class's
probability, so a version of either kind is scored, monitored and checked the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from nightshift.evaluate import LOGISTIC, XGBOOST, LogisticModel
from nightshift.features import FeatureTransform

BOOSTER = "booster"
LOGISTIC_ARTIFACT = "logistic"
TRANSFORM = "transform"


class NightshiftModel(PythonModel):
    """``predict(frame) -> probability of the positive class`` for each row."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[TRANSFORM], encoding="utf-8") as f:
            self.transform = FeatureTransform.from_json(f.read())
        if LOGISTIC_ARTIFACT in context.artifacts:
            self.kind = LOGISTIC
            self.model: Any = LogisticModel.load(context.artifacts[LOGISTIC_ARTIFACT])
            return
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(context.artifacts[BOOSTER])
        booster.set_param({"device": "cpu", "nthread": 0})
        self.kind = XGBOOST
        self.model = booster

    @property
    def booster(self) -> Any:
        """The XGBoost booster (``None`` for a logistic model)."""
        return self.model if self.kind == XGBOOST else None

    # no annotations: MLflow reads predict's type hints as a schema and warns on Any
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return predict(self.model, self.transform, model_input)


def kind_of(model: Any) -> str:
    """``logistic`` for the baseline (:class:`LogisticModel`), else ``xgboost``."""
    return LOGISTIC if isinstance(model, LogisticModel) else XGBOOST


def predict(model: Any, transform: FeatureTransform, data: Any) -> np.ndarray:
    """Probabilities from a booster (best iteration when early-stopped) or the logistic
    baseline, through ``transform``."""
    if isinstance(model, LogisticModel):
        return model.predict(transform.matrix(data))
    import xgboost as xgb

    dm = xgb.DMatrix(
        transform.matrix(data),
        feature_names=transform.feature_names,
        feature_types=transform.feature_types,
        enable_categorical=True,
        nthread=0,
    )
    best = model.attributes().get("best_iteration")
    rng = (0, int(best) + 1) if best is not None else (0, 0)
    return np.asarray(model.predict(dm, iteration_range=rng), dtype=np.float64)
