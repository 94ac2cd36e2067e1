"""The logistic baseline as a model (:class:`LogisticModel`) and the model kinds a version can be.

Apart from :mod:`nightshift.evaluate` (where :func:`nightshift.evaluate.baseline_fit` fits it)
so that the packaged model (:mod:`nightshift.model`) loads it without the gate's code: the
package carries ``model``, ``logistic``, ``features``, ``spec`` and ``errors`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOGISTIC, XGBOOST = "logistic", "xgboost"  # the model kinds a version can be


class LogisticModel:
    """The logistic baseline as a model: a fitted scikit-learn pipeline on the transform's matrix
    (each numeric feature imputed with its median + a missing indicator, then standardised;
    each categorical code one-hot, missing/unknown its own column), one transformer per feature
    so every output column belongs to one feature (its contributions add up exactly)."""

    kind = LOGISTIC

    def __init__(self, pipeline: Any, features: list[str]) -> None:
        self.pipeline = pipeline
        self.features = list(features)
        self._linear: _Linear | bool | None = None  # built on the first predict (False: none)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class for the transform's matrix ``x``.

        Computed from the fitted pipeline's own numbers (:class:`_Linear`: medians, means,
        scales, coefficients, in the pipeline's float32 steps): ~0.1 ms for a row, where
        ``predict_proba`` through one transformer per feature takes ~20 ms on the demo's 23
        (a served model answers in milliseconds). A pipeline those numbers do not reproduce
        on probe rows within 1e-9 is called as itself."""
        if self._linear is None:
            self._linear = _Linear.of(self.pipeline, len(self.features)) or False
        if isinstance(self._linear, _Linear):
            return self._linear.predict(x)
        return np.asarray(self.pipeline.predict_proba(x)[:, 1], dtype=np.float64)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """``(rows, features + 1)`` log-odds contributions, the bias last (XGBoost's
        ``pred_contribs`` layout): feature j's is the sum of coefficient * value over its own
        standardised / one-hot columns, so a row's contributions + bias = its margin."""
        import scipy.sparse as sp

        pre, lr = self.pipeline[0], self.pipeline[-1]
        z = pre.transform(x)
        z = z.tocsc() if sp.issparse(z) else np.asarray(z)
        coef = np.asarray(lr.coef_[0], dtype=np.float64)
        out = np.zeros((x.shape[0], len(self.features) + 1), dtype=np.float64)
        for j in range(len(self.features)):
            cols = pre.output_indices_[f"f{j}"]
            out[:, j] = np.asarray(z[:, cols] @ coef[cols]).reshape(-1)
        out[:, -1] = float(lr.intercept_[0])
        return out

    def weights(self) -> dict[str, float]:
        """Per feature: the sum of |coefficient| over its standardised / one-hot columns (a
        numeric one's is |coefficient * standard deviation| in its own units)."""
        pre, lr = self.pipeline[0], self.pipeline[-1]
        coef = np.abs(np.asarray(lr.coef_[0], dtype=np.float64))
        return {f: float(coef[pre.output_indices_[f"f{j}"]].sum()) for j, f in enumerate(self.features)}

    def save(self, path: Path) -> None:
        """Pickle the scikit-learn pipeline (served with the same scikit-learn version)."""
        import pickle

        with open(path, "wb") as f:
            pickle.dump({"pipeline": self.pipeline, "features": self.features}, f, protocol=5)

    @classmethod
    def load(cls, path: str | Path) -> LogisticModel:
        import pickle

        with open(path, "rb") as f:
            data = pickle.load(f)  # our own artifact, logged by the gate
        return cls(data["pipeline"], data["features"])


