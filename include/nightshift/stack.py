"""The local stack ``make up`` starts (MLflow server, Airflow components on 127.0.0.1): where it
is and how to log in, from the file it writes, ``<state dir>/run/stack.json``.

The CLI reads it so that ``nightshift train`` after ``make up`` talks to the stack's MLflow
server (the same registry the DAGs use), and ``nightshift replay`` logs in to its Airflow API
with its credentials. The file holds addresses and the path of the password file, never a
password. Imports no airflow.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from nightshift.errors import DataError
from nightshift.settings import settings
from nightshift.storage import default_state_dir

DEFAULT_API = "http://127.0.0.1:8080"
DEFAULT_USER = "admin"


def stack_file() -> Path:
    return default_state_dir() / "run" / "stack.json"


@dataclass(frozen=True)
class StackInfo:
    """Where the stack's services listen, and where its Airflow password file is."""

    api: str = DEFAULT_API
    mlflow: str | None = None
    user: str = DEFAULT_USER
    passwords_file: str | None = None
    store: str | None = None

    @classmethod
    def read(cls, path: Path | None = None) -> StackInfo | None:
        """The recorded stack, or ``None`` when none was started (or the file is unreadable)."""
        path = path or stack_file()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        fields = cls.__dataclass_fields__
        return cls(**{k: str(v) for k, v in data.items() if k in fields and v is not None})


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an HTTP server answers ``url`` (any status)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def use_stack_mlflow(info: StackInfo | None = None) -> str | None:
    """Point the registry at the running stack's MLflow server unless ``$MLFLOW_TRACKING_URI`` is
    set; the URI now in use, or ``None`` (no stack up: the embedded SQLite default stays)."""
    from nightshift import registry

    if settings().mlflow_tracking_uri:
        return settings().mlflow_tracking_uri
    info = info if info is not None else StackInfo.read()
    if info is None or not info.mlflow or not answers(f"{info.mlflow.rstrip('/')}/health"):
        return None
    registry.use(info.mlflow)
    return info.mlflow


def api_base(explicit: str | None = None, info: StackInfo | None = None) -> str:
    """The Airflow API to talk to: ``explicit``, the recorded stack's, ``$AIRFLOW__API__BASE_URL``,
    else ``http://127.0.0.1:8080`` (``make up``'s default)."""
    if explicit:
        return explicit.rstrip("/")
    if info is not None:
        return info.api.rstrip("/")
    return (settings().airflow_api_base_url or DEFAULT_API).rstrip("/")


def passwords_file(info: StackInfo | None = None) -> Path:
    """The Simple auth manager's password file of the stack: the recorded one, else
    ``$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE``, else ``$AIRFLOW_HOME/passwords.json``
    (``make up`` keeps ``AIRFLOW_HOME`` at ``<state dir>/airflow``)."""
    if info is not None and info.passwords_file:
        return Path(info.passwords_file)
    env = settings().simple_auth_passwords_file
    if env:
        return env
    home = settings().airflow_home or default_state_dir() / "airflow"
    return Path(home) / "passwords.json"


class CredentialsError(DataError, RuntimeError):
    """The stack's credentials cannot be read; the message names the file."""


def password(user: str, path: Path) -> str:
    """``user``'s password from a Simple auth manager password file (JSON ``{user: password}``)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CredentialsError(
            f"no Airflow password file at {path} (the stack writes it when it starts: make up)"
        ) from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read the Airflow password file {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get(user), str):
        users = ", ".join(sorted(data)) if isinstance(data, dict) else "none"
        raise CredentialsError(f"{path} has no password for user {user!r} (users: {users})")
    return str(data[user])
