"""The deployment files obey their rules, checked without a Docker engine.

``docker-compose.yaml`` is parsed with PyYAML (merge keys included) and checked by small pure
helpers: images pinned to an exact tag (or built from the local Dockerfile), a healthcheck on
every long-running service, ``depends_on`` naming real services with a condition, no secret
written into the file nor put on a command line, every ``${VAR}`` documented in ``.env.example``
(which holds no working secret), the ``gpu`` queue served by the GPU worker only, published ports
on 127.0.0.1, MinIO's root keys for MinIO alone. The helpers are also run against small bad
compose documents: each rule must be able to fail. The Dockerfile's base tag must match the
pinned ``apache-airflow``, and ``requirements/docker.txt`` must be what ``uv export`` makes of
``uv.lock`` today. The MinIO init script runs against a stand-in ``mc`` that records its calls
(no MinIO here), and the Redis command against the real ``redis-server``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nightshift_dev import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements" / "docker.txt"
INIT_DB_SCRIPT = ROOT / "deploy" / "postgres" / "init-databases.sh"
MINIO_INIT_SCRIPT = ROOT / "deploy" / "minio" / "init.sh"
MINIO_ROOT = ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD")
UV = ROOT / ".nightshift" / "uv" / "bin" / "uv"
UV_EXPORT = [
    "export",
    "--frozen",
    "--no-dev",
    "--no-emit-project",
    "--no-hashes",
    "--format",
    "requirements.txt",
]

SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|FERNET|JWT", re.IGNORECASE)
PLACEHOLDERS = {"", "change-me", "changeme", "change_me", "CHANGE-ME", "CHANGE_ME"}
ONE_SHOT_SUFFIX = "-init"
CONDITIONS = {"service_healthy", "service_completed_successfully"}
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BRACED = re.compile(rf"\$\{{({_NAME})(?:(:?[-?+])([^}}]*))?\}}")
_BARE = re.compile(rf"\$({_NAME})")
_URI_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://((?:\$\{[^}]*\}|[^/\s@'\"])+)@")
_SECRET_FLAGS = ("--requirepass", "--password", "--masterauth")
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
_ASSIGNMENTS = re.compile(r"^\s*(?:export\s+)?(?:\w+=(?:\"[^\"]*\"|'[^']*'|\S*)\s*)+")
_SHELL_VAR = re.compile(rf"\$\$\{{?({_NAME})")


# ---- helpers (pure: a compose document in, a list of problems out) ---------------------------
def interpolations(text: str) -> list[str]:
    """Names of the variables compose interpolates in ``text`` (``$$`` is a literal dollar)."""
    names: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            i += 1
        elif text.startswith("$$", i):
            i += 2
        elif m := _BRACED.match(text, i) or _BARE.match(text, i):
            names.append(m.group(1))
            i = m.end()
        else:
            i += 1
    return names


def is_interpolation(value: Any) -> bool:
    """The whole value is one ``${VAR}`` / ``${VAR:?msg}`` / ``${VAR:-x}`` expression."""
    return isinstance(value, str) and _BRACED.fullmatch(value.strip()) is not None


def is_reference(value: str) -> bool:
    """A compose interpolation, or a variable of the container's shell (``$${VAR}``, ``$$VAR``)."""
    return is_interpolation(value) or re.fullmatch(rf"\$\$(\{{{_NAME}\}}|{_NAME})", value) is not None


def strings(obj: Any) -> Iterator[str]:
    """Every string in a parsed YAML document, keys included."""
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from strings(item)


def environment(service: dict[str, Any]) -> dict[str, Any]:
    """A service's ``environment`` as a mapping (the list form ``K=V`` too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = [item.split("=", 1) if "=" in item else [item, None] for item in env]
        return {key: value for key, value in pairs}
    return dict(env)


def command_tokens(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def is_one_shot(name: str) -> bool:
    return name.endswith(ONE_SHOT_SUFFIX)


def has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    test = check.get("test")
    return bool(test) and not check.get("disable") and test not in (["NONE"], "NONE")


def image_is_pinned(image: str) -> bool:
    """An exact tag: a digest, a ``RELEASE.*`` tag, or at least ``major.minor`` (no latest)."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag or "$" in tag or tag == "latest":
        return False
    return bool(re.match(r"RELEASE\.", tag) or re.match(r"v?\d+\.\d+", tag))


def builds_local_dockerfile(service: dict[str, Any], root: Path = ROOT) -> bool:
    build = service.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        return False
    context = root / build.get("context", ".")
    return context.resolve() == root.resolve() and (context / build.get("dockerfile", "Dockerfile")).is_file()