@dataclass(frozen=True)
class _Linear:
    """:func:`baseline_fit`'s pipeline as arrays. Numeric feature j (median imputation, a
    missing indicator where training had missing values, standardisation, in float32 as
    scikit-learn computes them on the float32 matrix): ``coef * (x - mean) / scale`` of the
    value and of the indicator; categorical feature k: one coefficient per code (missing is -1,
    an unknown code none), then the intercept and the logistic function."""

    numeric: int
    median: np.ndarray  # float32, per numeric feature
    mean: np.ndarray  # float32 (2, numeric): the value's, the indicator's (0 without one)
    scale: np.ndarray  # float32 (2, numeric) (1 without an indicator)
    coef: np.ndarray  # (2, numeric) (0 without an indicator)
    tables: tuple[np.ndarray, ...]  # per categorical feature: coefficients of codes -1, 0, 1, ...
    intercept: float

    @classmethod
    def of(cls, pipeline: Any, features: int) -> _Linear | None:
        """The arrays of a fitted pipeline, or ``None`` if it is not one :func:`baseline_fit`
        makes, or if they do not reproduce its probabilities on probe rows within 1e-9."""
        try:
            pre, lr = pipeline[0], pipeline[-1]
            coef = np.asarray(lr.coef_[0], dtype=np.float64)
            median: list[np.float32] = []
            mean: list[list[float]] = []
            scale: list[list[float]] = []
            w: list[list[float]] = []
            tables: list[np.ndarray] = []
            for j in range(features):
                sub, cols = pre.named_transformers_[f"f{j}"], pre.output_indices_[f"f{j}"]
                if type(sub[-1]).__name__ == "StandardScaler":
                    imp, sc = sub[0], sub[-1]
                    width = cols.stop - cols.start
                    if width not in (1, 2) or len(tables):
                        return None
                    median.append(np.float32(imp.statistics_[0]))
                    mean.append([sc.mean_[0], sc.mean_[1] if width == 2 else 0.0])
                    scale.append([sc.scale_[0], sc.scale_[1] if width == 2 else 1.0])
                    w.append([coef[cols.start], coef[cols.start + 1] if width == 2 else 0.0])
                else:  # imputer (-1) + one-hot of the codes -1, 0, 1, ...
                    codes = np.asarray(sub[-1].categories_[0])
                    if not np.array_equal(codes, np.arange(-1, len(codes) - 1)):
                        return None
                    tables.append(coef[cols])
            n = len(median)
            linear = cls(
                n,
                np.asarray(median, dtype=np.float32),
                np.asarray(mean, dtype=np.float64).reshape(n, 2).T.astype(np.float32),
                np.asarray(scale, dtype=np.float64).reshape(n, 2).T.astype(np.float32),
                np.asarray(w, dtype=np.float64).reshape(n, 2).T.copy(),
                tuple(tables),
                float(lr.intercept_[0]),
            )
            probe = linear._probe(features)
            expected = np.asarray(pipeline.predict_proba(probe)[:, 1], dtype=np.float64)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            return None
        return linear if np.allclose(linear.predict(probe), expected, rtol=0.0, atol=1e-9) else None

    def _probe(self, features: int) -> np.ndarray:
        """Rows with every value kind: missing, zero, small and large numbers, each code."""
        values = np.asarray([np.nan, 0.0, 1.0, -3.5, 1234.5, 0.25], dtype=np.float32)
        rows = max(len(values), *(len(t) for t in self.tables)) if self.tables else len(values)
        x = np.empty((rows, features), dtype=np.float32)
        for j in range(self.numeric):
            x[:, j] = np.roll(np.resize(values, rows), j)
        for k, table in enumerate(self.tables):
            codes = np.resize(np.arange(-1, len(table) - 1, dtype=np.float32), rows)
            x[:, self.numeric + k] = np.where(codes < 0, np.nan, np.roll(codes, k))
        return x

    def predict(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        x = np.asarray(x, dtype=np.float32)
        num = x[:, : self.numeric]
        missing = np.isnan(num)
        # scikit-learn's steps on the float32 matrix: impute, then - mean and / scale in float32
        parts = (np.where(missing, self.median, num), missing.astype(np.float32))
        margin = np.full(x.shape[0], self.intercept, dtype=np.float64)
        for i, v in enumerate(parts):
            z = (v - self.mean[i]) / self.scale[i]
            margin += z.astype(np.float64) @ self.coef[i]
        for k, table in enumerate(self.tables):
            codes = x[:, self.numeric + k]
            idx = np.where(np.isnan(codes), 0, codes + 1).astype(np.int64)
            known = (idx >= 0) & (idx < len(table))
            margin += np.where(known, table[np.clip(idx, 0, len(table) - 1)], 0.0)
        return np.asarray(expit(margin), dtype=np.float64)
