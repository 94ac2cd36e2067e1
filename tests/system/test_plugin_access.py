"""The UI plugin's security through the real api-server (no scheduler, no DAG processor).

Three users under a Simple auth manager with per-user DAG allow-lists (``authkit``): ``admin``
reads everything, ``alice`` may read every DAG of ``payments`` but only the ingest DAG of
``refunds``, ``bob`` (a viewer) no nightshift DAG at all. A dataset is readable only with read
access to all of its DAGs: alice sees ``payments`` and nothing of ``refunds`` (no page, no
JSON, no report, no audit record, no quarantine evidence, not even its name). Every response
of the plugin escapes what it shows and never echoes the request; its own pages carry a
strict Content-Security-Policy. Symlinks in the store that lead outside the store root (or to
what the path could not be served as) are refused.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from nightshift.airflow.plugin import SANDBOX, STRICT_CSP
from nightshift.registry import AuditEvent, write_audit
from nightshift.storage import Store
from nightshift_dev import ROOT
from nightshift_dev.stack import AirflowStack

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"
MARKUP_DATASET = "<b onmouseover=alert(3)>x"  # a datasets/*.yaml file name carrying markup
DRIFT = "reports/{ds}/drift/dt=2026-05-01/v1-drift.html"
QUARANTINE = "quarantine/{ds}/events/dt=2026-05-01/validation.json"
USERS = {"admin": "admin", "alice": "viewer", "bob": "viewer"}
ACCESS = {"alice": ["nightshift_*.payments", "nightshift_ingest.refunds"], "bob": []}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """Raw HTTP to the api-server (no redirects followed), logged in as one user or none."""

    def __init__(self, stack: AirflowStack) -> None:
        self.stack = stack
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            body = json.dumps({"username": user, "password": user})
            reply = self.request("POST", "/auth/token", None, body)
            assert reply.status in (200, 201), reply
            self.tokens[user] = json.loads(reply.body)["access_token"]
        return self.tokens[user]

    def request(
        self, method: str, path: str, user: str | None, body: str | None = None, cookie: bool = False
    ) -> Reply:
        url = urlsplit(self.stack.base)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if user is not None:
            token = self.token(user)
            if cookie:  # the browser's session: the UI's _token cookie
                headers["Cookie"] = f"_token={token}"
            else:
                headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode())
        finally:
            conn.close()

    def get(self, path: str, user: str | None = "admin", cookie: bool = False) -> Reply:
        return self.request("GET", path, user, cookie=cookie)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("plugin-access")
    datasets = base / "datasets"
    datasets.mkdir()
    spec = (ROOT / "datasets" / "payments.yaml").read_text()
    (datasets / "payments.yaml").write_text(spec)
    (datasets / "refunds.yaml").write_text(spec.replace("name: payments", "name: refunds", 1))
    (datasets / f"{MARKUP_DATASET}.yaml").write_text(spec)

    store = Store((base / "store").as_uri())
    for ds in ("payments", "refunds"):
        store.write_bytes_atomic(store.path(DRIFT.format(ds=ds)), f"<html>drift of {ds}</html>".encode())
        store.write_json_atomic(store.path(QUARANTINE.format(ds=ds)), {"dataset": ds})
        write_audit(store, AuditEvent("promote", ds, "1", None, "nightshift-gate", "t", f"first of {ds}"))
    # an operator's name and reason carrying markup
    write_audit(
        store, AuditEvent("rollback", "payments", "1", "1", XSS, "manual", "<script>alert(2)</script>")
    )
    # symlinks: to a file outside the store, to a directory outside it, to data inside it, to
    # another dataset's report
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.html").write_text("SECRET outside the store")
    (base / "store" / "curated" / "payments" / "dt=2026-05-01").mkdir(parents=True)
    (base / "store" / "curated" / "payments" / "dt=2026-05-01" / "part-0.parquet").write_text("DATA rows")
    reports = base / "store" / "reports" / "payments"
    os.symlink("/etc/hostname", reports / "hostname.txt")
    os.symlink(outside, reports / "linked")
    os.symlink(
        base / "store" / "curated" / "payments" / "dt=2026-05-01" / "part-0.parquet", reports / "data.html"
    )
    os.symlink(base / "store" / DRIFT.format(ds="refunds"), reports / "theirs.html")
    os.symlink(base / "store" / DRIFT.format(ds="payments"), reports / "alias.html")  # inside: fine

    home = base / "airflow"
    home.mkdir()
    (home / "users.json").write_text(json.dumps({u: u for u in USERS}))
    stack = AirflowStack(
        home,
        extra_env={
            "AIRFLOW__CORE__AUTH_MANAGER": "authkit.DagAccessAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "users.json"),
            "NIGHTSHIFT_TEST_DAG_ACCESS": json.dumps(ACCESS),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
            ),
            "NIGHTSHIFT_DATASETS_DIR": str(datasets),
            "NIGHTSHIFT_STORE_URL": store.url,
            # a registry nobody listens on: the page names it and shows the audit trail
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{_dead_port()}",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
        },
    )
    stack.env.pop("NIGHTSHIFT_DATASETS", None)
    try:
        stack.start(components=("api-server",))
        yield Server(stack)
    finally:
        stack.stop()


def _strict(reply: Reply) -> None:
    assert reply.headers.get("content-security-policy") == STRICT_CSP, reply.headers
    assert reply.headers.get("x-content-type-options") == "nosniff", reply.headers


def test_nothing_without_a_session(server: Server) -> None:
    for path in ("/nightshift/health", "/nightshift/health/payments", "/nightshift/api/health/payments",
                 "/nightshift/store/" + DRIFT.format(ds="payments")):  # fmt: skip
        assert server.get(path, user=None).status in (401, 403), path


def test_the_index_lists_only_the_datasets_a_user_may_read(server: Server) -> None:
    admin = server.get("/nightshift/health")
    assert admin.status == 200 and admin.headers["content-type"].startswith("text/html")
    _strict(admin)
    assert 'href="health/payments"' in admin.body and 'href="health/refunds"' in admin.body
    # the dataset named with markup is listed, inert: escaped text, a quoted address
    assert "&lt;b onmouseover=alert(3)&gt;x" in admin.body
    assert f'href="health/{quote(MARKUP_DATASET, safe="")}"' in admin.body and "<b " not in admin.body

    alice = server.get("/nightshift/health", user="alice")
    assert (alice.status, alice.headers.get("location")) == (307, "health/payments"), alice
    bob = server.get("/nightshift/health", user="bob")
    assert bob.status == 200 and "no datasets you may read" in bob.body
    assert "payments" not in bob.body and "refunds" not in bob.body
    _strict(bob)


def test_a_dataset_without_read_access_is_indistinguishable_from_none(server: Server) -> None:
    for prefix in ("/nightshift/health/", "/nightshift/api/health/"):
        ok = server.get(prefix + "payments", user="alice", cookie=prefix.endswith("/api/health/"))
        assert ok.status == 200, (prefix, ok)
        theirs = server.get(prefix + "refunds", user="alice")
        nothing = server.get(prefix + "nosuch", user="alice")
        assert theirs.status == nothing.status == 404 and theirs.body == nothing.body, (theirs, nothing)
        assert "refunds" not in theirs.body and "payments" not in theirs.body
        assert server.get(prefix + "refunds", user="alice", cookie=True).status == 404
        assert server.get(prefix + "refunds").status == 200  # admin
        assert server.get(prefix + "payments", user="bob").status == 404

    # the DAG tab: the same answer for a DAG of a hidden dataset as for any other DAG
    tab = server.get("/nightshift/health?dag_id=nightshift_train.refunds", user="alice")
    other = server.get("/nightshift/health?dag_id=some_other_dag", user="alice")
    assert tab.status == other.status == 200 and tab.body == other.body and "refunds" not in tab.body
    _strict(tab)
    mine = server.get("/nightshift/health?dag_id=nightshift_train.payments", user="alice")
    assert (mine.status, mine.headers.get("location")) == (307, "health/payments")

    # the page's dataset navigation names only readable datasets
    page = server.get("/nightshift/health/payments", user="alice")
    assert "refunds" not in page.body
    assert "health/refunds" in server.get("/nightshift/health/payments").body  # admin


def test_reports_audit_and_quarantine_evidence_follow_the_dataset(server: Server) -> None:
    for path in (DRIFT, QUARANTINE, "audit/{ds}/promote-v1-x.json"):
        mine = path.format(ds="payments")
        theirs = path.format(ds="refunds")
        if not path.startswith("audit"):
            got = server.get(f"/nightshift/store/{mine}", user="alice")
            assert got.status == 200, (mine, got)
            assert server.get(f"/nightshift/store/{theirs}").status == 200  # admin
        denied = server.get(f"/nightshift/store/{theirs}", user="alice")
        missing = server.get(f"/nightshift/store/{path.format(ds='nosuch')}", user="alice")
        assert denied.status == missing.status == 404 and denied.body == missing.body, (theirs, denied)
        assert "refunds" not in denied.body
    audit = [
        p.name for p in Path(urlsplit(server.stack.env["NIGHTSHIFT_STORE_URL"]).path).glob("audit/refunds/*")
    ]
    assert audit
    assert server.get(f"/nightshift/store/audit/refunds/{audit[0]}").status == 200
    assert server.get(f"/nightshift/store/audit/refunds/{audit[0]}", user="alice").status == 404
    report = server.get("/nightshift/store/" + DRIFT.format(ds="payments"))
    assert (
        report.headers["content-security-policy"] == SANDBOX
        and report.headers["x-content-type-options"] == "nosniff"
    )


@pytest.mark.parametrize(
    "dag_id",
    [
        XSS,
        '"><script>alert(1)</script>',
        "' onmouseover='alert(1)",
        "javascript:alert(1)",
        f"nightshift_train.{XSS}",
        "nightshift_train.refunds<svg/onload=alert(1)>",
    ],
)
def test_the_dag_tab_never_echoes_its_dag_id(server: Server, dag_id: str) -> None:
    reply = server.get(f"/nightshift/health?dag_id={quote(dag_id, safe='')}")
    for needle in ("alert(", "<script", "<img", "<svg", "onmouseover", "javascript:"):
        assert needle not in reply.body, (needle, reply.body)
    assert reply.status == 200 and "no model health to show" in reply.body
    _strict(reply)


@pytest.mark.parametrize(
    "path",
    [
        f"/nightshift/health/{quote(XSS, safe='')}",
        f"/nightshift/api/health/{quote(XSS, safe='')}",
        f"/nightshift/store/reports/{quote(XSS, safe='')}/x.html",
        f"/nightshift/store/reports/payments/{quote(XSS, safe='')}.html",
        f"/nightshift/store/{quote(XSS, safe='')}",
    ],
)
def test_errors_name_nothing_of_the_request(server: Server, path: str) -> None:
    reply = server.get(path)
    assert reply.status == 404 and reply.headers["content-type"] == "application/json", reply
    _strict(reply)
    assert "alert(" not in reply.body and "<img" not in reply.body and "onerror" not in reply.body


def test_the_page_is_inert_and_strict(server: Server) -> None:
    page = server.get("/nightshift/health/payments")
    assert page.status == 200 and 'id="tiles"' in page.body and 'id="timeline"' in page.body, page
    _strict(page)
    assert "<script" not in page.body and "<img src=x" not in page.body
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.body  # the actor, shown as text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page.body  # the reason
    assert "unreachable" in page.body  # the dead registry is named, the audit trail still shown


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("reports/payments/alias.html", 200),  # a link inside the dataset's reports is fine
        ("reports/payments/hostname.txt", 404),  # -> /etc/hostname
        ("reports/payments/linked/secret.html", 404),  # a linked directory outside the store
        ("reports/payments/data.html", 404),  # -> curated data inside the store
        ("reports/payments/theirs.html", 404),  # -> another dataset's report
    ],
)
def test_symlinks_never_lead_out_of_what_may_be_served(server: Server, path: str, status: int) -> None:
    reply = server.get(f"/nightshift/store/{path}")
    assert reply.status == status, (path, reply)
    if status == 200:
        assert "drift of payments" in reply.body
    else:
        assert "SECRET" not in reply.body and "DATA" not in reply.body and "refunds" not in reply.body
        hostname = Path("/etc/hostname").read_text().strip()
        assert len(hostname) < 4 or hostname not in reply.body
