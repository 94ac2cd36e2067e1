"""MLflow: tracking, the model registry, the champion alias, and the audit trail.

* One experiment per dataset (``nightshift-<dataset>``), one registered model
  (``nightshift-<dataset>``). Tracking/registry URI from ``MLFLOW_TRACKING_URI``; the embedded
  default is SQLite under ``.nightshift/mlflow/`` with artifacts next to it.
* Training runs and versions are keyed on the orchestrator's run (``nightshift.run_key``
  tag): a retried task finds its finished run and its version instead of making new ones.
* Aliases are last-writer-wins, so promotion is serialised by the caller (an Airflow pool of
  one) and verified after writing: ``champion`` moves, the former champion becomes
  ``previous``. Every promotion, rejection and rollback is written twice: as tags on the
  model version and as an immutable JSON object under ``audit/<dataset>/`` in the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from nightshift.errors import DataError, ServiceError
from nightshift.settings import MLFLOW_CLIENT, library_defaults, settings
from nightshift.storage import Store, default_state_dir

CHAMPION = "champion"
PREVIOUS = "previous"
RUN_KEY = "nightshift.run_key"
TAG = "nightshift."


class RegistryError(DataError, RuntimeError):
    """The registry cannot do what was asked (no such version, nothing to roll back to, a
    refused promotion); the message says what and where."""


class RegistryUnavailable(ServiceError, RegistryError):
    """The MLflow server cannot be reached (worth retrying)."""


def experiment_name(dataset: str) -> str:
    return f"nightshift-{dataset}"


def model_name(dataset: str) -> str:
    return f"nightshift-{dataset}"


# the URI :func:`use` or :func:`connect` chose for this process (an Airflow connection's, the
# running stack's), for when ``$MLFLOW_TRACKING_URI`` does not say
_chosen: str | None = None


def use(uri: str | None) -> None:
    """Make ``uri`` this process's tracking URI unless ``$MLFLOW_TRACKING_URI`` says otherwise
    (``None``: the embedded default); cheap: mlflow is pointed there by :func:`connect`."""
    global _chosen
    _chosen = uri


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI``, the URI chosen by :func:`use`, or SQLite under the state directory."""
    uri = settings().mlflow_tracking_uri or _chosen
    if uri:
        return uri
    base = default_state_dir() / "mlflow"
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}"


def artifact_root() -> str | None:
    """Where new experiments keep artifacts for database-backed stores (``None``: the
    server decides, e.g. its proxied ``mlflow-artifacts:`` root)."""
    env = settings().mlflow_artifacts
    if env:
        return env
    if tracking_uri().startswith(("http://", "https://")):
        return None
    return (default_state_dir() / "mlflow" / "artifacts").as_uri()


def connect(uri: str | None = None) -> Any:
    """Point mlflow at ``uri`` (default :func:`tracking_uri`) for tracking and the registry, with
    bounded client retries; the client. The one place the package sets MLflow's URIs (mlflow
    itself mirrors the tracking URI into ``$MLFLOW_TRACKING_URI`` for its subprocesses)."""
    library_defaults(**MLFLOW_CLIENT)
    import mlflow
    from mlflow import MlflowClient

    if uri:
        use(uri)  # an explicit choice holds for the process; the configured one is re-read each time
    uri = uri or tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(uri, uri)


def configure() -> Any:
    """:func:`connect` to the configured URI; for callers without :class:`~nightshift.backends.Backends`
    (tests, benchmarks): the steps get their client from the backends they are given."""
    return connect()