def image_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services.items():
        if builds_local_dockerfile(svc):
            continue
        image = svc.get("image")
        if not image:
            problems.append(f"{name}: neither an image nor a build of ./Dockerfile")
        elif not image_is_pinned(image):
            problems.append(f"{name}: image {image!r} is not pinned to an exact tag")
    return problems


def healthcheck_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services.items():
        if is_one_shot(name):
            if svc.get("restart") not in (None, "no", False):
                problems.append(f"{name}: a one-shot job must not restart (restart: {svc['restart']!r})")
        elif not has_healthcheck(svc):
            problems.append(f"{name}: long-running service without a healthcheck")
    return problems


def depends_on_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):
            problems.append(f"{name}: depends_on as a list has no conditions: {deps}")
            continue
        for dep, spec in deps.items():
            condition = (spec or {}).get("condition")
            if dep not in services:
                problems.append(f"{name}: depends_on {dep!r}, which is not a service")
            elif dep == name:
                problems.append(f"{name}: depends on itself")
            elif condition not in CONDITIONS:
                problems.append(f"{name}: depends_on {dep!r} without a condition in {sorted(CONDITIONS)}")
            elif is_one_shot(dep) and condition != "service_completed_successfully":
                problems.append(f"{name}: one-shot {dep!r} must be service_completed_successfully")
            elif not is_one_shot(dep) and condition != "service_healthy":
                problems.append(f"{name}: long-running {dep!r} must be service_healthy")
            elif condition == "service_healthy" and not has_healthcheck(services[dep]):
                problems.append(f"{name}: waits for {dep!r} to be healthy, but it has no healthcheck")
    return problems


def uri_credential_problems(text: str, where: str) -> list[str]:
    """``scheme://user:password@host``: user and password must be interpolations (or empty)."""
    problems = []
    for m in _URI_USERINFO.finditer(text):
        for part in _split_userinfo(m.group(1)):
            if part and not is_reference(part):
                problems.append(f"{where}: literal credential {part!r} in a connection string")
    return problems


def _split_userinfo(userinfo: str) -> list[str]:
    """Split ``${USER:?msg}:${PASS}`` at the colon between the two parts, not inside them."""
    depth = 0
    for i, ch in enumerate(userinfo):
        if ch == "{" and userinfo[i - 1 : i] == "$":
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
        elif ch == ":" and depth == 0:
            return [userinfo[:i], userinfo[i + 1 :]]
    return [userinfo]


def connection_json_problems(value: str, where: str) -> list[str]:
    """An Airflow JSON connection: ``login``, ``password`` and secret-named extras interpolated."""
    counter = itertools.count()
    masked = _BRACED.sub(lambda _: f"__interp_{next(counter)}__", value)
    try:
        conn = json.loads(masked)
    except json.JSONDecodeError as exc:
        return [f"{where}: not valid JSON ({exc})"]
    fields = {"login": conn.get("login"), "password": conn.get("password")}
    fields.update({k: v for k, v in (conn.get("extra") or {}).items() if SECRET_NAME.search(k)})
    return [
        f"{where}: {key} is a literal, not a ${{...}} interpolation"
        for key, field in fields.items()
        if field and not re.fullmatch(r"__interp_\d+__", str(field))
    ]


def secret_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in doc.get("services", {}).items():
        for key, value in environment(svc).items():
            where = f"{name}: {key}"
            if value is None:
                continue  # passed through from the caller's environment
            if SECRET_NAME.search(key) and not key.endswith("_FILE") and not is_interpolation(value):
                problems.append(f"{where} is a literal, not a ${{...}} interpolation")
            if key.startswith("AIRFLOW_CONN_") and str(value).lstrip().startswith("{"):
                problems.extend(connection_json_problems(str(value), where))
        problems.extend(command_line_problems(name, svc))
    for text in strings(doc):
        problems.extend(uri_credential_problems(text, "compose"))
    return problems


def command_lines(service: dict[str, Any]) -> list[list[str]]:
    """What a service runs: entrypoint + command, and the healthcheck's test, as token lists."""
    lines = [command_tokens({"command": service.get("entrypoint")}) + command_tokens(service)]
    test = (service.get("healthcheck") or {}).get("test")
    if test:
        lines.append(command_tokens({"command": test}))
    return [line for line in lines if line]


def command_line_problems(name: str, service: dict[str, Any]) -> list[str]:
    """A secret on a command line is readable by every process on the host (``ps``): no secret
    flag, no secret-named ``${VAR}`` in an argument, and in a shell script (``sh -c``) no
    secret-named ``$${VAR}`` outside an environment assignment or a here-document."""
    problems = []
    for tokens in command_lines(service):
        for i, token in enumerate(tokens):
            flag = token.partition("=")[0]
            if flag in _SECRET_FLAGS:
                problems.append(f"{name}: {flag} puts a secret on the command line")
            secret = [v for v in interpolations(token) if SECRET_NAME.search(v)]
            if secret:
                problems.append(f"{name}: ${{{secret[0]}}} is interpolated into the command line")
            if i > 0 and tokens[i - 1] in ("-c", "CMD-SHELL"):
                problems.extend(f"{name}: {p}" for p in shell_secret_problems(token))
    return problems


