"""The score stage: the champion, resolved once and pinned, scores curated days into
``predictions/`` (one file per day, replaced on a re-score)."""

from __future__ import annotations

from datetime import date
from typing import Any

from nightshift.backends import Backends, as_backends
from nightshift.spec import DatasetSpec
from nightshift.storage import Store


def score_step(backends: Backends | Store, spec: DatasetSpec, days: list[date]) -> dict[str, Any]:
    """Resolve the champion once, pin it, score each day. ``{"champion": None}`` when there is
    no champion yet (nothing is written)."""
    from nightshift import registry
    from nightshift.score import score_partition

    b = as_backends(backends)
    store, client = b.store, b.client
    version = registry.alias_version(client, spec.name, registry.CHAMPION)
    if version is None:
        return {"champion": None, "scored": []}
    model = registry.load_model(spec.name, version)
    scored = [score_partition(store, spec, d, model, version).__dict__ for d in sorted(set(days))]
    return {"champion": version, "scored": scored}