@contextlib.contextmanager
def speaking_errors(what: str) -> Iterator[None]:
    """Turn a connection failure into :class:`RegistryUnavailable` naming the URL."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except RegistryError:
        raise
    except (MlflowException, OSError) as exc:
        # only network failures are "unavailable"; a missing local file is a plain error
        text = str(exc)
        network = isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.startswith(
            ("requests", "urllib3")
        )
        if network or any(
            s in text for s in ("Max retries exceeded", "Connection refused", "ConnectionError", "timed out")
        ):
            raise RegistryUnavailable(
                f"{what}: the MLflow server at {tracking_uri()} is unreachable ({text.splitlines()[0][:300]})"
            ) from exc
        raise


def ensure_experiment(client: Any, dataset: str) -> str:
    name = experiment_name(dataset)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    root = artifact_root()
    location = f"{root.rstrip('/')}/{name}" if root else None
    try:
        return str(
            client.create_experiment(name, artifact_location=location, tags={"nightshift.dataset": dataset})
        )
    except Exception:  # created concurrently by another task
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


def find_run(client: Any, experiment_id: str, run_key: str) -> Any | None:
    """The finished run logged for ``run_key`` (a retried task reuses it), if any."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_KEY}` = '{run_key}' and attributes.status = 'FINISHED'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


# ---- registration ------------------------------------------------------------------------


def register(client: Any, dataset: str, run_id: str, run_key: str) -> str:
    """The model version of ``run_id``: found if a retried task already registered it,
    created otherwise. Returns the version number."""
    from mlflow.exceptions import MlflowException

    name = model_name(dataset)
    with speaking_errors(f"registering the model of run {run_id}"):
        try:
            client.get_registered_model(name)
        except MlflowException:
            with contextlib.suppress(MlflowException):  # created concurrently
                client.create_registered_model(name, tags={"nightshift.dataset": dataset})
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
        if found:
            return str(sorted(found, key=lambda v: int(v.version))[0].version)
        run = client.get_run(run_id)
        model_id = run.data.tags.get("nightshift.model_id")
        if not model_id:
            raise RegistryError(f"run {run_id} logged no model (no nightshift.model_id tag); train again")
        source = client.get_logged_model(model_id).artifact_location
        mv = client.create_model_version(
            name, source, run_id=run_id, tags={RUN_KEY: run_key}, model_id=model_id
        )
        return str(mv.version)


def alias_version(client: Any, dataset: str, alias: str) -> str | None:
    """The version an alias points at, or ``None``."""
    from mlflow.exceptions import MlflowException

    with speaking_errors(f"reading the {alias!r} alias"):
        try:
            return str(client.get_model_version_by_alias(model_name(dataset), alias).version)
        except MlflowException as exc:
            # no such model or no such alias (SQLite and REST stores use either code)
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise


def get_version(client: Any, dataset: str, version: str) -> Any:
    """A model version of ``dataset``, or :class:`RegistryError` naming the versions there are."""
    from mlflow.exceptions import MlflowException

    name = model_name(dataset)
    with speaking_errors(f"reading {name} v{version}"):
        try:
            return client.get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
            try:
                known = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
            except MlflowException:
                known = []
            have = ", ".join(f"v{v}" for v in known) or "none"
            raise RegistryError(f"{name} has no version {version} (versions: {have})") from None


def ui_base() -> str | None:
    """The MLflow UI a browser can open: ``$NIGHTSHIFT_MLFLOW_UI_URL``, else an http(s)
    tracking URI; ``None`` for a file or database store (no UI)."""
    base = settings().mlflow_ui_url or tracking_uri()
    return base.rstrip("/") if base.startswith(("http://", "https://")) else None


def ui_links(dataset: str, run_id: str | None = None, version: str | None = None) -> dict[str, str]:
    """MLflow UI links of a run and a model version (none without a UI)."""
    base = ui_base()
    if base is None:
        return {}
    links = {}
    if run_id:
        links["MLflow run"] = f"{base}/#/runs/{run_id}"
    if version:
        links["Model version"] = f"{base}/#/models/{model_name(dataset)}/versions/{version}"
    return links


def model_uri(dataset: str, version: str) -> str:
    return f"models:/{model_name(dataset)}/{version}"


