"""The docker-compose topology without Docker: Postgres, Redis, an S3 server, MLflow and the
Airflow components with CeleryExecutor (a worker on ``default``, one on ``gpu``).

Everything binds 127.0.0.1, runs in its own process group and is stopped by it. Secrets travel in
environment variables and 0600 files, never on a command line (``ps`` shows those to every user).
State lives in one folder (default ``.nightshift/services``): ``topology.json`` (ports, process
ids, secrets; mode 0600), ``env.sh`` (source it to use the ``airflow`` CLI against this topology)
and a log per component under ``logs/``.

    python scripts/services.py up      # make services-up
    python scripts/services.py down    # make services-down
    python scripts/services.py status
    python scripts/services.py purge   # down + delete databases, bucket, secrets (make clean)

Tests use :class:`Topology` directly (own folder, free ports, torn down in ``finally``).
``scripts/services.py`` is the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nightshift_dev import ROOT
from nightshift_dev.env import celery_env

DEFAULT_HOME = ROOT / ".nightshift" / "services"
DEFAULT_PORTS = {"postgres": 55432, "redis": 56379, "s3": 59000, "mlflow": 5000, "api": 8080}
BUCKET = "nightshift"
# start order; stop goes the other way
AIRFLOW_COMPONENTS = ("dag-processor", "scheduler", "triggerer", "api-server", "worker-default", "worker-gpu")
ORDER = ("postgres", "redis", "s3", "mlflow", *AIRFLOW_COMPONENTS)
CELERY = [sys.executable, "-m", "celery", "--app", "airflow.providers.celery.executors.celery_executor.app"]
WORKER_QUEUES = {"worker-default": ("default", 2), "worker-gpu": ("gpu", 1)}
# Celery's "imports": the worker's main process imports them before its prefork pool forks
CELERY_PRELOAD = json.dumps({"imports": ["nightshift.airflow.preload"]})


def pg_bindir() -> Path:
    """Folder of ``initdb``/``postgres``: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (make services-deps)")
    return versions[-1].parent


