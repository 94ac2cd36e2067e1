"""The command line: clear messages and exit codes, never a traceback for a known failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightshift.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_ingest_of_a_day_with_nothing_landed_names_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    spec = str(ROOT / "datasets" / "payments.yaml")
    code = main(
        ["--store", store.as_uri(), "ingest", "--dataset", spec, "--kind", "events", "--dt", "2026-01-05"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "no events files for payments" in err
    assert "landing/payments/events/dt=2026-01-05" in err
