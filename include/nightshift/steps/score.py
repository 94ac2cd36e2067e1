"""The score stage: the champion, resolved once and pinned, scores curated days into
``predictions/`` (one file per day, replaced on a re-score)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from nightshift.backends import Backends, as_backends
from nightshift.score import ScoreOutcome
from nightshift.spec import DatasetSpec
from nightshift.storage import Store


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring did: the champion version that scored (``None``: no champion yet,
    nothing written) and each day it wrote."""

    champion: str | None
    scored: tuple[ScoreOutcome, ...] = ()

    @property
    def days(self) -> list[str]:
        """The ISO days scored, in order."""
        return [s.dt for s in self.scored]


def score_step(backends: Backends | Store, spec: DatasetSpec, days: list[date]) -> ScoreResult:
    """Resolve the champion once, pin it, score each day. ``champion=None`` when there is
    no champion yet (nothing is written)."""
    from nightshift import registry
    from nightshift.score import score_partition

    b = as_backends(backends)
    store, client = b.store, b.client
    version = registry.alias_version(client, spec.name, registry.CHAMPION)
    if version is None:
        return ScoreResult(champion=None)
    model = registry.load_model(spec.name, version)
    return ScoreResult(
        version, tuple(score_partition(store, spec, d, model, version) for d in sorted(set(days)))
    )
