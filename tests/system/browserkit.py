"""Headless Chromium (Debian's package) driven by Playwright against the real Airflow UI."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# no background traffic: this machine's network is closed, and the test must not depend on it
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def browser_page(shots: Path) -> Iterator[Any]:
    """A fresh browser context and page; the browser is closed afterwards."""
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        raise RuntimeError("Debian's chromium is not installed: run `make browser-deps`")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1000})
            context.set_default_timeout(60_000)
            yield context.new_page()
        finally:
            browser.close()


def login(page: Any, base: str, user: str = "admin", password: str = "admin") -> None:
    """Log in through the Simple auth manager's form, as a person would."""
    page.goto(f"{base}/")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/auth/login" not in u)
    page.get_by_role("link", name="Dags").first.wait_for()