def load_pyfunc(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)``, its download deleted once loaded.

    MLflow downloads a model to a fresh temporary folder and never removes it: a copy of the
    package under ``/tmp`` per load, for every scoring, gate and serve reload of a long-lived
    installation. The packaged model reads its artifacts into memory in ``load_context``
    (:class:`nightshift.model.NightshiftModel`), so the folder is not needed after the load."""
    import tempfile

    import mlflow.pyfunc

    with tempfile.TemporaryDirectory(prefix="nightshift-model-") as tmp:
        return mlflow.pyfunc.load_model(uri, dst_path=tmp)


def load_model(dataset: str, version: str) -> Any:
    """The pyfunc of a registered version, or an error naming the version and its source."""
    uri = model_uri(dataset, version)
    with speaking_errors(f"loading {uri}"):
        try:
            return load_pyfunc(uri)
        except RegistryError:
            raise
        except Exception as exc:
            raise RegistryError(
                f"{model_name(dataset)} v{version}: its model artifact cannot be loaded from {uri} "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})"
            ) from exc


# ---- the audit trail ---------------------------------------------------------------------


@dataclass
class AuditEvent:
    """One registry decision: who/what, which versions, why, with which numbers.

    ``actor`` is who decided: the user who started a manual run (authenticated by Airflow),
    ``nightshift-gate`` for the gate, the approver of a review. ``triggered_by`` is who started
    the run (``scheduler`` for scheduled and asset-triggered runs), always recorded;
    ``on_behalf_of`` the free-text ``actor`` a manual run was given, never trusted as the actor.
    """

    action: str  # promote | reject | rollback
    dataset: str
    version: str
    previous_version: str | None
    actor: str
    trigger: str
    reason: str
    deltas: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))
    # a human's decision on a borderline verdict: needed, decision, by, at, comment, timed_out
    review: dict[str, Any] | None = None
    triggered_by: str | None = None
    on_behalf_of: str | None = None
    run_key: str | None = None  # the orchestrator run that made the decision (a retry finds it)
    # what the version is: ``xgboost``, or ``logistic`` when the gate's baseline competed and won
    model_kind: str | None = None
    # the gate's serving check (nightshift.servecheck): passed, detail, rows, max diff, latencies
    serving: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AuditEvent:
        """An event from its JSON record; records written before a field existed still load."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @property
    def who(self) -> str:
        """``actor``, ``on behalf of`` whom, and who ran it when that is somebody else."""
        out = self.actor
        if self.on_behalf_of and self.on_behalf_of != self.actor:
            out += f" on behalf of {self.on_behalf_of}"
        if self.triggered_by and self.triggered_by != self.actor:
            out += f" (run by {self.triggered_by})"
        return out

    @property
    def key(self) -> str:
        """Same action, version and trigger → same record (a retry rewrites, never adds)."""
        digest = hashlib.sha1(f"{self.action}|{self.version}|{self.trigger}".encode()).hexdigest()[:10]
        return f"{self.action}-v{self.version}-{digest}"


def audit_dir(store: Store, dataset: str) -> str:
    return store.path("audit", dataset)


def write_audit(store: Store, event: AuditEvent) -> str:
    path = f"{audit_dir(store, event.dataset)}/{event.key}.json"
    store.write_json_atomic(path, event.to_dict())
    return store.uri(path)


def read_audit(store: Store, dataset: str) -> list[AuditEvent]:
    """Every recorded decision for ``dataset``, oldest first."""
    paths = store.list_files(audit_dir(store, dataset), "*.json")
    events = [AuditEvent.from_dict(store.read_json(p)) for p in paths]
    return sorted(events, key=lambda e: e.time)


