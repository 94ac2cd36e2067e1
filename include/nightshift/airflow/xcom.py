"""The one boundary between typed step results and XComs.

A step returns a frozen dataclass (:class:`nightshift.steps.score.ScoreResult` and the like);
its task returns :func:`to_xcom` of it (plain JSON: what the UI shows and a downstream task
pulls), and a task that is handed an XCom to act on reads it back with :func:`from_xcom` (the
notifier and the retrain's ``record`` task still read a few keys of the JSON as it is)."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def to_xcom(result: Any) -> dict[str, Any]:
    """A step result (a dataclass) as JSON-able values: dates as ISO strings, tuples as
    lists, non-finite floats as ``None`` (XComs are JSON)."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        raise TypeError(f"to_xcom takes a step result (a dataclass instance), not {type(result).__name__}")
    out = _plain(dataclasses.asdict(result))
    assert isinstance(out, dict)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def from_xcom(cls: type[T], data: Mapping[str, Any] | T | None) -> T:
    """``cls`` (a step result's dataclass) from what :func:`to_xcom` made of one: nested
    results, tuples and dates are rebuilt from their field types; a key the class does not
    know is ignored (an XCom written by an older or newer release) and a missing one takes the
    field's default. A value that already is a ``cls`` is returned as is."""
    if isinstance(data, cls):
        return data
    if data is None:
        raise ValueError(f"no XCom to read a {cls.__name__} from (did the upstream task return one?)")
    if not isinstance(data, Mapping):
        raise TypeError(f"a {cls.__name__} is read from a mapping, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _typed(hints[f.name], data[f.name])
    return cls(**kwargs)


def _typed(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _typed(inner[0], value) if len(inner) == 1 else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return from_xcom(hint, value)
    if origin is tuple:
        item = args[0] if args else Any
        return tuple(_typed(item, v) for v in value)
    if origin is list:
        return [_typed(args[0] if args else Any, v) for v in value]
    if hint is date and isinstance(value, str):
        return date.fromisoformat(value)
    if hint is float and isinstance(value, int):
        return float(value)
    return value
