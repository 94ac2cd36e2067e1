"""The one feature transform, used identically by training, evaluation and scoring.

A :class:`FeatureTransform` turns a batch (Arrow table or pandas frame) into the float32
matrix XGBoost sees: numeric features as floats (missing → NaN), categorical features as
integer codes in a fixed category order (unknown or missing → NaN), columns in the spec's
order. It is plain data (``to_dict``/``from_dict``), saved next to the booster in the logged
model, so a scored batch goes through exactly the transform the model was trained with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nightshift.errors import DataError
from nightshift.spec import DatasetSpec

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1


class FeatureError(DataError, ValueError):
    """A batch that cannot be turned into features; the message names the columns."""


@dataclass(frozen=True)
class FeatureTransform:
    """Column order, category codes and the types XGBoost needs; JSON-serialisable."""

    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]] = field(default_factory=dict)

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: DatasetSpec, data: pa.Table | None = None) -> FeatureTransform:
        """Categories from the spec; a categorical feature without ``values`` learns its
        categories (sorted) from ``data``, the training split."""
        cats: dict[str, tuple[str, ...]] = {}
        for feat in spec.features.categorical:
            if feat.values is not None:
                cats[feat.name] = tuple(feat.values)
            elif data is not None:
                seen = pc.unique(data.column(feat.name).cast(pa.string())).drop_null()
                cats[feat.name] = tuple(sorted(str(v) for v in seen.to_pylist()))
            else:
                raise FeatureError(
                    f"categorical feature {feat.name!r} has no values in the spec: "
                    "fit the transform on training data"
                )
        return cls(numeric=tuple(f.name for f in spec.features.numeric), categorical=cats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "numeric": list(self.numeric),
            "categorical": {k: list(v) for k, v in self.categorical.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureTransform:
        if data.get("format_version") != FORMAT_VERSION:
            raise FeatureError(f"unsupported feature transform format {data.get('format_version')!r}")
        return cls(
            numeric=tuple(data["numeric"]),
            categorical={k: tuple(v) for k, v in data["categorical"].items()},
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> FeatureTransform:
        return cls.from_dict(json.loads(text))

    # ---- views -----------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def feature_types(self) -> list[str]:
        """XGBoost feature types: ``q`` (quantitative) or ``c`` (categorical codes)."""
        return ["q"] * len(self.numeric) + ["c"] * len(self.categorical)

    # ---- the transform ---------------------------------------------------------------
    def matrix(self, data: pa.Table | pd.DataFrame) -> np.ndarray:
        """The ``(rows, features)`` float32 matrix for ``data``.

        Raises :class:`FeatureError` naming every missing column, and every numeric column
        holding NaN or ±inf values (missing values are nulls; a NaN *value* in stored data
        means something upstream computed garbage, and would silently train as "missing").
        """
        table = _as_table(data)
        missing = [c for c in self.feature_names if c not in table.column_names]
        if missing:
            raise FeatureError(f"batch lacks feature column(s): {', '.join(missing)}")
        out = np.empty((table.num_rows, len(self.feature_names)), dtype=np.float32)
        bad: list[str] = []
        for j, name in enumerate(self.numeric):
            col = table.column(name)
            if not (
                pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)
            ):
                try:
                    col = pc.cast(col, pa.float64())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise FeatureError(f"feature {name!r} is not numeric ({col.type}): {exc}") from None
            values = col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            if pa.types.is_floating(col.type):
                valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
                n_bad = int((~np.isfinite(values[valid])).sum())
                if n_bad:
                    bad.append(f"{name} ({n_bad} NaN/inf)")
            out[:, j] = values  # nulls arrive as NaN from to_numpy
        if bad:
            raise FeatureError(f"non-finite values in numeric feature(s): {', '.join(bad)}")
        for k, (name, categories) in enumerate(self.categorical.items()):
            col = pc.cast(table.column(name), pa.string())
            codes = pc.index_in(col, value_set=pa.array(categories, pa.string()))
            out[:, len(self.numeric) + k] = codes.to_numpy(zero_copy_only=False).astype(np.float32)
        return out

    def frame(self, data: pa.Table | pd.DataFrame) -> pd.DataFrame:
        """The model's input for ``data`` (see :func:`model_input`)."""
        return model_input(data, self.numeric, tuple(self.categorical))

    def signature_schema(self) -> list[tuple[str, str]]:
        """``(column, mlflow type)`` pairs of the model's input."""
        return [(n, "double") for n in self.numeric] + [(n, "string") for n in self.categorical]


def model_input(
    data: pa.Table | pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
) -> pd.DataFrame:
    """The packaged model's input as pandas: features only, in order, numerics as float64 and
    categories as strings (its signature), whatever the source types."""
    table = _as_table(data)
    cols = [pc.cast(table.column(n), pa.float64()) for n in numeric]
    cols += [pc.cast(table.column(n), pa.string()) for n in categorical]
    return pa.table(cols, names=[*numeric, *categorical]).to_pandas()


def _as_table(data: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


def labels(table: pa.Table, spec: DatasetSpec) -> np.ndarray:
    """The label column as 0/1 float32 (1 = ``label.positive``, whether the classes are ints,
    strings or booleans), with an error naming any value that is neither class."""
    lab = spec.label
    col = table.column(lab.column)
    if col.null_count:
        raise FeatureError(f"label {lab.column!r} has {col.null_count} missing value(s)")
    # compared in Arrow, typed: "1" is not 1, and True is not 1
    kind = {"bool": pa.bool_(), "int64": pa.int64(), "string": pa.string()}[lab.dtype]
    same = {
        "bool": pa.types.is_boolean,
        "int64": pa.types.is_integer,
        "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    }[lab.dtype]
    if not same(col.type):
        raise FeatureError(
            f"label {lab.column!r} is {col.type}, but label.positive/negative are {lab.dtype} "
            f"({lab.positive!r}/{lab.negative!r})"
        )
    values = col if col.type == kind else pc.cast(col, kind)
    pos = pc.equal(values, pa.scalar(lab.positive, kind)).to_numpy(zero_copy_only=False)
    neg = pc.equal(values, pa.scalar(lab.negative, kind)).to_numpy(zero_copy_only=False)
    other = int((~(pos | neg)).sum())
    if other:
        raise FeatureError(
            f"label {lab.column!r} has {other} value(s) that are neither "
            f"{lab.positive!r} nor {lab.negative!r}"
        )
    return np.asarray(pos, dtype=np.float32)