def _tag_decision(client: Any, event: AuditEvent, status: str) -> None:
    name = model_name(event.dataset)
    tags = {
        "nightshift.status": status,
        "nightshift.decision": event.action,
        f"nightshift.{event.action}.time": event.time,
        f"nightshift.{event.action}.actor": event.actor,
        f"nightshift.{event.action}.trigger": event.trigger,
        f"nightshift.{event.action}.reason": event.reason[:4900],
        f"nightshift.{event.action}.previous_version": event.previous_version or "",
        f"nightshift.{event.action}.deltas": json.dumps(event.deltas, sort_keys=True),
        f"nightshift.{event.action}.triggered_by": event.triggered_by or "",
        f"nightshift.{event.action}.on_behalf_of": event.on_behalf_of or "",
        f"nightshift.{event.action}.run_key": event.run_key or "",
    }
    if event.model_kind:
        tags[f"nightshift.{event.action}.model_kind"] = event.model_kind
    if event.review:
        tags[f"nightshift.{event.action}.review"] = json.dumps(event.review, sort_keys=True)[:4900]
    if event.serving:
        tags[f"nightshift.{event.action}.serving"] = json.dumps(event.serving, sort_keys=True)[:4900]
    for k, v in tags.items():
        client.set_model_version_tag(name, event.version, k, v)


def _verify(client: Any, dataset: str, alias: str, version: str) -> None:
    now = alias_version(client, dataset, alias)
    if now != version:
        raise RegistryError(
            f"{model_name(dataset)}: alias {alias!r} points at v{now} right after it was set to v{version} "
            "(a concurrent promotion outside the registry pool?)"
        )


class ChampionMoved(RegistryError):
    """The champion is not the one the gate compared the challenger with (a stale verdict)."""

    def __init__(self, dataset: str, expected: str | None, current: str | None) -> None:
        self.expected, self.current = expected, current
        was, now = (f"v{v}" if v else "none" for v in (expected, current))
        super().__init__(
            f"{model_name(dataset)}: champion moved from {was} to {now} since the gate; "
            "the challenger was never compared with it (train or gate again)"
        )


UNCHECKED: Any = object()  # promote(expected_champion=UNCHECKED): no staleness check


def promote(
    client: Any,
    store: Store,
    dataset: str,
    version: str,
    *,
    actor: str,
    trigger: str,
    reason: str,
    deltas: dict[str, float] | None = None,
    run_id: str | None = None,
    review: dict[str, Any] | None = None,
    expected_champion: str | None = UNCHECKED,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
    run_key: str | None = None,
    model_kind: str | None = None,
    serving: dict[str, Any] | None = None,
) -> AuditEvent:
    """Move ``champion`` to ``version`` (the former champion becomes ``previous``), verify,
    record. Promoting the current champion again (a retry) only re-records.

    ``expected_champion`` (``None``: no champion): the champion the gate compared ``version``
    with; if another one serves now, nothing moves and :class:`ChampionMoved` is raised (the
    caller records the rejection). Call it inside the registry pool, so nothing moves between
    this check and the alias write."""
    name = model_name(dataset)
    with speaking_errors(f"promoting {name} v{version}"):
        client.get_model_version(name, version)  # exists, or a clear MLflow error
        current = alias_version(client, dataset, CHAMPION)
        if current == version:
            previous = alias_version(client, dataset, PREVIOUS)
        else:
            if expected_champion is not UNCHECKED and current != expected_champion:
                raise ChampionMoved(dataset, expected_champion, current)
            previous = current
            if current is not None:
                client.set_registered_model_alias(name, PREVIOUS, current)
                client.set_model_version_tag(name, current, "nightshift.status", PREVIOUS)
            client.set_registered_model_alias(name, CHAMPION, version)
        _verify(client, dataset, CHAMPION, version)
        if previous is not None:
            _verify(client, dataset, PREVIOUS, previous)
        event = AuditEvent(
            "promote",
            dataset,
            version,
            previous,
            actor,
            trigger,
            reason,
            deltas or {},
            run_id,
            review=review,
            triggered_by=triggered_by,
            on_behalf_of=on_behalf_of,
            run_key=run_key,
            model_kind=model_kind,
            serving=serving,
        )
        _tag_decision(client, event, CHAMPION)
    write_audit(store, event)
    return event


