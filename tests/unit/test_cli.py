"""The command line: clear messages and exit codes, never a traceback for a known failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from nightshift.cli import main
from nightshift_dev import free_port

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


@pytest.mark.parametrize("command", ["ingest", "score", "replay", "backtest"])
def test_a_range_with_from_after_to_is_bad_usage(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--dataset", "payments", "--from", "2026-01-05", "--to", "2026-01-01"]) == 2
    assert f"nightshift {command}: --from 2026-01-05 is after --to 2026-01-01" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "--from", "2026-01-5", "--to", "2026-01-06"],
        ["ingest", "--from", "2026-01-05"],
        ["score", "--from", "yesterday", "--to", "2026-01-06"],
        ["train", "--as-of", "2026/01/05"],
        ["monitor", "--as-of", "2026-02-30"],
        ["replay", "--to", "2026-01-06"],
        ["backtest", "--from", "2026-01-05"],
        ["backtest", "--from", "2026-13-01", "--to", "2026-12-31"],
        ["ingest", "--dt", "2026-01-05", "--from", "2026-01-05", "--to", "2026-01-06"],
    ],
)
def test_bad_dates_and_missing_ends_are_bad_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is not a date (YYYY-MM-DD)" in err or "required" in err or "not both" in err


@pytest.mark.parametrize("version", ["0", "latest", "v1.5", "-3"])
def test_serve_pinned_to_a_version_that_is_not_one_is_bad_usage(
    version: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--dataset", "payments", "--version", version]) == 2
    err = capsys.readouterr().err
    assert f"nightshift serve: --version must be a positive integer, not {version!r}" in err


def test_replay_against_a_stack_that_is_not_running_names_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    port = free_port()  # nothing listens there
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    # the address comes from what `make up` recorded (no password needed to find out it is down)
    (home / "run" / "stack.json").write_text(json.dumps({"api": f"http://127.0.0.1:{port}", "user": "admin"}))
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(home))
    argv = ["replay", "--dataset", "payments", "--from", "2026-01-01", "--to", "2026-01-02"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"no Airflow API at http://127.0.0.1:{port}" in err and "is the stack up? (make up)" in err
    # and with an explicit --api
    port2 = free_port()
    assert main([*argv, "--api", f"http://127.0.0.1:{port2}/"]) == 1
    assert f"no Airflow API at http://127.0.0.1:{port2} " in capsys.readouterr().err


def test_the_cli_uses_the_running_stacks_mlflow_server_else_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import http.server
    import json
    import threading

    from nightshift import registry
    from nightshift.stack import StackInfo, use_stack_mlflow

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("NIGHTSHIFT_HOME", str(tmp_path))
    (tmp_path / "run").mkdir()
    stack_json = tmp_path / "run" / "stack.json"
    dead = f"http://127.0.0.1:{free_port()}"
    stack_json.write_text(json.dumps({"api": "http://127.0.0.1:1", "mlflow": dead}))
    assert StackInfo.read() == StackInfo(api="http://127.0.0.1:1", mlflow=dead)
    assert use_stack_mlflow() is None  # recorded but not answering: the stack is down
    assert registry.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        live = f"http://127.0.0.1:{server.server_address[1]}"
        stack_json.write_text(json.dumps({"api": "http://127.0.0.1:1", "mlflow": live}))
        assert use_stack_mlflow() == live
        assert registry.tracking_uri() == live
        # an explicit MLFLOW_TRACKING_URI always wins
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
        assert use_stack_mlflow() == "sqlite:///elsewhere.db"
    finally:
        server.shutdown()
        server.server_close()


def test_replay_reads_the_password_of_the_running_stack_from_its_file(tmp_path: Path) -> None:
    from nightshift.stack import CredentialsError, password

    f = tmp_path / "passwords.json"
    with pytest.raises(CredentialsError, match=r"no Airflow password file at .*passwords\.json"):
        password("admin", f)
    f.write_text('{"admin": "x7-not-admin"}')
    assert password("admin", f) == "x7-not-admin"
    with pytest.raises(CredentialsError, match=r"has no password for user 'ops' \(users: admin\)"):
        password("ops", f)


def _landed_day(store: Path, day: str) -> None:
    events = store / "landing" / "payments" / "events" / f"dt={day}"
    events.mkdir(parents=True)
    (events / "part-0.csv").write_text("payment_id,event_time\n")


def test_backtest_of_a_range_with_nothing_landed_names_the_folder_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, out = tmp_path / "store", tmp_path / "bt"
    argv = ["--store", store.as_uri(), "backtest", "--from", "2026-01-01", "--to", "2026-01-03"]
    assert main([*argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "nightshift backtest: no events landed for payments in " in err
    assert "landing/payments/events from 2026-01-01 to 2026-01-03: nothing to replay" in err
    assert not out.exists()


@pytest.mark.parametrize("where", ["inside the store", "the store itself", "a folder of other files"])
def test_backtest_refuses_an_out_folder_it_does_not_own(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    _landed_day(store, "2026-01-01")
    out = {
        "inside the store": store / "bt",
        "the store itself": store,
        "a folder of other files": tmp_path / "mine",
    }[where]
    if where == "a folder of other files":
        out.mkdir()
        (out / "notes.txt").write_text("keep me")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    argv = ["--store", store.as_uri(), "backtest", "--from", "2026-01-01", "--to", "2026-01-01"]
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert ("overlaps the dataset's store" if where != "a folder of other files" else "is not empty") in err
    assert str(out.resolve()) in err
    assert (
        sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    )  # nothing written or removed
