"""Serve the built app (production build, one port) on a fresh SQLite database, and drive it with
Debian's Chromium through Playwright. Screenshots go to tests/e2e/screenshots/ (not committed)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from paytime_app.db import build_engine, use_engine
from paytime_app.settings import PROJECT_ROOT
from tests.fake_oauth import FakeOAuthProvider
from tests.helpers import free_port

SCREENSHOTS = Path(__file__).parent / "screenshots"
# Two cores run the app, PostgreSQL, the browser and the tests: a sign-in (argon2) or a first page
# of statistics can take seconds when everything runs at once, which the 5 s default mistook for a bug.
expect.set_options(timeout=10_000)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BUILD_TIMEOUT_SECONDS = 420
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def oauth_provider() -> Iterator[FakeOAuthProvider]:
    """A fake Google/GitHub on loopback; the app under test is configured to use it."""
    with FakeOAuthProvider() as provider:
        yield provider


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory, oauth_provider: FakeOAuthProvider) -> Iterator[dict[str, str]]:
    port = free_port()
    database_url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'paytime.db'}"
    env = {
        **os.environ,
        "PAYTIME_ENV": "test",
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "BASE_URL": f"http://localhost:{port}",
        "JOBS_IN_APP": "true",
        "JOBS_POLL_SECONDS": "0.2",
        "LOG_JSON": "true",
        # As in production: a browser signing in for the first time confirms itself with an emailed code.
        "NEW_DEVICE_CHECK": "true",
        **oauth_provider.settings_env(),
    }
    for command in (["migrate"], ["seed-demo"]):
        subprocess.run([sys.executable, "-m", "paytime_app.cli", *command], env=env, cwd=PROJECT_ROOT, check=True)
    log_path = tmp_path_factory.mktemp("e2e-log") / "app.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                "reflex",
                "run",
                "--env",
                "prod",
                "--single-port",
                "--frontend-port",
                str(port),
                "--backend-port",
                str(port),
                "--loglevel",
                "warning",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://localhost:{port}"
    try:
        _wait_until_serving(base_url, server, log_path)
        use_engine(build_engine(database_url))
        yield {"base_url": base_url, "database_url": database_url, "log": str(log_path)}
    finally:
        use_engine(None)
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def _wait_until_serving(base_url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the app exited while starting:\n{log_path.read_text()[-4000:]}")
        try:
            if (
                httpx.get(f"{base_url}/api/health", timeout=2).status_code == 200
                and httpx.get(base_url, timeout=2).status_code == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"the app did not serve within {BUILD_TIMEOUT_SECONDS}s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: the test command installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, app_server: dict[str, str]) -> Iterator[Page]:
    context = browser.new_context(base_url=app_server["base_url"], viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def mobile_page(browser: Browser, app_server: dict[str, str]) -> Iterator[Page]:
    context = browser.new_context(
        base_url=app_server["base_url"], viewport={"width": 375, "height": 780}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