def shell_secret_problems(script: str) -> list[str]:
    """Secret-named variables that a shell script passes as arguments (``$$`` is compose's
    escape of ``$``). Allowed: ``VAR="$${SECRET}" cmd`` and here-document bodies (stdin)."""
    problems, delimiter = [], None
    for line in script.splitlines():
        if delimiter is not None:
            if line.strip() == delimiter:
                delimiter = None
            continue
        if m := _HEREDOC.search(line):
            delimiter = m.group(2)
        command = _ASSIGNMENTS.sub("", line)
        for var in _SHELL_VAR.findall(command):
            if SECRET_NAME.search(var):
                problems.append(f"${var} is an argument in {line.strip()!r}")
    return problems


def root_credential_problems(
    doc: dict[str, Any], allowed: tuple[str, ...] = ("minio", "minio-init")
) -> list[str]:
    """MinIO's root keys only where MinIO is run and set up; clients get scoped users."""
    problems = []
    for name, svc in (doc.get("services") or {}).items():
        used = {v for text in strings(svc) for v in interpolations(text)} & set(MINIO_ROOT)
        if used and name not in allowed:
            problems.append(f"{name}: gets MinIO's root credentials ({', '.join(sorted(used))})")
    return problems


def parse_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip().strip("'\"")
    return values


def env_example_problems(doc: dict[str, Any], env: dict[str, str]) -> list[str]:
    problems = []
    used = {name for text in strings(doc) for name in interpolations(text)}
    for name in sorted(used - env.keys()):
        problems.append(f"${{{name}}} is used in the compose file but not listed in .env.example")
    for key, value in env.items():
        if SECRET_NAME.search(key) and value not in PLACEHOLDERS:
            problems.append(f".env.example: {key} holds a value that could work ({value[:4]}...)")
    return problems


def queues(tokens: list[str]) -> set[str] | None:
    """The ``--queues``/``-q`` of an ``airflow celery worker`` command; None if not a worker."""
    if "celery" not in tokens or "worker" not in tokens:
        return None
    for i, token in enumerate(tokens):
        if token in ("--queues", "-q") and i + 1 < len(tokens):
            return set(tokens[i + 1].split(","))
        if token.startswith("--queues="):
            return set(token.split("=", 1)[1].split(","))
    return {"default"}


def has_nvidia_reservation(service: dict[str, Any]) -> bool:
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    devices = reservations.get("devices") or []
    return any(d.get("driver") == "nvidia" and "gpu" in (d.get("capabilities") or []) for d in devices)


def gpu_problems(services: dict[str, Any], gpu_worker: str = "worker-gpu") -> list[str]:
    """The ``gpu`` queue is served by ``gpu_worker`` (and any other worker with an NVIDIA
    reservation), each consuming ``gpu`` only; no worker without a GPU takes training."""
    problems = []
    if "gpu" not in (queues(command_tokens(services.get(gpu_worker, {}))) or set()):
        problems.append(f"{gpu_worker}: no such Celery worker on the gpu queue")
    for name, svc in services.items():
        q = queues(command_tokens(svc))
        if q is None or "gpu" not in q:
            continue
        if q != {"gpu"}:
            problems.append(f"{name}: a GPU worker must consume the gpu queue only, not {sorted(q)}")
        if not has_nvidia_reservation(svc):
            problems.append(f"{name}: consumes the gpu queue without an NVIDIA device reservation")
    return problems


def port_problems(services: dict[str, Any]) -> list[str]:
    problems = []
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            host_ip = port.get("host_ip") if isinstance(port, dict) else None
            if isinstance(port, (str, int)):
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
            if host_ip != "127.0.0.1":
                problems.append(f"{name}: port {port!r} is not bound to 127.0.0.1")
    return problems


def compose_problems(doc: dict[str, Any], env: dict[str, str]) -> list[str]:
    services = doc.get("services") or {}
    return (
        image_problems(services)
        + healthcheck_problems(services)
        + depends_on_problems(services)
        + secret_problems(doc)
        + env_example_problems(doc, env)
        + gpu_problems(services)
        + port_problems(services)
        + root_credential_problems(doc)
    )


# ---- the real files ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict) and doc.get("services"), "docker-compose.yaml has no services"
    return doc


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ENV_EXAMPLE.read_text())


def airflow_version() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d.split("==", 1)[1].strip() for d in deps if re.match(r"apache-airflow\s*==", d)]
    assert len(pins) == 1, f"pyproject.toml pins apache-airflow {len(pins)} time(s)"
    return pins[0]