class Topology:
    """One local deployment: start, stop (also a single component, for fault tests), env."""

    def __init__(self, home: Path = DEFAULT_HOME, ports: dict[str, int] | None = None) -> None:
        self.home = home.resolve()
        self.state_file = self.home / "topology.json"
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        self.ports: dict[str, int] = {**DEFAULT_PORTS, **state.get("ports", {}), **(ports or {})}
        # new secrets make an old cluster's passwords useless: start that one afresh
        self.fresh = not state.get("secrets")
        self.secrets: dict[str, str] = state.get("secrets") or self._new_secrets()
        self.pids: dict[str, int] = state.get("pids", {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = self.home / "logs"

    # ---- settings ---------------------------------------------------------------------------
    @staticmethod
    def _new_secrets() -> dict[str, str]:
        from cryptography.fernet import Fernet

        return {
            "postgres": secrets.token_urlsafe(16),
            "airflow_db": secrets.token_urlsafe(16),
            "mlflow_db": secrets.token_urlsafe(16),
            "redis": secrets.token_urlsafe(16),
            "s3_access_key": "nightshift",
            "s3_secret_key": secrets.token_urlsafe(24),
            "fernet": Fernet.generate_key().decode(),
            "jwt": secrets.token_urlsafe(32),
            "admin": secrets.token_urlsafe(12),
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['mlflow']}"

    @property
    def store_url(self) -> str:
        return f"s3://{BUCKET}/store"

    def _pg_url(self, user: str, password: str, db: str, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{user}:{password}@127.0.0.1:{self.ports['postgres']}/{db}"

    @property
    def pg_dir(self) -> Path:
        """The cluster's folder. As root it must belong to ``postgres`` and be reachable by it,
        which a root-only parent (pytest's tmp) is not: then it lives in the system temp dir."""
        if os.geteuid() != 0:
            return self.home / "postgres"
        tag = hashlib.sha1(str(self.home).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"nightshift-pg-{tag}"

    def s3_credentials(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.secrets["s3_access_key"],
            "aws_secret_access_key": self.secrets["s3_secret_key"],
            "region_name": "us-east-1",
        }

    def airflow_env(self) -> dict[str, str]:
        """What every Airflow component (and the ``airflow`` CLI) needs; connections from env."""
        s, airflow_home = self.secrets, self.home / "airflow"
        aws = {
            "conn_type": "aws",
            "login": s["s3_access_key"],
            "password": s["s3_secret_key"],
            "extra": {"endpoint_url": self.s3_url, "region_name": "us-east-1"},
        }
        return celery_env(
            airflow_home=airflow_home,
            state_home=self.home / "state",
            api_port=self.ports["api"],
            sql_conn=self._pg_url("airflow", s["airflow_db"], "airflow"),
            broker_url=f"redis://:{s['redis']}@127.0.0.1:{self.ports['redis']}/0",
            result_backend=self._pg_url("airflow", s["airflow_db"], "airflow", "db+postgresql+psycopg2"),
            fernet_key=s["fernet"],
            jwt_secret=s["jwt"],
            aws_conn=json.dumps(aws),
            mlflow_url=self.mlflow_url,
            store_url=self.store_url,
            celery_config=CELERY_PRELOAD,
        )

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_TRACKING"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # byte-code caching halves task start-up
        env.pop("NIGHTSHIFT_MLFLOW_ARTIFACTS", None)
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
        return {**env, **self.airflow_env(), **(extra or {})}

    # ---- processes --------------------------------------------------------------------------
    def _save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"ports": self.ports, "secrets": self.secrets, "pids": self.pids}))
        tmp.chmod(0o600)
        tmp.replace(self.state_file)

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                env=env or self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=ROOT,
            )
        self.procs[name] = proc
        self.pids[name] = proc.pid
        self._save()

    def running(self, name: str) -> bool:
        pid = self.pids.get(name)
        if pid is None:
            return False
        proc = self.procs.get(name)
        if proc is not None:
            return proc.poll() is None
        try:
            os.killpg(pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop one component by its process group (SIGKILL if it outlives ``timeout``)."""
        pid = self.pids.pop(name, None)
        proc = self.procs.pop(name, None)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and _group_alive(pid, proc):
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if proc is not None:
                proc.wait(timeout=10)
        self._save()

    def kill(self, name: str) -> None:
        """SIGKILL a component's whole process group at once (a crashed machine)."""
        self.stop(name, signal.SIGKILL, timeout=5)

    def _wait(self, name: str, check: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running(name):
                raise RuntimeError(f"{name} exited while starting; see {self.logs / (name + '.log')}")
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{name} not ready within {timeout:.0f} s; see {self.logs / (name + '.log')}")

    # ---- components -------------------------------------------------------------------------
    def _as_postgres(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start_postgres(self) -> None:
        bindir, data = pg_bindir(), self.pg_dir / "data"
        if self.fresh and self.pg_dir.exists():
            shutil.rmtree(self.pg_dir)
        if not (data / "PG_VERSION").exists():
            self.pg_dir.mkdir(parents=True, exist_ok=True)
            pwfile = self.pg_dir / "pwfile"
            pwfile.write_text(self.secrets["postgres"] + "\n")
            if os.geteuid() == 0:
                shutil.chown(self.pg_dir, "postgres", "postgres")
                shutil.chown(pwfile, "postgres", "postgres")
            pwfile.chmod(0o600)
            out = subprocess.run(
                self._as_postgres(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        "-E",
                        "UTF8",
                        "--auth=scram-sha-256",
                        f"--pwfile={pwfile}",
                        "--no-instructions",
                    ]
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            pwfile.unlink()
            if out.returncode:
                raise RuntimeError(f"initdb failed: {out.stderr[-2000:]}")
        cmd = [str(bindir / "postgres"), "-D", str(data), "-p", str(self.ports["postgres"])]
        cmd += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.pg_dir}"]
        cmd += ["-c", "max_connections=200", "-c", "shared_buffers=64MB"]
        self._spawn("postgres", self._as_postgres(cmd))

        import psycopg2

        superuser = self._pg_url("postgres", self.secrets["postgres"], "postgres", "postgresql")

        def ready() -> bool:
            psycopg2.connect(superuser).close()
            return True

        self._wait("postgres", ready)
        conn = psycopg2.connect(superuser)
        conn.autocommit = True
        with conn.cursor() as cur:
            for db, key in (("airflow", "airflow_db"), ("mlflow", "mlflow_db")):
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (db,))
                if not cur.fetchone():
                    cur.execute(f"CREATE ROLE {db} LOGIN PASSWORD %s", (self.secrets[key],))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if not cur.fetchone():
                    cur.execute(f"CREATE DATABASE {db} OWNER {db}")
        conn.close()

    def start_redis(self) -> None:
        server = shutil.which("redis-server")
        if not server:
            raise RuntimeError("redis-server is not installed: make services-deps (Debian's redis-server)")
        conf = self.home / "redis" / "redis.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"bind 127.0.0.1\nport {self.ports['redis']}\nrequirepass {self.secrets['redis']}\n"
            f'dir {conf.parent}\nsave ""\nappendonly no\ndaemonize no\nprotected-mode yes\n'
        )
        conf.chmod(0o600)
        self._spawn("redis", [server, str(conf)])

        def ready() -> bool:
            import redis

            return bool(
                redis.Redis(host="127.0.0.1", port=self.ports["redis"], password=self.secrets["redis"]).ping()
            )

        self._wait("redis", ready)

    def start_s3(self) -> None:
        ready_flag = self.home / "s3" / "ready"
        cmd = [sys.executable, str(ROOT / "scripts" / "s3server.py"), "--port", str(self.ports["s3"])]
        cmd += ["--data", str(self.home / "s3"), "--ready", str(ready_flag)]
        self._spawn("s3", cmd)
        self._wait("s3", ready_flag.exists)
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.s3_url, **self.s3_credentials())
        if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=BUCKET)

    def start_mlflow(self) -> None:
        env = self._env(
            {
                "MLFLOW_S3_ENDPOINT_URL": self.s3_url,
                "AWS_ACCESS_KEY_ID": self.secrets["s3_access_key"],
                "AWS_SECRET_ACCESS_KEY": self.secrets["s3_secret_key"],
                "AWS_DEFAULT_REGION": "us-east-1",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                # --backend-store-uri's variable: a password on a command line is visible in ps
                "MLFLOW_BACKEND_STORE_URI": self._pg_url("mlflow", self.secrets["mlflow_db"], "mlflow"),
            }
        )
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.ports["mlflow"])]
        cmd += ["--artifacts-destination", f"s3://{BUCKET}/mlflow", "--serve-artifacts", "--workers", "1"]
        self._spawn("mlflow", cmd, env)
        self._wait("mlflow", lambda: _http_ok(f"{self.mlflow_url}/health"), timeout=180)

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the ``airflow`` CLI against this topology."""
        out = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        if check and out.returncode:
            tail = f"{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{tail}")
        return out

    def init_airflow(self) -> None:
        home = self.home / "airflow"
        home.mkdir(parents=True, exist_ok=True)
        pw = home / "passwords.json"
        pw.write_text(json.dumps({"admin": self.secrets["admin"]}))
        pw.chmod(0o600)
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "nightshift_registry", "1", "nightshift registry writes")

    def start_component(self, name: str) -> None:
        py = [sys.executable, "-m", "airflow"]
        if name in WORKER_QUEUES:
            queue, concurrency = WORKER_QUEUES[name]
            cmd = [*py, "celery", "worker", "--queues", queue, "--concurrency", str(concurrency)]
            cmd += ["--celery-hostname", f"{name}@%h", "--skip-serve-logs"]
            self._spawn(name, cmd, self._env({"NIGHTSHIFT_WORKER_NAME": name}))
            return
        args = {
            "dag-processor": ["dag-processor"],
            "scheduler": ["scheduler", "--skip-serve-logs"],
            "triggerer": ["triggerer", "--skip-serve-logs"],
            "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.ports["api"])],
        }[name]
        self._spawn(name, [*py, *args])
        if name == "api-server":
            self._wait(name, lambda: _http_ok(f"{self.api_url}/api/v2/monitor/health"), timeout=180)

    def start_worker(self, name: str) -> None:
        """Start a Celery worker and wait until it answers a ping on the broker."""
        self.start_component(name)
        self._wait(name, lambda: self._worker_ping(name), timeout=120)

    def _worker_ping(self, name: str) -> bool:
        out = subprocess.run(
            [*CELERY, "inspect", "ping", "--timeout", "2", "--destination", f"{name}@{socket.gethostname()}"],
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        return out.returncode == 0 and "pong" in out.stdout

    def up(self) -> None:
        """Start everything in order; on any failure stop what started and re-raise."""
        self.home.mkdir(parents=True, exist_ok=True)
        self._save()
        try:
            self.start_postgres()
            self.start_redis()
            self.start_s3()
            self.start_mlflow()
            self.init_airflow()
            for name in AIRFLOW_COMPONENTS:
                if name in WORKER_QUEUES:
                    self.start_worker(name)
                else:
                    self.start_component(name)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        for name in reversed(ORDER):
            self.stop(name)
        for name in list(self.pids):  # anything else recorded
            self.stop(name)

    def purge(self) -> None:
        """Stop everything and delete the state: databases, bucket snapshot, secrets, logs."""
        self.down()
        shutil.rmtree(self.pg_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)

    def status(self) -> dict[str, bool]:
        return {name: self.running(name) for name in ORDER}

    def write_env_file(self) -> Path:
        """``env.sh`` for a shell: the Airflow CLI and nightshift against this topology."""
        path = self.home / "env.sh"
        lines = [f"export {k}={_shell_quote(v)}" for k, v in self.airflow_env().items()]
        lines.append(f"export PATH={_shell_quote(str(Path(sys.executable).parent))}:$PATH")
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        return path


def _group_alive(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        proc.poll()
    try:
        os.killpg(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=3) as r:
        return bool(r.status == 200)


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


@contextlib.contextmanager
def running(home: Path, ports: dict[str, int] | None = None) -> Iterator[Topology]:
    """The whole topology for the duration of a ``with`` block (torn down even on failure)."""
    topo = Topology(home, ports)
    topo.up()
    try:
        yield topo
    finally:
        topo.down()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["up", "down", "status", "purge"])
    home = Path(os.environ.get("NIGHTSHIFT_SERVICES_HOME", DEFAULT_HOME))
    ap.add_argument("--home", type=Path, default=home)
    args = ap.parse_args()
    topo = Topology(args.home)
    if args.command in ("down", "purge"):
        getattr(topo, args.command)()
        print("services stopped" + (" and their state deleted" if args.command == "purge" else ""))
        return
    if args.command == "status":
        for name, alive in topo.status().items():
            print(f"{name:15} {'running' if alive else '-'}")
        return
    if any(topo.running(n) for n in ORDER):
        sys.exit(f"services already running under {topo.home}: make services-down first")
    topo.up()
    env = topo.write_env_file()
    print(
        f"services up under {topo.home} (CeleryExecutor; workers on 'default' and 'gpu')\n"
        f"  Airflow UI/API  {topo.api_url}   user admin, password in {topo.home / 'airflow/passwords.json'}\n"
        f"  MLflow          {topo.mlflow_url}\n"
        f"  S3 (moto)       {topo.s3_url}   bucket {BUCKET}, store {topo.store_url}\n"
        f"  Postgres        127.0.0.1:{topo.ports['postgres']} (databases airflow, mlflow)\n"
        f"  Redis           127.0.0.1:{topo.ports['redis']}\n"
        f"  source {env} to use the airflow CLI; make services-down stops everything"
    )


if __name__ == "__main__":
    main()
