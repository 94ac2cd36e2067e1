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

from nightshift.features import FeatureTransform
from nightshift.logistic import LOGISTIC, XGBOOST, LogisticModel

BOOSTER = "booster"
LOGISTIC_ARTIFACT = "logistic"
TRANSFORM = "transform"
# what of the package the packaged model imports to load and predict (this module and its
# imports, transitively): the model's code_paths carry these files and nothing else
CODE = ("__init__.py", "errors.py", "features.py", "logistic.py", "model.py", "spec.py")


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
        # a CPU booster that knows its categorical columns predicts on the matrix itself
        self.inplace = booster.feature_types is not None or not self.transform.categorical

    @property
    def booster(self) -> Any:
        """The XGBoost booster (``None`` for a logistic model)."""
        return self.model if self.kind == XGBOOST else None

    # no annotations: MLflow reads predict's type hints as a schema and warns on Any
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return predict(self.model, self.transform, model_input, inplace=getattr(self, "inplace", False))


def kind_of(model: Any) -> str:
    """``logistic`` for the baseline (:class:`LogisticModel`), else ``xgboost``."""
    return LOGISTIC if isinstance(model, LogisticModel) else XGBOOST


def predict(model: Any, transform: FeatureTransform, data: Any, *, inplace: bool = False) -> np.ndarray:
    """Probabilities from a booster (best iteration when early-stopped) or the logistic
    baseline, through ``transform``.

    ``inplace``: the booster predicts on the float32 matrix itself (``inplace_predict``, no
    DMatrix built: ~0.3 ms less per request, the same scores); only for a booster on the CPU
    that carries its feature types (the packaged model's; a CUDA booster from training would
    copy the matrix through a DMatrix anyway, and warn)."""
    if isinstance(model, LogisticModel):
        return model.predict(transform.matrix(data))
    best = model.attributes().get("best_iteration")
    rng = (0, int(best) + 1) if best is not None else (0, 0)
    if inplace:
        return np.asarray(
            model.inplace_predict(transform.matrix(data), iteration_range=rng), dtype=np.float64
        )
    import xgboost as xgb

    dm = xgb.DMatrix(
        transform.matrix(data),
        feature_names=transform.feature_names,
        feature_types=transform.feature_types,
        enable_categorical=True,
        nthread=0,
    )
    return np.asarray(model.predict(dm, iteration_range=rng), dtype=np.float64)