def test_compose_obeys_every_rule(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    assert compose_problems(compose, env_example) == []


def test_compose_has_the_topology(compose: dict[str, Any]) -> None:
    expected = {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "mlflow",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "worker-gpu",
        "model-server",
    }
    assert expected <= compose["services"].keys()
    published = {name for name, svc in compose["services"].items() if svc.get("ports")}
    assert published == {"airflow-apiserver", "mlflow", "minio", "model-server"}


def test_airflow_services_share_one_environment(compose: dict[str, Any]) -> None:
    services = compose["services"]
    airflow = [n for n in services if n.startswith("airflow-") or n == "worker-gpu"]
    envs = {n: environment(services[n]) for n in airflow}
    shared = envs["airflow-scheduler"]
    for name, env in envs.items():
        assert {k: env.get(k) for k in shared} == shared, f"{name} differs from the shared Airflow env"
    assert shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert shared["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert shared["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "default"
    assert shared["AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"] == "1"  # as nightshift_dev.env.HEARTBEAT
    assert shared["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert shared["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")
    assert shared["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://:${REDIS_PASSWORD")
    assert shared["AIRFLOW_CONN_MLFLOW_DEFAULT"] == "http://mlflow:5000"
    assert shared["NIGHTSHIFT_STORE_URL"].startswith("s3://${NIGHTSHIFT_BUCKET")
    aws = json.loads(_BRACED.sub("x", shared["AIRFLOW_CONN_AWS_DEFAULT"]))
    assert aws["conn_type"] == "aws"
    # the scoped MinIO user of minio-init, not the root keys
    assert '"login": "${MINIO_APP_USER:?' in shared["AIRFLOW_CONN_AWS_DEFAULT"]
    assert '"password": "${MINIO_APP_PASSWORD:?' in shared["AIRFLOW_CONN_AWS_DEFAULT"]
    assert aws["extra"] == {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"}
    assert environment(services["worker-gpu"])["NIGHTSHIFT_DEVICE"] == "auto"


def test_init_jobs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init = " ".join(command_tokens(services["airflow-init"]))
    assert "airflow db migrate" in init
    assert "airflow pools set nightshift_registry 1" in init
    assert "AIRFLOW_ADMIN_PASSWORD" in environment(services["airflow-init"])
    assert "AIRFLOW_ADMIN_PASSWORD" not in environment(services["airflow-apiserver"])
    minio_init = services["minio-init"]
    assert "./deploy/minio/init.sh:/opt/nightshift/minio-init.sh:ro" in minio_init["volumes"]
    assert command_lines(minio_init) == [["/bin/sh", "/opt/nightshift/minio-init.sh"]]
    env = environment(minio_init)
    assert env["MC_HOST_nightshift"].startswith("http://${MINIO_ROOT_USER:?")
    assert env["MC_HOST_nightshift"].endswith("@minio:9000")
    for name in (
        "NIGHTSHIFT_BUCKET",
        "MINIO_APP_USER",
        "MINIO_APP_PASSWORD",
        "MINIO_MLFLOW_USER",
        "MINIO_MLFLOW_PASSWORD",
    ):
        assert env[name].startswith(f"${{{name}:?"), name
    mounts = services["postgres"]["volumes"]
    assert any(
        m.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/") for m in mounts
    )


def test_mlflow_server(compose: dict[str, Any]) -> None:
    mlflow = compose["services"]["mlflow"]
    tokens = command_tokens(mlflow)
    assert tokens[:2] == ["mlflow", "server"]
    assert "--serve-artifacts" in tokens
    assert any(
        re.fullmatch(r"--artifacts-destination=s3://\$\{NIGHTSHIFT_BUCKET[^}]*\}/mlflow", t) for t in tokens
    )
    env = environment(mlflow)
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert env["MLFLOW_BACKEND_STORE_URI"].endswith("@postgres:5432/mlflow")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["AWS_ACCESS_KEY_ID"].startswith("${MINIO_MLFLOW_USER:?")
    assert env["AWS_SECRET_ACCESS_KEY"].startswith("${MINIO_MLFLOW_PASSWORD:?")
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_model_server(compose: dict[str, Any]) -> None:
    """``nightshift serve`` on the project image: the port on the host's 127.0.0.1, ready
    (healthy) once it serves a champion, after MLflow is healthy; the scoped MinIO user only."""
    server = compose["services"]["model-server"]
    assert builds_local_dockerfile(server) and server["image"] == compose["services"]["mlflow"]["image"]
    assert command_lines(server)[0] == [
        "/usr/bin/dumb-init", "--", "nightshift", "serve", "--dataset", "payments",
        "--host", "0.0.0.0", "--port", "8090",
    ]  # fmt: skip
    assert server["ports"] == ["127.0.0.1:8090:8090"]
    assert server["healthcheck"]["test"][-1] == "http://localhost:8090/health"
    assert server["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    env = environment(server)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["AWS_ACCESS_KEY_ID"].startswith("${MINIO_APP_USER:?")
    assert env["AWS_SECRET_ACCESS_KEY"].startswith("${MINIO_APP_PASSWORD:?")
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["NIGHTSHIFT_STORE_URL"].startswith("s3://${NIGHTSHIFT_BUCKET")


def test_env_example_documents_generation(env_example: dict[str, str]) -> None:
    text = ENV_EXAMPLE.read_text()
    assert "Fernet.generate_key()" in text
    assert "secrets.token_urlsafe(32)" in text
    assert env_example["AIRFLOW_UID"] == "50000"
    assert env_example["AIRFLOW_FERNET_KEY"] == "" and env_example["AIRFLOW_JWT_SECRET"] == ""


def test_no_env_file_reaches_git_or_the_image() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", ".env"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert tracked.stdout.strip() == "", ".env (the real secrets) is committed"
    ignored = DOCKERIGNORE.read_text().splitlines()
    for entry in ("*", ".env", ".git", ".nightshift"):
        assert entry in ignored, f".dockerignore does not exclude {entry}"


def test_dockerfile_base_matches_pyproject() -> None:
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert froms == [f"apache/airflow:{airflow_version()}-python3.12"]


def test_dockerfile_installs_the_lock_then_the_project() -> None:
    text = DOCKERFILE.read_text()
    assert "pip install --no-cache-dir -r /opt/nightshift/requirements.txt" in text
    assert "COPY --chown=airflow:0 requirements/docker.txt /opt/nightshift/requirements.txt" in text
    assert re.search(r"pip install --no-cache-dir --no-deps .*/opt/nightshift/src", text)
    assert "NIGHTSHIFT_DATASETS_DIR=/opt/nightshift/datasets" in text
    assert "NIGHTSHIFT_GX_DIR=/opt/nightshift/great_expectations" in text
    last_user = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)[-1]
    assert last_user == "airflow"


def _requirements_body(text: str) -> list[str]:
    """Drop uv's header (it names the output file) and keep the rest verbatim."""
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return lines


def test_docker_requirements_match_the_lock() -> None:
    if not UV.exists():
        pytest.skip(f"no uv at {UV} (make venv installs it)")
    out = subprocess.run(
        [str(UV), *UV_EXPORT], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    fresh = _requirements_body(out.stdout)
    assert fresh, "uv export printed nothing"
    assert _requirements_body(REQUIREMENTS.read_text()) == fresh, (
        "requirements/docker.txt is out of date with uv.lock; regenerate it with\n"
        f"  {UV.relative_to(ROOT)} {' '.join(UV_EXPORT)} -o requirements/docker.txt"
    )
    assert f"apache-airflow=={airflow_version()}" in fresh


def test_postgres_init_script() -> None:
    text = INIT_DB_SCRIPT.read_text()
    assert INIT_DB_SCRIPT.stat().st_mode & 0o111, "init-databases.sh is not executable"
    subprocess.run(["bash", "-n", str(INIT_DB_SCRIPT)], check=True)
    assert re.search(r'create_database .*"\$AIRFLOW_DB_PASSWORD" airflow$', text, flags=re.MULTILINE)
    assert re.search(r'create_database .*"\$MLFLOW_DB_PASSWORD" mlflow$', text, flags=re.MULTILINE)
    assert "PASSWORD :'password'" in text  # quoted by psql, never spliced
    # ... and read from psql's environment, not given on its command line
    assert "-v password=" not in text and "\\getenv password NIGHTSHIFT_ROLE_PASSWORD" in text
    assert 'NIGHTSHIFT_ROLE_PASSWORD="$password" psql' in text


FAKE_MC = """#!{python}
# a stand-in for MinIO's client: records each call (arguments, standard input, files named)
import json, os, sys
argv = sys.argv[1:]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
files = {{a: open(a).read() for a in argv if os.path.isfile(a)}}
alias = os.environ.get("MC_HOST_nightshift")
with open(os.environ["MC_LOG"], "a") as log:
    log.write(json.dumps({{"argv": argv, "stdin": stdin, "files": files, "alias": alias}}) + "\\n")
"""


def run_minio_init(
    tmp_path: Path, shell: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    bindir, scratch = tmp_path / "bin", tmp_path / "tmp"
    bindir.mkdir(exist_ok=True)
    scratch.mkdir(exist_ok=True)
    mc = bindir / "mc"
    mc.write_text(FAKE_MC.format(python=sys.executable))
    mc.chmod(0o755)
    log = tmp_path / "mc.log"
    log.unlink(missing_ok=True)
    base = {"PATH": f"{bindir}:{os.environ['PATH']}", "MC_LOG": str(log), "TMPDIR": str(scratch)}
    out = subprocess.run(
        [shell, str(MINIO_INIT_SCRIPT)],
        env={**base, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return out, calls


MINIO_ENV = {
    "MC_HOST_nightshift": "http://nightshift:root-pw-0123456789@minio:9000",
    "NIGHTSHIFT_BUCKET": "lake",
    "MINIO_APP_USER": "ns-app",
    "MINIO_APP_PASSWORD": "app-pw-0123456789",
    "MINIO_MLFLOW_USER": "ns-mlflow",
    "MINIO_MLFLOW_PASSWORD": "mlflow-pw-0123456789",
}


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_minio_init_makes_scoped_users_with_no_secret_on_a_command_line(shell: str, tmp_path: Path) -> None:
    secrets = ("root-pw-0123456789", "app-pw-0123456789", "mlflow-pw-0123456789")
    out, calls = run_minio_init(tmp_path, shell, **MINIO_ENV)
    assert out.returncode == 0, out.stderr
    assert not any(s in out.stdout + out.stderr for s in secrets)
    for call in calls:
        assert not [s for s in secrets if s in " ".join(call["argv"])], call["argv"]
        assert call["alias"] == MINIO_ENV["MC_HOST_nightshift"]  # the root keys, from the environment
    assert calls[0]["argv"] == ["mb", "--ignore-existing", "nightshift/lake"]

    policies = {
        c["argv"][4]: json.loads(c["files"][c["argv"][5]])
        for c in calls
        if c["argv"][:4] == ["admin", "policy", "create", "nightshift"]
    }
    assert set(policies) == {"nightshift-app", "nightshift-mlflow"}

    def objects(policy: dict[str, Any]) -> list[str]:
        return [r for st in policy["Statement"] if "s3:PutObject" in st["Action"] for r in st["Resource"]]

    assert objects(policies["nightshift-app"]) == ["arn:aws:s3:::lake/store/*", "arn:aws:s3:::lake/logs/*"]
    assert objects(policies["nightshift-mlflow"]) == ["arn:aws:s3:::lake/mlflow/*"]
    for policy in policies.values():
        assert policy["Version"] == "2012-10-17"
        for st in policy["Statement"]:
            assert st["Effect"] == "Allow" and all(a.startswith("s3:") and "*" not in a for a in st["Action"])
            assert all(r == "arn:aws:s3:::lake" or r.startswith("arn:aws:s3:::lake/") for r in st["Resource"])
            if "s3:ListBucket" in st["Action"]:  # bucket-level only: no object access here
                assert st["Resource"] == ["arn:aws:s3:::lake"]

    users = {
        c["argv"][4]: c["stdin"] for c in calls if c["argv"][:4] == ["admin", "user", "add", "nightshift"]
    }
    assert users == {"ns-app": "app-pw-0123456789\n", "ns-mlflow": "mlflow-pw-0123456789\n"}
    attached = [c["argv"][3:] for c in calls if c["argv"][:3] == ["admin", "policy", "attach"]]
    assert attached == [
        ["nightshift", "nightshift-app", "--user", "ns-app"],
        ["nightshift", "nightshift-mlflow", "--user", "ns-mlflow"],
    ]
    assert not list((tmp_path / "tmp").iterdir())  # the policy files are gone


def test_minio_init_names_a_missing_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in MINIO_ENV.items() if k != "MINIO_MLFLOW_PASSWORD"}
    out, calls = run_minio_init(tmp_path, "sh", **env)
    assert out.returncode != 0 and "MINIO_MLFLOW_PASSWORD" in out.stderr and calls == []


def test_redis_gets_its_password_on_stdin_not_its_command_line(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The compose command, run by the real ``redis-server`` (``make services-deps``): the password
    works and is not in the process's command line."""
    import psutil
    import redis

    server = shutil.which("redis-server")
    if not server:
        pytest.skip("redis-server is not installed (make services-deps)")
    tokens = command_tokens(compose["services"]["redis"])
    assert tokens[:2] == ["sh", "-c"] and not interpolations(tokens[2])
    script = tokens[2].replace("$$", "$")  # compose's escape of $
    port, password = free_port(), "redis-pw-0123456789"
    # the image's entrypoint execs its arguments; here also bound to loopback, without persistence
    shim = tmp_path / "docker-entrypoint.sh"
    shim.write_text(f'#!/bin/sh\nexec "$@" --port {port} --bind 127.0.0.1 --save "" --dir {tmp_path}\n')
    shim.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "REDIS_PASSWORD": password}
    proc = subprocess.Popen(
        ["sh", "-c", script],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, password="wrong", socket_timeout=2).ping()
        cmdline = " ".join(psutil.Process(proc.pid).cmdline())
        assert "redis-server" in cmdline and password not in cmdline, cmdline
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)


# ---- the checkers can fail -----------------------------------------------------------------
def _bad(**service: Any) -> dict[str, Any]:
    base = {
        "image": "postgres:16.13",
        "healthcheck": {"test": ["CMD", "true"]},
    }
    return {"services": {"db": base, "web": {**base, **service}}}


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("postgres:16.13", True),
        ("redis:7.4.9-alpine", True),
        ("minio/minio:RELEASE.2025-09-07T16-13-09Z", True),
        ("ghcr.io/org/app:v1.2.3", True),
        ("localhost:5000/app:1.2", True),
        ("nginx@sha256:" + "a" * 64, True),
        ("nginx", False),
        ("nginx:latest", False),
        ("postgres:16", False),
        ("postgres:16-alpine", False),
        ("redis:alpine", False),
        ("localhost:5000/app", False),
        ("app:${TAG}", False),
    ],
)
def test_image_pinning(image: str, pinned: bool) -> None:
    assert image_is_pinned(image) is pinned


def test_bad_compose_unpinned_image() -> None:
    assert any("not pinned" in p for p in image_problems(_bad(image="nginx")["services"]))
    no_image = _bad()
    del no_image["services"]["web"]["image"]
    assert image_problems(no_image["services"]) == ["web: neither an image nor a build of ./Dockerfile"]


def test_bad_compose_inline_secrets() -> None:
    cases = [
        _bad(environment={"POSTGRES_PASSWORD": "hunter2"}),
        _bad(environment=["AIRFLOW__CORE__FERNET_KEY=abc"]),
        _bad(environment={"AIRFLOW__API_AUTH__JWT_SECRET": "prefix-${JWT}"}),
        _bad(environment={"DB_URL": "postgresql://airflow:hunter2@postgres/airflow"}),
        _bad(environment={"BROKER": "redis://:hunter2@redis:6379/0"}),
        _bad(environment={"DB_URL": "postgresql://${USER}:hunter2@postgres/airflow"}),
        _bad(environment={"AIRFLOW_CONN_S3": '{"conn_type": "aws", "login": "${U}", "password": "hunter2"}'}),
        _bad(
            environment={
                "AIRFLOW_CONN_S3": '{"login": "${U}", "password": "${P}", "extra": {"aws_secret_key": "x"}}'
            }
        ),
        _bad(command=["redis-server", "--requirepass", "hunter2"]),
        _bad(command="redis-server --requirepass=hunter2"),
        # interpolated, still on the command line
        _bad(command=["redis-server", "--requirepass", "${REDIS_PASSWORD}"]),
        _bad(
            command=[
                "mc",
                "alias",
                "set",
                "x",
                "http://minio:9000",
                "${MINIO_ROOT_USER}",
                "${MINIO_ROOT_PASSWORD}",
            ]
        ),
        _bad(
            entrypoint=["/bin/sh", "-c"],
            command=['mc alias set x http://minio:9000 u "$${MINIO_ROOT_PASSWORD}"'],
        ),
        _bad(command=["sh", "-c", "exec redis-server --requirepass $$REDIS_PASSWORD"]),
        _bad(healthcheck={"test": ["CMD-SHELL", 'redis-cli -a "$${REDIS_PASSWORD}" ping']}),
    ]
    for doc in cases:
        assert secret_problems(doc), f"not detected: {doc['services']['web']}"
    ok = _bad(
        environment={
            "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?must be set}",
            "DB_URL": "postgresql+psycopg2://${U:?set it}:${P:?set it}@postgres:5432/airflow",
            "BROKER": "redis://:${REDIS_PASSWORD}@redis:6379/0",
            "AIRFLOW_CONN_S3": '{"conn_type": "aws", "login": "${U}", "password": "${P}"}',
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": "/opt/airflow/auth/passwords.json",
        },
        command=["sh", "-c", "exec redis-server - <<EOF\nrequirepass $${REDIS_PASSWORD}\nEOF\n"],
        healthcheck={"test": ["CMD-SHELL", 'REDISCLI_AUTH="$${REDIS_PASSWORD}" redis-cli ping']},
    )
    assert secret_problems(ok) == []


def test_bad_compose_root_credentials() -> None:
    doc: dict[str, Any] = {
        "services": {
            "minio": {"environment": {"MINIO_ROOT_PASSWORD": "${MINIO_ROOT_PASSWORD:?x}"}},
            "minio-init": {
                "environment": {"MC_HOST_x": "http://${MINIO_ROOT_USER}:${MINIO_ROOT_PASSWORD}@m"}
            },
            "mlflow": {"environment": {"AWS_SECRET_ACCESS_KEY": "${MINIO_MLFLOW_PASSWORD:?x}"}},
        }
    }
    assert root_credential_problems(doc) == []
    doc["services"]["airflow-worker"] = {
        "environment": {"AIRFLOW_CONN_AWS_DEFAULT": '{"login": "${MINIO_ROOT_USER}"}'}
    }
    assert root_credential_problems(doc) == [
        "airflow-worker: gets MinIO's root credentials (MINIO_ROOT_USER)"
    ]


def test_bad_compose_dangling_or_unconditional_depends_on() -> None:
    dangling = depends_on_problems(_bad(depends_on={"ghost": {"condition": "service_healthy"}})["services"])
    assert dangling == ["web: depends_on 'ghost', which is not a service"]
    as_list = depends_on_problems(_bad(depends_on=["db"])["services"])
    assert as_list and "no conditions" in as_list[0]
    started = depends_on_problems(_bad(depends_on={"db": {"condition": "service_started"}})["services"])
    assert started and "without a condition" in started[0]
    doc = _bad(depends_on={"db": {"condition": "service_healthy"}})
    assert depends_on_problems(doc["services"]) == []
    del doc["services"]["db"]["healthcheck"]
    assert depends_on_problems(doc["services"]) == [
        "web: waits for 'db' to be healthy, but it has no healthcheck"
    ]
    doc["services"]["db-init"] = {"image": "busybox:1.37.0"}
    doc["services"]["web"]["depends_on"] = {"db-init": {"condition": "service_healthy"}}
    assert "must be service_completed_successfully" in depends_on_problems(doc["services"])[0]


def test_bad_compose_missing_healthcheck() -> None:
    doc = _bad()
    del doc["services"]["web"]["healthcheck"]
    doc["services"]["job-init"] = {"image": "busybox:1.37.0"}
    assert healthcheck_problems(doc["services"]) == ["web: long-running service without a healthcheck"]
    doc["services"]["job-init"]["restart"] = "unless-stopped"
    assert len(healthcheck_problems(doc["services"])) == 2


def test_bad_compose_env_example() -> None:
    doc = _bad(environment={"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?x}", "PORT": "$WEB_PORT"})
    env = {"POSTGRES_PASSWORD": ""}
    assert env_example_problems(doc, env) == [
        "${WEB_PORT} is used in the compose file but not listed in .env.example"
    ]
    fernet = "ZmVybmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY="
    assert env_example_problems(doc, {**env, "WEB_PORT": "80", "AIRFLOW_FERNET_KEY": fernet})
    assert env_example_problems(doc, {**env, "WEB_PORT": "80", "AIRFLOW_FERNET_KEY": "change-me"}) == []
    assert interpolations("a $${ESCAPED} b ${X:-1} $Y $$Z") == ["X", "Y"]


_GPU = {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}
NVIDIA = {"deploy": {"resources": {"reservations": {"devices": [_GPU]}}}}


def test_bad_compose_gpu_queue() -> None:
    services: dict[str, Any] = {
        "worker-gpu": {"command": ["airflow", "celery", "worker", "--queues", "default,gpu"], **NVIDIA},
        "airflow-worker": {"command": "airflow celery worker --queues=default,gpu"},
    }
    assert gpu_problems(services) == [
        "worker-gpu: a GPU worker must consume the gpu queue only, not ['default', 'gpu']",
        "airflow-worker: a GPU worker must consume the gpu queue only, not ['default', 'gpu']",
        "airflow-worker: consumes the gpu queue without an NVIDIA device reservation",
    ]
    services["worker-gpu"]["command"] = ["airflow", "celery", "worker", "-q", "gpu"]
    services["airflow-worker"] = {"command": "airflow celery worker"}  # default queue
    services["worker-gpu-1"] = {"command": "airflow celery worker --queues gpu", **NVIDIA}
    assert gpu_problems(services) == []
    del services["worker-gpu"]["deploy"]
    assert gpu_problems(services) == [
        "worker-gpu: consumes the gpu queue without an NVIDIA device reservation"
    ]
    assert gpu_problems({"airflow-worker": services["airflow-worker"]}) == [
        "worker-gpu: no such Celery worker on the gpu queue"
    ]


def test_bad_compose_published_ports() -> None:
    for port in ("8080:8080", "0.0.0.0:8080:8080", 8080, {"target": 8080, "published": 8080}):
        assert port_problems(_bad(ports=[port])["services"]), f"not detected: {port!r}"
    ok = ["127.0.0.1:8080:8080", {"target": 80, "published": 8080, "host_ip": "127.0.0.1"}]
    assert port_problems(_bad(ports=ok)["services"]) == []
