"""What the UI plugin's store route may serve once symlinks are resolved: a real path inside
the store root that the same rules (area, dataset, file type) would serve; never a file that a
link leads to outside the root, nor data or another dataset's report inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nightshift.airflow.plugin import link_value, report_path
from nightshift.storage import Store

REPORT = "reports/payments/drift/dt=2026-05-01/v1-drift.html"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store((tmp_path / "store").as_uri())
    store.write_bytes_atomic(store.path(REPORT), b"<html>drift</html>")
    store.write_bytes_atomic(store.path("reports/refunds/drift/x.html"), b"<html>theirs</html>")
    store.write_bytes_atomic(store.path("curated/payments/dt=2026-05-01/part-0.parquet"), b"DATA")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.html").write_text("SECRET")
    return store


def _link(store: Store, name: str, target: str | Path) -> str:
    path = store.path("reports", "payments", name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)
    return f"reports/payments/{name}"


def test_a_plain_report_is_served_with_its_media_type(store: Store) -> None:
    assert report_path(store, REPORT) == (store.path(REPORT), "text/html; charset=utf-8")
    assert report_path(store, "reports/payments/drift/none.html") is None  # no such file


def test_a_link_to_a_file_outside_the_store_is_refused(store: Store, tmp_path: Path) -> None:
    assert Path("/etc/hostname").exists()
    assert report_path(store, _link(store, "hostname.txt", "/etc/hostname")) is None
    assert report_path(store, _link(store, "secret.html", tmp_path / "outside" / "secret.html")) is None
    assert store.resolve_inside(store.path("reports/payments/hostname.txt")) is None


def test_a_linked_directory_outside_the_store_is_refused(store: Store, tmp_path: Path) -> None:
    _link(store, "linked", tmp_path / "outside")
    assert report_path(store, "reports/payments/linked/secret.html") is None
    _link(store, "etc", "/etc")
    assert report_path(store, "reports/payments/etc/hostname.txt") is None
    # the area itself leads out
    (tmp_path / "outside" / "payments").mkdir()
    (tmp_path / "outside" / "payments" / "secret.html").write_text("SECRET")
    os.rename(store.path("reports"), store.path("reports-real"))
    os.symlink(tmp_path / "outside", store.path("reports"))
    assert report_path(store, "reports/payments/secret.html") is None


def test_a_link_inside_the_store_is_held_to_the_same_rules(store: Store) -> None:
    data = store.path("curated/payments/dt=2026-05-01/part-0.parquet")
    assert report_path(store, _link(store, "data.html", data)) is None  # data behind a report's name
    theirs = store.path("reports/refunds/drift/x.html")
    assert report_path(store, _link(store, "theirs.html", theirs)) is None  # another dataset's
    alias = _link(store, "alias.html", store.path(REPORT))  # the dataset's own report: fine
    assert report_path(store, alias) == (store.path(REPORT), "text/html; charset=utf-8")


def test_a_store_under_a_linked_root_still_serves(tmp_path: Path) -> None:
    real = tmp_path / "real-store"
    real.mkdir()
    os.symlink(real, tmp_path / "linked-store")
    store = Store((tmp_path / "linked-store").as_uri())
    store.write_bytes_atomic(store.path(REPORT), b"<html>drift</html>")
    found = report_path(store, REPORT)
    assert found is not None and found[0] == str(real / REPORT)


@pytest.mark.parametrize(
    ("recorded", "opens"),
    [
        (
            '"http://127.0.0.1:5000/#/experiments/1/runs/abc"',
            "http://127.0.0.1:5000/#/experiments/1/runs/abc",
        ),
        ("/nightshift/store/reports/payments/x.html", "/nightshift/store/reports/payments/x.html"),
        ('"javascript:alert(document.cookie)"', ""),
        ("JaVaScRiPt:alert(1)", ""),
        ("data:text/html,<script>alert(1)</script>", ""),
        ("42", ""),
        (b'"https://mlflow.example/x"', "https://mlflow.example/x"),
    ],
)
def test_an_extra_link_opens_only_http_or_relative_addresses(recorded: str | bytes, opens: str) -> None:
    assert link_value(recorded) == opens
