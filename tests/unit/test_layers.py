"""The one-way arrows (docs/architecture.md): ``dags/`` → ``nightshift.airflow`` → the core →
libraries. Read from the source (every import, top level or inside a function), so an import
that goes the wrong way fails here before it fails a parse or a backtest."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from modelkit import source_imports

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "include" / "nightshift"


def _core_modules() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "airflow" not in p.relative_to(CORE).parts)


def test_there_are_core_modules_to_check() -> None:
    assert len(_core_modules()) > 20


@pytest.mark.parametrize("path", _core_modules(), ids=lambda p: str(p.relative_to(CORE)))
def test_the_core_imports_no_airflow(path: Path) -> None:
    wrong = sorted(
        n for n in source_imports(path) if n.split(".")[0] == "airflow" or n.startswith("nightshift.airflow")
    )
    assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}: the core must run without Airflow"


@pytest.mark.parametrize("path", sorted((ROOT / "dags").glob("*.py")), ids=lambda p: p.name)
def test_a_dag_file_reaches_the_core_only_through_the_airflow_layer(path: Path) -> None:
    wrong = sorted(
        n
        for n in source_imports(path)
        if n.split(".")[0] == "nightshift" and not n.startswith("nightshift.airflow")
    )
    assert not wrong, (
        f"dags/{path.name} imports {wrong}: DAG files call nightshift.airflow, which calls the core"
    )


# a core function longer than this says why, in a ``# long: <reason>`` comment above its def
MAX_LINES = 60


def _long_functions_without_a_reason() -> list[str]:
    found = []
    for path in _core_modules():
        if "demo" in path.relative_to(CORE).parts:  # the demo's generator is not the product
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            if not body or node.end_lineno is None or node.end_lineno - body[0].lineno + 1 <= MAX_LINES:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if not lines[first - 2].strip().startswith("# long: "):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return found


def test_a_long_core_function_says_why() -> None:
    assert not _long_functions_without_a_reason(), (
        f"over {MAX_LINES} lines (after the docstring) without a `# long: <reason>` comment above the def"
    )


# ---- the dev toolkit (include/nightshift_dev): one copy of each tool, no path hacks --------------
TOOLKIT = "nightshift_dev"
ONE_DEFINITION = ("free_port", "wait_idle")


def _tracked_python() -> list[Path]:
    """Every ``.py`` file git tracks or would (not ignored); without git: every one outside .nightshift."""
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard", "*.py"],
            capture_output=True,
            check=True,
        ).stdout
        paths = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*.py") if ".nightshift" not in p.relative_to(ROOT).parts]
    return sorted(
        p for p in paths if p.is_file() and not p.relative_to(ROOT).parts[0].startswith(".nightshift")
    )


def _path_edits(tree: ast.AST) -> list[int]:
    """Lines calling ``sys.path.insert/append/extend`` (however ``sys`` was imported)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("insert", "append", "extend")
        and isinstance(node.func.value, ast.Attribute)
        and node.func.value.attr == "path"
        and isinstance(node.func.value.value, ast.Name)
        and node.func.value.value.id == "sys"
    ]


def test_nothing_edits_sys_path_and_each_tool_is_defined_once() -> None:
    files = _tracked_python()
    assert len(files) > 100 and ROOT / "include" / TOOLKIT / "__init__.py" in files
    edits: list[str] = []
    defined: dict[str, list[str]] = {name: [] for name in ONE_DEFINITION}
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edits += [f"{path.relative_to(ROOT)}:{line}" for line in _path_edits(tree)]
        for node in ast.walk(tree):
            # a private copy (``_free_port``) is a copy too
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.lstrip("_") in defined:
                defined[node.name.lstrip("_")].append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not edits, (
        f"sys.path edited in {edits}: import through the package, the toolkit or pytest's pythonpath"
    )
    copies = {name: where for name, where in defined.items() if len(where) != 1}
    assert not copies, f"defined other than once: {copies} (free_port: {TOOLKIT}; wait_idle: AirflowAPI)"


@pytest.mark.parametrize("folder", ["include/nightshift", "dags", "plugins"])
def test_what_ships_never_imports_the_dev_toolkit(folder: str) -> None:
    wrong = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / folder).rglob("*.py")
        if any(n.split(".")[0] == TOOLKIT for n in source_imports(p))
    )
    assert not wrong, f"{wrong} import {TOOLKIT}: the dev toolkit does not ship (pyproject's packages)"


def test_the_dev_toolkit_is_not_in_the_distribution() -> None:
    import tomllib

    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["where"] == ["include"] and find.get("include") == ["nightshift", "nightshift.*"], find


# the modules that may touch the process environment, each with why; every other module gets its
# settings from nightshift.settings (and its backends from nightshift.backends)
ENVIRONMENT_ALLOWED = {
    "settings.py": "the one validated reading of NIGHTSHIFT_* (and the few foreign variables the package "
    "honours), and the library defaults MLflow and GX read only from the environment",
    "spec.py": "NIGHTSHIFT_DATASETS_DIR only: spec.py is carried in the packaged model "
    "(nightshift.model.CODE), which loads without nightshift.settings and pydantic-settings",
}


def _environment_uses(path: Path) -> list[str]:
    """``os.environ`` / ``os.getenv`` / ``os.putenv`` / ``os.unsetenv`` in ``path`` (also when
    imported by name, ``from os import environ``), with their line numbers."""
    names = {"environ", "getenv", "putenv", "unsetenv", "environb", "getenvb"}
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in names
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in names]
    return found


def test_the_environment_check_sees_a_read() -> None:
    # the allowed module does read the environment: the check finds what it looks for
    assert _environment_uses(CORE / "settings.py")


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_only_the_settings_module_touches_the_environment(path: Path) -> None:
    rel = str(path.relative_to(CORE))
    if rel in ENVIRONMENT_ALLOWED:
        return
    uses = _environment_uses(path)
    assert not uses, (
        f"include/nightshift/{rel} touches the environment ({', '.join(uses)}): read settings through "
        "nightshift.settings.settings() and take the backends a step needs as its parameter"
    )


STEP_MODULES = [*sorted((CORE / "steps").glob("*.py")), CORE / "ingest.py"]


@pytest.mark.parametrize("path", STEP_MODULES, ids=lambda p: str(p.relative_to(CORE)))
def test_a_step_is_given_its_backends(path: Path) -> None:
    # a step works with the Backends it is passed: it neither makes its own MLflow client nor
    # fetches the store from the Airflow layer
    fetched = sorted(
        f"{node.lineno}: {node.func.attr}()"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("configure", "get_store", "task_backends")
    )
    assert not fetched, f"include/nightshift/{path.relative_to(CORE)} fetches its backends: {fetched}"
