"""The Admin's end-to-end tests: Playwright's Python package drives Debian's Chromium (never a downloaded browser)
against real Nodes served by uvicorn (tests/live.py). Without /usr/bin/chromium the tests fail, they do not skip:
`.ci/run` installs it (`apt-get install -y chromium`)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from grid_runtime.admin import BUNDLE
from tests.live import LiveNode, free_port, start_live_node, wait_healthy

CHROMIUM = Path(os.environ.get("GRID_TEST_CHROMIUM", "/usr/bin/chromium"))


def require_bundle() -> None:
    if not (BUNDLE / "index.html").is_file():
        pytest.fail(f"the Admin is not built ({BUNDLE}): `pip install -c constraints.txt -e .` builds it")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); "
                    "the Admin's tests never download a browser")
    require_bundle()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Tab:
    """A page of a fresh browser context, with every console error and uncaught exception it had."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def assert_no_errors(self) -> None:
        assert self.errors == [], self.errors


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_tab(width: int = 1280, height: int = 900) -> Tab:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        tab = Tab(page)
        page.on("console", lambda m: tab.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: tab.errors.append(f"page error: {e}"))
        return tab

    yield open_tab
    for context in contexts:
        context.close()


@dataclass
class AdminNode:
    node: LiveNode
    static_origin: str  # the one other origin the Node allows (cors_origins), for the exported bundle's test

    @property
    def url(self) -> str:
        return self.node.url

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.node.owner_token}"}
        return httpx.request(method, f"{self.node.api}{path}", headers=headers, timeout=30, **kwargs)

    def user(self, email: str, password: str, role: str = "Data Scientist") -> str:
        """A user made through the API; returns a session token of theirs."""
        self.call("POST", "/users", json={"email": email, "password": password, "role": role}).raise_for_status()
        return self.node.login(email, password)


@pytest.fixture(scope="module")
def admin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminNode]:
    """A Node with its Owner, allowing one other origin (a static server's, on a port chosen now)."""
    require_bundle()
    static_origin = f"http://127.0.0.1:{free_port()}"
    node = start_live_node(tmp_path_factory.mktemp("admin-node"),
                           {"GRID_NODE_CORS_ORIGINS": f'["{static_origin}"]'})
    try:
        yield AdminNode(node, static_origin)
    finally:
        node.stop()


@pytest.fixture
def unset_node(tmp_path: Path) -> Iterator[LiveNode]:
    """A Node just started: no Owner yet, its one-time setup token in its state directory."""
    require_bundle()
    port = free_port()
    env = {**os.environ, "GRID_NODE_STATE_DIR": str(tmp_path), "GRID_NODE_PORT": str(port)}
    log = tmp_path / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "grid_runtime.node"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    node = LiveNode(url=f"http://127.0.0.1:{port}", state_dir=tmp_path, process=process, env=env)
    try:
        wait_healthy(node.url, process, log)
        yield node
    finally:
        node.stop()
