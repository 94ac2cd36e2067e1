"""The dev toolkit's stack environments (``nightshift_dev.env``): ``scripts/env.sh`` exports
exactly :func:`demo_env` (one source for ``make up``/``make demo``), values a shell would split or
expand survive the trip, and a variable already set wins where the demo lets it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from nightshift_dev import ROOT, free_port
from nightshift_dev.env import demo_env, exports, system_env

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


def _sourced(environ: dict[str, str]) -> dict[str, str]:
    """The environment after ``source scripts/env.sh`` in a bash started with only ``environ``."""
    out = subprocess.run(
        ["bash", "-c", "source scripts/env.sh && env -0"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return dict(line.split("=", 1) for line in out.split("\0") if line)


def test_env_sh_exports_the_demo_environment_and_nothing_else() -> None:
    environ = {**BASE, "PYTHONDONTWRITEBYTECODE": "1"}
    got = _sourced(environ)
    want = demo_env(environ, ROOT)
    assert {k: got.get(k) for k in want} == want
    assert set(got) - set(want) <= set(BASE) | {"PWD", "SHLVL", "_", "OLDPWD"}, set(got) - set(want)
    assert "PYTHONDONTWRITEBYTECODE" not in got  # byte-code caching halves task start-up
    assert want["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8080"
    assert want["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"
    assert (
        want["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        == f"{ROOT}/.nightshift/airflow/passwords.json"
    )


def test_a_variable_already_set_wins_and_odd_characters_survive(tmp_path: Path) -> None:
    home = tmp_path / "a b'c $HOME"
    environ = {
        **BASE,
        "NIGHTSHIFT_HOME": str(home),
        "NIGHTSHIFT_API_PORT": "9123",
        "NIGHTSHIFT_MLFLOW_PORT": "5123",
        "AIRFLOW__CORE__PARALLELISM": "",  # empty counts as unset, as ${X:-default}
        "NIGHTSHIFT_INGEST_SCHEDULE": "0 0 * * *",
    }
    got = _sourced(environ)
    assert got["NIGHTSHIFT_HOME"] == str(home)
    assert got["AIRFLOW_HOME"] == f"{home}/airflow"
    assert got["NIGHTSHIFT_STORE_URL"] == f"file://{home}/store"
    assert got["PATH"] == f"{home}/venv/bin:{BASE['PATH']}"
    assert got["AIRFLOW__API__PORT"] == "9123"
    assert got["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9123/execution/"
    assert got["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5123"
    assert got["AIRFLOW__CORE__PARALLELISM"] == "3"
    assert got["NIGHTSHIFT_INGEST_SCHEDULE"] == "0 0 * * *"
    assert got == {**got, **demo_env(environ, ROOT)}


def test_exports_quote_for_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "env.sh"
    script.write_text(exports({"A": "x y", "B": "it's $HOME `id`", "C": ""}))
    out = subprocess.run(
        [
            "bash",
            "-c",
            f"PYTHONDONTWRITEBYTECODE=1; source {script}; "
            'printf "%s|" "$A" "$B" "$C" "${PYTHONDONTWRITEBYTECODE-unset}"',
        ],
        env={**os.environ},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "x y|it's $HOME `id`||unset|"


def test_a_system_stack_binds_loopback_on_its_own_port_and_database(tmp_path: Path) -> None:
    port = free_port()
    env = system_env(tmp_path, port)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == f"http://127.0.0.1:{port}"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow.db'}"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_group_members_sees_a_whole_process_group_until_it_is_killed() -> None:
    """What AirflowStack.stop checks: a group's live processes, its leader's children
    included (the LocalExecutor workers that outlived their scheduler were such children)."""
    import signal
    import time

    from nightshift_dev.stack import group_members

    leader = subprocess.Popen(["bash", "-c", "sleep 30 & sleep 30; wait"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while len(group_members(leader.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        members = group_members(leader.pid)
        assert leader.pid in members and len(members) == 3, members  # bash and its two sleeps
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(timeout=10)
    deadline = time.monotonic() + 10
    while group_members(leader.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert group_members(leader.pid) == []


def test_every_local_stack_notices_a_finished_task_within_a_second(tmp_path: Path) -> None:
    """``[workers] min_heartbeat_interval`` 1 on the demo, system and Celery stacks: a task's
    supervisor that lost the race between its sockets' EOF and its process's exit sleeps that
    long before it frees the worker's slot (5 s by default). Read back as the supervisor reads it."""
    import sys

    from nightshift_dev.env import HEARTBEAT, celery_env

    celery = celery_env(
        airflow_home=tmp_path, state_home=tmp_path, api_port=free_port(), sql_conn="postgresql://x",
        broker_url="redis://x", result_backend="db+postgresql://x", fernet_key="k", jwt_secret="j",
        aws_conn="{}", mlflow_url="http://127.0.0.1:1", store_url=tmp_path.as_uri(), celery_config="{}",
    )  # fmt: skip
    stacks = {"demo": demo_env(BASE), "system": system_env(tmp_path, free_port()), "celery": celery}
    for name, env in stacks.items():
        assert {k: env.get(k) for k in HEARTBEAT} == HEARTBEAT, name
    read = "from airflow.sdk.execution_time import supervisor; print(supervisor.MIN_HEARTBEAT_INTERVAL)"
    env = {**os.environ, **stacks["system"]}
    out = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "1"