def reject(
    client: Any,
    store: Store,
    dataset: str,
    version: str,
    *,
    actor: str,
    trigger: str,
    reason: str,
    deltas: dict[str, float] | None = None,
    run_id: str | None = None,
    review: dict[str, Any] | None = None,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
    run_key: str | None = None,
    model_kind: str | None = None,
    serving: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record that ``version`` was not promoted, and why; the aliases are untouched."""
    with speaking_errors(f"recording the rejection of {model_name(dataset)} v{version}"):
        champion = alias_version(client, dataset, CHAMPION)
        event = AuditEvent(
            "reject",
            dataset,
            version,
            champion,
            actor,
            trigger,
            reason,
            deltas or {},
            run_id,
            review=review,
            triggered_by=triggered_by,
            on_behalf_of=on_behalf_of,
            run_key=run_key,
            model_kind=model_kind,
            serving=serving,
        )
        _tag_decision(client, event, "rejected")
    write_audit(store, event)
    return event


def _recorded_rollback(client: Any, dataset: str, version: str, run_key: str) -> AuditEvent | None:
    """The rollback to ``version`` that run ``run_key`` recorded on its tags, if it did."""
    t = client.get_model_version(model_name(dataset), version).tags or {}
    p = "nightshift.rollback."
    if t.get(p + "run_key") != run_key:
        return None
    return AuditEvent(
        "rollback",
        dataset,
        version,
        t.get(p + "previous_version") or None,
        t.get(p + "actor", ""),
        t.get(p + "trigger", ""),
        t.get(p + "reason", ""),
        time=t.get(p + "time") or datetime.now(UTC).isoformat(timespec="milliseconds"),
        triggered_by=t.get(p + "triggered_by") or None,
        on_behalf_of=t.get(p + "on_behalf_of") or None,
        run_key=run_key,
    )


def rollback(
    client: Any,
    store: Store,
    dataset: str,
    *,
    actor: str,
    trigger: str,
    reason: str,
    triggered_by: str | None = None,
    on_behalf_of: str | None = None,
    run_key: str | None = None,
) -> AuditEvent:
    """Put ``champion`` back on the ``previous`` version; the rolled-back one is tagged, and
    ``previous`` is cleared (a second rollback needs an explicit promotion).

    With ``run_key`` (the orchestrator's run) a retry finds the rollback its first attempt
    made (the decision is tagged on the restored version before any alias moves): it finishes
    what is left and re-records, instead of finding nothing to roll back to. A rollback of
    that run since superseded by a promotion is only re-recorded."""
    name = model_name(dataset)
    with speaking_errors(f"rolling back {name}"):
        champion = alias_version(client, dataset, CHAMPION)
        previous = alias_version(client, dataset, PREVIOUS)
        event = None
        if run_key:
            for v in dict.fromkeys(x for x in (champion, previous) if x):
                event = _recorded_rollback(client, dataset, v, run_key)
                if event is not None:
                    break
        if event is None:
            if previous is None:
                raise RegistryError(
                    f"{name}: nothing to roll back to (no {PREVIOUS!r} alias; champion is "
                    f"{'v' + champion if champion else 'unset'})"
                )
            event = AuditEvent(
                "rollback",
                dataset,
                previous,
                champion,
                actor,
                trigger,
                reason,
                triggered_by=triggered_by,
                on_behalf_of=on_behalf_of,
                run_key=run_key,
            )
            _tag_decision(client, event, CHAMPION)  # first: what a retry finds
        # a later promotion may have superseded this run's finished rollback: then only re-record
        moved = champion == event.version
        if moved or (champion == event.previous_version and previous == event.version):
            if not moved:
                client.set_registered_model_alias(name, CHAMPION, event.version)
            _verify(client, dataset, CHAMPION, event.version)
            if event.previous_version is not None:
                client.set_model_version_tag(name, event.previous_version, "nightshift.status", "rolled_back")
            if alias_version(client, dataset, PREVIOUS) is not None:
                client.delete_registered_model_alias(name, PREVIOUS)
    write_audit(store, event)
    return event


def code_version() -> str:
    """``$NIGHTSHIFT_CODE_VERSION``, else the git commit of the checkout, else ``unknown``."""
    env = settings().code_version
    if env:
        return env
    import subprocess
    from pathlib import Path

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
